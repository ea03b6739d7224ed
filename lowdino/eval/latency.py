"""Latency as an evaluation protocol: milliseconds per image of one backbone in one runtime.

For every (runtime, batch size, threads): warm-up calls, then ``repetitions`` timed calls on a fixed
batch; median and 90th percentile per image (batch time / batch size), images/s at the median, and the
process's peak resident memory during the timed calls (Linux: VmHWM after resetting it through
/proc/self/clear_refs; elsewhere the process's lifetime peak, said so in ``peak_memory_kind``). Every
row names the runtime, threads, CPU model and device, because a figure without them cannot be
compared with another.

Runtimes: ``torch`` (eager, inference mode), ``onnxruntime`` (CPU execution provider, all graph
optimisations), ``torchscript`` and ``executorch`` (a .pte on XNNPACK); a runner is built once per
thread count (ONNX Runtime fixes its thread pool when the session is created, ExecuTorch when the
program's method is loaded).
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# A runner: threads -> (a callable that runs the fixed batch once).
RunnerFactory = Callable[[int, np.ndarray], Callable[[], object]]
LATENCY_PROTOCOL = "latency"


@dataclass
class LatencyRow:
    runtime: str  # "torch", "onnxruntime", "torchscript", "executorch"
    batch_size: int
    threads: int
    median_ms: float  # per image
    p90_ms: float  # per image
    images_per_s: float
    batch_median_ms: float
    peak_memory_mb: float
    peak_memory_kind: str
    image_size: int
    device: str
    cpu_model: str
    repetitions: int
    warmup: int
    precision: str = "fp32"  # "int8" for a quantized artifact
    artifact: str | None = None
    note: str | None = None  # e.g. "random weights: latency only"
    protocol: str = LATENCY_PROTOCOL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def all_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's CPU set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts(requested: list[int]) -> list[int]:
    """0 means every core; duplicates (1 and "all" on a one-core machine) are measured once."""
    counts: list[int] = []
    for value in requested:
        count = all_cores() if value == 0 else value
        if count not in counts:
            counts.append(count)
    return counts


def _reset_peak_memory() -> str:
    """Reset the peak-RSS counter where the OS allows it; returns how the peak will be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "peak RSS during the timed calls (VmHWM)"
    except OSError:
        return "process lifetime peak RSS (ru_maxrss)"


def _peak_memory_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def time_calls(call: Callable[[], object], *, warmup: int, repetitions: int) -> list[float]:
    """Seconds of each of ``repetitions`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def torch_runner(backbone: nn.Module) -> RunnerFactory:
    def make(threads: int, batch: np.ndarray) -> Callable[[], object]:
        tensor = torch.from_numpy(batch)
        model = backbone.eval()

        def call() -> object:
            with torch.inference_mode():
                return model(tensor)

        return call

    return make


def artifact_runner(path: str | Path) -> RunnerFactory:
    from lowdino.export.runtime import load_runtime

    def make(threads: int, batch: np.ndarray) -> Callable[[], object]:
        runtime = load_runtime(path, threads)
        return lambda: runtime(batch)

    return make


def measure_latency(
    make_runner: RunnerFactory,
    *,
    runtime: str,
    image_size: int,
    batch_sizes: list[int],
    threads: list[int],
    warmup: int,
    repetitions: int,
    precision: str = "fp32",
    artifact: str | None = None,
    note: str | None = None,
    seed: int = 0,
    on_row: Callable[[LatencyRow], None] | None = None,
) -> list[LatencyRow]:
    """One row per (batch size, thread count), on a fixed-seed normalised batch (latency does not
    depend on pixel values for these networks: no early exits, no data-dependent shapes)."""
    rows = []
    generator = torch.Generator().manual_seed(seed)
    for count in thread_counts(threads):
        for batch_size in batch_sizes:
            batch = torch.randn(batch_size, 3, image_size, image_size, generator=generator).numpy()
            # torch's intra-op pool for the torch runtime (ONNX Runtime sessions get theirs when made).
            previous = torch.get_num_threads()
            torch.set_num_threads(count)
            try:
                call = make_runner(count, batch)
                call()  # allocations and lazy initialisation, outside the peak-memory window
                kind = _reset_peak_memory()
                seconds = time_calls(call, warmup=warmup, repetitions=repetitions)
            finally:
                torch.set_num_threads(previous)
            median = statistics.median(seconds)
            p90 = float(np.percentile(seconds, 90))
            row = LatencyRow(
                runtime=runtime,
                batch_size=batch_size,
                threads=count,
                median_ms=median * 1000 / batch_size,
                p90_ms=p90 * 1000 / batch_size,
                images_per_s=batch_size / median,
                batch_median_ms=median * 1000,
                peak_memory_mb=_peak_memory_mb(),
                peak_memory_kind=kind,
                image_size=image_size,
                device="cpu",
                cpu_model=cpu_model(),
                repetitions=repetitions,
                warmup=warmup,
                precision=precision,
                artifact=artifact,
                note=note,
            )
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows
