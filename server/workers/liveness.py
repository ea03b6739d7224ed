"""Which queues a live worker serves: what /api/health reports and what a run submission warns about.

"Live" means heard from within LOWDINO_HEARTBEAT_TIMEOUT. A worker that `lowdino serve` saw die is
removed at once (server.workers.embedded), any other one ages out after that timeout.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.settings import Settings
from server.storage.models import Worker
from server.workers import queries as worker_queries
from server.workers.queues import gpu_capacity


def live_workers(session: Session, settings: Settings) -> list[Worker]:
    return worker_queries.list_workers(session, seen_within=settings.heartbeat_timeout)


def no_worker_detail() -> str:
    return (
        "no live worker: queued runs wait until one runs; start `lowdino worker` "
        "(or `lowdino serve` without --no-worker)"
    )


def queue_warning(session: Session, settings: Settings, queue: str | None) -> str | None:
    """A one-line warning when no live worker takes runs from `queue`; None when one does."""
    if queue is None:
        return None
    if any(queue in (worker.queues or []) for worker in live_workers(session, settings)):
        return None
    return (
        f"no live worker takes queue {queue!r}: the run stays queued until one does; "
        f"start `lowdino worker --queues {queue}` (or `lowdino serve`)"
    )


def gpu_capacity_refusal(session: Session, settings: Settings, gpus: int) -> str | None:
    """One line when live workers exist and none has `gpus` GPUs (the run would wait forever); else None.

    Without any live worker the run still queues (with a warning): a worker may be starting.
    """
    workers = live_workers(session, settings)
    if gpus < 1 or not workers:
        return None
    largest = max(
        workers, key=lambda worker: (gpu_capacity(worker.queues or [], worker.gpus or []), worker.name)
    )
    has = gpu_capacity(largest.queues or [], largest.gpus or [])
    if has >= gpus:
        return None
    plural = "GPU" if gpus == 1 else "GPUs"
    return (
        f"needs {gpus} {plural}; the largest live worker, {largest.name}, has {has}: ask for at most {has} "
        f"or start `lowdino worker --gpus {','.join(map(str, range(gpus)))} --queues gpu` on a machine with "
        f"{gpus} {plural}"
    )
