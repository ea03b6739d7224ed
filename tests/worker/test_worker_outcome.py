"""Exit status -> run state mapping, and the message a user sees for each."""

from __future__ import annotations

import signal

from lowdino.contract.rundir import EXIT_CANCELLED, EXIT_OK, EXIT_USER_ERROR
from worker.outcome import Outcome, RunStatus, StopReason, decide_outcome, pruned

TRACEBACK = [
    "step 3/10",
    "Traceback (most recent call last):",
    '  File "trainer.py", line 10, in step',
    "RuntimeError: CUDA out of memory",
]


def test_exit_zero_is_completed_without_error() -> None:
    outcome = decide_outcome(EXIT_OK, last_lines=TRACEBACK, summary={"status": "completed"})
    assert outcome.status is RunStatus.COMPLETED
    assert outcome.error is None


def test_exit_75_is_cancelled_or_interrupted_by_who_asked() -> None:
    assert (
        decide_outcome(EXIT_CANCELLED, last_lines=[], stop_reason=StopReason.CANCEL).status
        is RunStatus.CANCELLED
    )
    # A STOP file created by hand (no reason known to the worker) is still a cancel.
    assert decide_outcome(EXIT_CANCELLED, last_lines=[]).status is RunStatus.CANCELLED
    shutdown = decide_outcome(EXIT_CANCELLED, last_lines=[], stop_reason=StopReason.SHUTDOWN)
    assert shutdown.status is RunStatus.INTERRUPTED
    assert "resume" in shutdown.message


def test_torchrun_status_1_after_a_confirmed_stop_is_a_cancel() -> None:
    outcome = decide_outcome(
        1, last_lines=TRACEBACK, summary={"status": "cancelled"}, stop_reason=StopReason.CANCEL
    )
    assert outcome.status is RunStatus.CANCELLED
    # Without a stop request the same status is a failure, stale summary or not.
    assert decide_outcome(1, last_lines=TRACEBACK, summary={"status": "cancelled"}).status is RunStatus.FAILED


def test_failure_keeps_the_output_and_names_the_exception() -> None:
    outcome = decide_outcome(1, last_lines=TRACEBACK)
    assert outcome.status is RunStatus.FAILED
    assert outcome.message == "training process exited with status 1: RuntimeError: CUDA out of memory"
    assert outcome.error == "\n".join(TRACEBACK)


def test_user_error_shows_the_cli_error_line() -> None:
    lines = ["loading", "lowdino pretrain: error: invalid PretrainConfig: batch_size: must be >= 1 (got 0)"]
    outcome = decide_outcome(EXIT_USER_ERROR, last_lines=lines)
    assert outcome.status is RunStatus.FAILED
    assert outcome.message == lines[1]


def test_killed_by_signal_mentions_the_signal() -> None:
    outcome = decide_outcome(-signal.SIGKILL, last_lines=["step 1"])
    assert outcome.status is RunStatus.FAILED
    assert "SIGKILL" in outcome.message
    assert "out-of-memory" in outcome.message
    assert "SIGSEGV" in decide_outcome(-signal.SIGSEGV, last_lines=[]).message


def test_child_killed_after_ignoring_stop() -> None:
    cancelled = decide_outcome(
        -signal.SIGKILL, last_lines=[], stop_reason=StopReason.CANCEL, killed_after_s=30
    )
    assert cancelled.status is RunStatus.CANCELLED
    assert "30 s" in cancelled.message
    shutdown = decide_outcome(
        -signal.SIGKILL, last_lines=[], stop_reason=StopReason.SHUTDOWN, killed_after_s=5
    )
    assert shutdown.status is RunStatus.INTERRUPTED


def test_a_stop_a_search_asked_for_ends_pruned_and_nothing_else_does() -> None:
    cancelled = decide_outcome(EXIT_CANCELLED, last_lines=[], stop_reason=StopReason.CANCEL)
    outcome = pruned(cancelled, "pruned at step 40 by the asha pruner")
    assert (outcome.status, outcome.message) == (RunStatus.PRUNED, "pruned at step 40 by the asha pruner")
    assert pruned(cancelled, None) is cancelled  # a plain cancel stays a cancel
    completed = Outcome(RunStatus.COMPLETED, "the run completed")
    assert (
        pruned(completed, "pruned at step 40") is completed
    )  # it finished before the stop: its result stands
