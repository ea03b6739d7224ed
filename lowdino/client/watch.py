"""Follow a run over the server's event stream until it stops: progress, latest metrics, outcome."""

from __future__ import annotations

import time
from typing import Any

from lowdino.client.api import ServerClient, ServerError
from lowdino.client.events import parse_events
from lowdino.client.progress import ProgressDisplay
from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK

# The API's words for how a run ended (GET /api/catalog lists every status); any other end is a failure.
COMPLETED = "completed"
CANCELLED = "cancelled"
EXIT_FAILED = 1
RECONNECT_PAUSE_S = 1.0


def exit_code_for(status: str) -> int:
    """0 completed, 75 cancelled (as `lowdino pretrain` itself exits), 1 failed or interrupted."""
    return EXIT_OK if status == COMPLETED else EXIT_CANCELLED if status == CANCELLED else EXIT_FAILED


def follow_run(client: ServerClient, run_id: str, display_for: Any) -> dict[str, Any]:
    """The run once it is no longer active (catalog.active_statuses), drawn as it goes by the
    ProgressDisplay that `display_for(run)` makes. A dropped stream reconnects from the last event seen."""
    active = set(client.get("/api/catalog")["active_statuses"])
    run = client.get(f"/api/runs/{run_id}")
    display: ProgressDisplay = display_for(run)
    display.update_run(run)
    last_id = int(run.get("last_event_id") or 0)
    while run["status"] in active:
        try:
            path = f"/api/runs/{run_id}/events"
            with client.stream_lines(path, last_event_id=last_id, types="metric,status") as lines:
                for event in parse_events(lines):
                    last_id = event.id or last_id
                    if event.type == "metric" and isinstance(event.data, dict):
                        display.metric_event(event.data)
                    elif event.type == "status":
                        run = client.get(f"/api/runs/{run_id}")
                        display.update_run(run)
                        if run["status"] not in active:
                            break
        except ServerError as exc:
            if exc.status is not None:
                raise
            time.sleep(RECONNECT_PAUSE_S)  # the server restarted or the network blinked: catch up
            run = client.get(f"/api/runs/{run_id}")
    display.finish(run)
    return dict(run)
