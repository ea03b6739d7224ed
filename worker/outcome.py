"""How a finished training child maps to a run state, and what the user is told about it.

    exit 0                         -> completed
    exit 75 (EXIT_CANCELLED)       -> cancelled, or interrupted when the worker itself asked the child
                                      to stop because it is shutting down (resume continues the run),
                                      or pruned when a search asked for the stop (`pruned`)
    killed by a signal / any other -> failed, with the last lines of output as the error

torchrun turns a worker's 75 into its own status 1, so a stop that was asked for and confirmed by
summary.json ``{"status": "cancelled"}`` counts as a stop whatever the exit status.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK, EXIT_USER_ERROR, SummaryStatus
from server.vocabulary import RunStatus


class StopReason(StrEnum):
    CANCEL = "cancel"  # the user asked (cancel_requested in the DB, or a STOP file)
    SHUTDOWN = "shutdown"  # the worker is shutting down; the run should be resumable


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    message: str  # one line for the run list / dashboard
    error: str | None = None  # last lines of output, only for failed runs


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_error_line(lines: Sequence[str]) -> str | None:
    """The line a user most wants: the CLI's `lowdino X: error: ...` or a Python exception line."""
    for line in reversed(lines):
        if ": error: " in line:
            return line.strip()
    for line in reversed(lines):
        stripped = line.strip()
        if (
            stripped
            and not stripped.startswith(("File ", "^", "~"))
            and ("Error" in stripped or "Exception" in stripped)
        ):
            return stripped
    return None


def decide_outcome(
    returncode: int,
    *,
    last_lines: Sequence[str],
    summary: dict[str, Any] | None = None,
    stop_reason: StopReason | None = None,
    killed_after_s: float | None = None,
) -> Outcome:
    """Run state for a child that exited with `returncode` (negative: killed by that signal).

    `killed_after_s` is set when the worker killed a child that ignored a stop request for that long.
    """
    summary_status = (summary or {}).get("status")
    stopped = returncode == EXIT_CANCELLED or (
        stop_reason is not None and summary_status == SummaryStatus.CANCELLED
    )
    if killed_after_s is not None:
        what = "worker shut down" if stop_reason is StopReason.SHUTDOWN else str(RunStatus.CANCELLED)
        status = RunStatus.INTERRUPTED if stop_reason is StopReason.SHUTDOWN else RunStatus.CANCELLED
        return Outcome(
            status,
            f"{what}; the training process ignored the stop request for {killed_after_s:.0f} s and was "
            "killed, so steps after its last checkpoint are lost",
        )
    if returncode == EXIT_OK:
        return Outcome(RunStatus.COMPLETED, "the run completed")
    if stopped:
        if stop_reason is StopReason.SHUTDOWN:
            return Outcome(
                RunStatus.INTERRUPTED, "worker shut down; the run saved a checkpoint, resume it to continue"
            )
        return Outcome(RunStatus.CANCELLED, "cancelled; the run saved a checkpoint")
    error = "\n".join(last_lines) or None
    detail = _last_error_line(last_lines)
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (often the out-of-memory killer; lower --batch-size)" if name == "SIGKILL" else ""
        message = f"training process was killed by {name}{hint}"
    elif returncode == EXIT_USER_ERROR:
        message = detail or "training process rejected its config or input (exit status 2); see the log"
        return Outcome(RunStatus.FAILED, message, error)
    else:
        message = f"training process exited with status {returncode}"
    if detail:
        message += f": {detail}"
    return Outcome(RunStatus.FAILED, message, error)


def signal_log_line(
    returncode: int, *, elapsed_s: float, killed_by_worker: bool, now: float | None = None
) -> str | None:
    """The line the worker appends to train.log when the child died of a signal (None otherwise).

    A process killed by SIGKILL cannot write anything itself, so without this line train.log ends
    mid-run and the reason is only in the kernel's log. Formatted like the trainer's own lines.
    """
    if returncode >= 0:
        return None
    name = _signal_name(-returncode)
    if killed_by_worker:
        cause = " (by the worker: it ignored a stop request)"
    elif name == "SIGKILL":
        cause = (
            " (likely the kernel's out-of-memory killer; see `dmesg` or `journalctl -k`; lower --batch-size)"
        )
    else:
        cause = ""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return f"{stamp} ERROR worker: trainer killed by {name}{cause} after {elapsed_s:.0f} s"


def pruned(outcome: Outcome, prune_reason: str | None) -> Outcome:
    """A cancelled outcome whose stop a search asked for (the run's prune_reason) ends pruned, saying why."""
    if outcome.status is not RunStatus.CANCELLED or not prune_reason:
        return outcome
    return Outcome(RunStatus.PRUNED, prune_reason)
