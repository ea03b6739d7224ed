"""System metrics of a training run: CPU, resident memory, data-loader wait and, on a GPU, NVML's figures.

A daemon thread samples the run's processes (the trainer and its DataLoader workers) every few
seconds; the trainer's loop reports how long each step waited for its batch. The sample is not
written by the thread: the trainer merges it into the next step's metrics record (`take`), so the
metrics file keeps a single writer and the values become ordinary metric series (sys_* keys,
named in lowdino.contract.metrics) that the service stores and charts like the loss.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

import psutil
import torch

from lowdino.contract import metrics as names

log = logging.getLogger(__name__)
MIB = 1024 * 1024


class _Gpu:
    """NVML handle of the run's GPU; None-valued where NVML (nvidia-ml-py) or the device is missing."""

    def __init__(self, device: torch.device) -> None:
        self.handle: Any = None
        self._nvml: Any = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            index = device.index if device.index is not None else torch.cuda.current_device()
            # NVML numbers GPUs as the driver does; CUDA_VISIBLE_DEVICES renumbers them for torch.
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            ids = [part.strip() for part in visible.split(",") if part.strip()]
            if ids and index < len(ids) and ids[index].isdigit():
                index = int(ids[index])
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
        except Exception as exc:  # NVML absent, no driver, a MIG slice without counters: say so once
            log.warning("GPU metrics unavailable (%s); CPU and memory are still recorded", exc)

    def sample(self) -> dict[str, float]:
        if self.handle is None:
            return {}
        nvml = self._nvml
        values: dict[str, float] = {}
        readers = {
            names.GPU_UTIL_PERCENT: lambda: float(nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu),
            names.GPU_MEMORY_MB: lambda: nvml.nvmlDeviceGetMemoryInfo(self.handle).used / MIB,
            names.GPU_POWER_W: lambda: nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0,
        }
        # Each counter on its own: some boards (and MIG slices) report memory but not power.
        for key, read in readers.items():
            with contextlib.suppress(Exception):
                values[key] = read()
        return values

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()


class SystemMonitor:
    """Samples every `every_s` seconds in a daemon thread; `take()` hands over a new sample once."""

    def __init__(self, every_s: float, device: torch.device) -> None:
        self.every_s = every_s
        self._process = psutil.Process()
        self._children: dict[int, psutil.Process] = {}
        self._gpu = _Gpu(device)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._latest: dict[str, float] | None = None
        self._waited = 0.0
        self._stepped = 0.0
        self._thread = threading.Thread(target=self._loop, name="lowdino-system-monitor", daemon=True)
        self._process.cpu_percent(None)  # the first call only sets the baseline the next ones measure from

    def start(self) -> SystemMonitor:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._gpu.close()

    def note_step(self, waited_s: float, total_s: float) -> None:
        """One step's time waiting for its batch, and its whole time (wait + compute)."""
        with self._lock:
            self._waited += waited_s
            self._stepped += total_s

    def sample_now(self) -> None:
        """Sample at once (the run's last step): every run, however short, gets at least one."""
        self._store(self._sample())

    def take(self) -> dict[str, float]:
        """The newest sample not handed over yet, with the wait share since the previous one; else {}."""
        with self._lock:
            sample, self._latest = self._latest, None
            if sample is None:
                return {}
            if self._stepped > 0:
                sample[names.DATA_WAIT_PERCENT] = 100.0 * self._waited / self._stepped
            self._waited = self._stepped = 0.0
            return sample

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._store(self._sample())
            except Exception as exc:  # a sampler must never take the training run down
                log.warning("system metrics sample failed: %s", exc)

    def _store(self, sample: dict[str, float]) -> None:
        with self._lock:
            self._latest = sample

    def _processes(self) -> list[psutil.Process]:
        """The trainer and its live children; a child seen for the first time has its baseline set."""
        try:
            children = self._process.children(recursive=True)
        except psutil.Error:
            children = []
        alive = {}
        for child in children:
            known = self._children.get(child.pid)
            if known is None:
                try:
                    child.cpu_percent(None)
                except psutil.Error:
                    continue
                known = child
            alive[child.pid] = known
        self._children = alive
        return [self._process, *alive.values()]

    def _sample(self) -> dict[str, float]:
        cpu = 0.0
        rss = 0.0
        for process in self._processes():
            try:
                with process.oneshot():
                    cpu += process.cpu_percent(None)
                    rss += process.memory_info().rss
            except psutil.Error:
                continue  # a DataLoader worker that exited between listing and reading
        # Summed over the processes: pages a forked DataLoader worker shares count once per process,
        # as `top` counts them, so the figure errs high rather than hiding a worker's growth.
        return {names.CPU_PERCENT: cpu, names.RSS_MB: rss / MIB, **self._gpu.sample()}
