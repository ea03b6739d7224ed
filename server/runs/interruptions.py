"""Worker-side housekeeping shared with the API server: the heartbeat reaper.

`reap_interrupted_runs` is a plain function so that every worker (from its heartbeat thread) and the
API server (at startup and from a background loop) can run it; running it from several processes at
once is safe because each run moves with a conditional UPDATE (crud.mark_interrupted_runs).
"""

from __future__ import annotations

from sqlalchemy import Engine

from server.runs.queries import mark_interrupted_runs
from server.storage.engine import session_scope


def reap_interrupted_runs(engine: Engine, *, heartbeat_timeout: float) -> list[str]:
    """Mark `running` runs silent for more than `heartbeat_timeout` seconds `interrupted`; their ids.

    An interrupted run keeps its run directory and checkpoint: POST /api/runs/{id}/resume queues it
    again with resume=true, and a worker continues from the last checkpoint.
    """
    with session_scope(engine) as session:
        return mark_interrupted_runs(session, older_than=heartbeat_timeout)
