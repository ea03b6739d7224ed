"""The worker that `lowdino serve` runs beside the API, kept alive: restarted with exponential backoff.

Without supervision a worker killed by the OOM killer or `kill -9` stays dead while the API keeps
accepting runs that nobody takes. Each unexpected exit is logged with its exit code, the dead worker's
row is removed at once (so /api/health and new submissions say there is no live worker instead of
waiting for its heartbeat to time out), and a new worker starts after 1, 2, 4 ... 30 s; a worker
that lived `STABLE_AFTER_S` resets the delay, so a crash loop backs off but a rare crash restarts fast.

The child is started through `worker.orphan_guard`, so it dies with the supervising thread even when
the server itself is killed (a `preexec_fn` would be unsafe here: the server has threads by then).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger("lowdino.server")
WORKER_STOP_TIMEOUT_S = 60.0
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"exit code {code}"
    return f"exit code {code}"


def stop_worker(process: subprocess.Popen[bytes], timeout: float = WORKER_STOP_TIMEOUT_S) -> int:
    """SIGTERM (the worker lets a running trainer checkpoint), then SIGKILL after `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop within %.0f s; killing it", timeout)
            process.kill()
            process.wait()
    return int(process.returncode)


class EmbeddedWorker(threading.Thread):
    """Runs `lowdino worker --queues ...` as a child and restarts it whenever it exits unasked.

    `forget(name)` is called with a dead worker's full name (its row in the workers table).
    """

    def __init__(
        self,
        *,
        queues: str = "cpu,gpu",
        forget: Callable[[str], None] | None = None,
        first_delay: float = FIRST_DELAY_S,
        max_delay: float = MAX_DELAY_S,
    ) -> None:
        super().__init__(name="lowdino-embedded-worker", daemon=True)
        self.queues = queues
        self.forget = forget
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._started_first = threading.Event()

    def worker_name(self, generation: int) -> str:
        # Unique per start: the name is the workers table's key, and a dead one's row gets removed.
        return f"serve{os.getpid()}-{generation}@{socket.gethostname()}"

    def _spawn(self, name: str) -> subprocess.Popen[bytes] | None:
        command = [
            sys.executable, "-m", "worker.orphan_guard", str(os.getpid()), str(int(signal.SIGTERM)), "--",
            sys.executable, "-m", "lowdino", "worker", "--queues", self.queues, "--name", name,
        ]  # fmt: skip
        with self._lock:
            if self._stopping.is_set():
                return None
            self.process = subprocess.Popen(command, env=os.environ.copy())
            return self.process

    def run(self) -> None:
        delay = self.first_delay
        generation = 0
        while not self._stopping.is_set():
            name = self.worker_name(generation)
            process = self._spawn(name)
            self._started_first.set()
            if process is None:
                return
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STABLE_AFTER_S:
                delay = self.first_delay
            self.restarts += 1
            log.error(
                "the worker (pid %d) exited unexpectedly with %s; restarting it in %.0f s (restart %d)",
                process.pid,
                describe_exit(code),
                delay,
                self.restarts,
            )
            if self.forget is not None:
                try:
                    self.forget(name)
                except Exception:  # the database may be what failed; the restart matters more
                    log.exception("could not remove the dead worker's row %s", name)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.max_delay)
            generation += 1

    def wait_started(self, timeout: float = 10.0) -> bool:
        return self._started_first.wait(timeout)

    def stop(self, timeout: float = WORKER_STOP_TIMEOUT_S) -> None:
        """No more restarts; the current worker gets SIGTERM (its trainer checkpoints), SIGKILL after `timeout`."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None:
            try:
                stop_worker(process, timeout)
            except KeyboardInterrupt:
                process.kill()
                process.wait()
                raise
        self.join(timeout=5)
