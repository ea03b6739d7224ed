"""Data-access functions shared by the API and the worker: `fn(session, *, ...)`, each commits its own work.

create_run, get_run, require_run, list_runs, list_children, update_run_status, transition_run, claim_run,
set_cancel_requested, delete_run, mark_interrupted_runs, run_control_flags (server.crud.runs)
ingest_metrics, metric_keys, count_points, iter_points, metric_goal (server.crud.metrics)
add_event, append_log, events_after, events_of_runs_after, latest_event_id, log_lines (server.crud.events)
upsert_worker, heartbeat, list_workers, remove_worker            (server.crud.workers)
downsample_series                                                 (server.crud.downsample)
create_sweep, get_sweep, require_sweep, sweep_runs, sweep_run_ids, sweep_run_states, list_sweeps
                                                                  (server.crud.sweeps)
runs_owing_evaluation, claim_evaluation                           (server.crud.chains)
"""

from server.crud.chains import claim_evaluation, runs_owing_evaluation
from server.crud.downsample import downsample_series
from server.crud.events import (
    add_event,
    append_log,
    events_after,
    events_of_runs_after,
    latest_event_id,
    log_lines,
)
from server.crud.metrics import count_points, ingest_metrics, iter_points, metric_goal, metric_keys
from server.crud.runs import (
    add_run,
    backbone_of,
    claim_run,
    create_run,
    delete_run,
    get_run,
    list_children,
    list_runs,
    mark_interrupted_runs,
    require_run,
    run_control_flags,
    set_cancel_requested,
    transition_run,
    update_run_status,
)
from server.crud.sweeps import (
    RunState,
    create_sweep,
    get_sweep,
    list_sweeps,
    require_sweep,
    sweep_run_ids,
    sweep_run_states,
    sweep_runs,
)
from server.crud.workers import heartbeat, list_workers, remove_worker, upsert_worker

__all__ = [
    "RunState",
    "add_event",
    "add_run",
    "append_log",
    "backbone_of",
    "claim_evaluation",
    "claim_run",
    "count_points",
    "create_run",
    "create_sweep",
    "delete_run",
    "downsample_series",
    "events_after",
    "events_of_runs_after",
    "get_run",
    "get_sweep",
    "heartbeat",
    "ingest_metrics",
    "iter_points",
    "latest_event_id",
    "list_children",
    "list_runs",
    "list_sweeps",
    "list_workers",
    "log_lines",
    "mark_interrupted_runs",
    "metric_goal",
    "metric_keys",
    "remove_worker",
    "require_run",
    "require_sweep",
    "run_control_flags",
    "runs_owing_evaluation",
    "set_cancel_requested",
    "sweep_run_ids",
    "sweep_run_states",
    "sweep_runs",
    "transition_run",
    "update_run_status",
    "upsert_worker",
]
