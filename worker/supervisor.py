"""Execute one run: claim it, start the training child, follow it, record the outcome.

    execute_run(engine, run_id, identity=..., options=...) -> RunResult

1. Claim: ``UPDATE runs SET status='running' ... WHERE id=? AND status='queued'`` (run_queries.claim_run).
   A run that is not queued (already running elsewhere, finished, interrupted, cancelled) is refused,
   so a redelivered message never executes a run twice.
2. Prepare the run directory: config.yaml from the run's stored config, stale STOP / summary.json
   removed, `--resume` only when a checkpoint exists.
3. Start ``python -m lowdino KIND ...`` (or torchrun) as a child with stdout+stderr -> stdout.log,
   wrapped by worker.orphan_guard so that it dies with the worker.
4. Every `poll_interval` (~200 ms): new metrics.jsonl records -> metric_queries.ingest_metrics (one batch,
   idempotent per step); new stdout.log lines -> `log` events; cancel_requested in the DB -> STOP
   file; a worker shutdown -> STOP (the run ends interrupted, resumable); every `heartbeat_interval`
   the run's and the worker's heartbeat. Database hiccups (a PostgreSQL restart) are retried on the
   next poll without losing records; the child keeps training meanwhile. Records wait in memory up to
   `max_pending_records`; past that (a long outage) they are dropped and, once the database answers,
   metrics.jsonl is read again from the last step the database stored.
5. Exit: exit status + summary.json -> completed / cancelled / interrupted / failed (worker.outcome),
   with the last ~40 output lines as the error of a failed run.

If the run stops being ours while the child runs (the reaper marked it interrupted because our
heartbeats could not be written), the child is killed at once and nothing more is recorded: a resumed
attempt elsewhere may already own the run directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from lowdino.config import CONFIG_MODELS
from lowdino.config.loading import build_config, dump_config
from lowdino.contract.rundir import CONFIG_FILE, STDOUT_FILE, RunDir, atomic_write_text
from lowdino.errors import LowDinoError
from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import make_session_factory
from server.storage.models import Run
from server.workers import queries as worker_queries
from worker.command import build_command, child_env, guarded, plan_launch
from worker.identity import WorkerIdentity, WorkerState
from worker.outcome import Outcome, RunStatus, StopReason, decide_outcome, pruned, signal_log_line
from worker.tail import LogTail, MetricsTail

log = logging.getLogger(__name__)

# Database errors that mean "try again later" (server restarting, connection lost, SQLite busy), not "the
# supervisor is broken": an IntegrityError or ProgrammingError is a bug and must surface, not be retried.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
# One ingest call carries at most this many records; a replay of a long file is spread over polls.
MAX_RECORDS_PER_BATCH = 2000
# Records held while the database is away; beyond this the file, not memory, is the buffer.
MAX_PENDING_RECORDS = 50_000
FINISH_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)

Launcher = Callable[[str, Path, bool, int], Sequence[str]]


@dataclass
class SupervisorOptions:
    runs_root: Path
    heartbeat_interval: float = 5.0
    poll_interval: float = 0.2
    # How long a child may take to honour STOP (checkpoint + exit) before it is killed.
    stop_grace_s: float = 600.0
    tail_lines: int = 40
    python: str = sys.executable
    # (kind, run_dir, resume, nproc) -> argv; the default runs `python -m lowdino ...` (tests swap in a fake).
    launcher: Launcher | None = None
    env_extra: Mapping[str, str] = field(default_factory=dict)
    max_pending_records: int = MAX_PENDING_RECORDS


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: RunStatus | None  # None: refused, the run was not ours to execute (see `message`)
    message: str
    exit_code: int | None = None

    @property
    def refused(self) -> bool:
        return self.status is None


def default_launcher(python: str) -> Launcher:
    def launch(kind: str, run_dir: Path, resume: bool, nproc: int) -> list[str]:
        return guarded(
            build_command(kind, run_dir, resume=resume, nproc=nproc, python=python),
            nproc=nproc,
            python=python,
        )

    return launch


def write_run_config(kind: str, config: Mapping[str, Any], run_dir: Path, *, resume: bool) -> None:
    """Validate the stored config and write it as config.yaml, pointed at `run_dir`.

    Raises ConfigError (one line) when the stored config no longer validates.
    """
    model = cast(type[BaseModel], CONFIG_MODELS[kind])  # the dict literal is typed as ModelMetaclass
    overrides: dict[str, Any] = {**config, "output_dir": str(run_dir)}
    if "resume" in model.model_fields:
        overrides["resume"] = resume
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(build_config(model, overrides=overrides)))


def prepare_run_dir(run_dir: Path, *, resume_requested: bool) -> bool:
    """Clear what a previous attempt left that would confuse this one; returns whether to --resume."""
    rundir = RunDir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # A STOP left by a cancel or a shutdown would stop this attempt at once; an old summary would be
    # mistaken for this attempt's.
    rundir.stop_request.unlink(missing_ok=True)
    rundir.summary.unlink(missing_ok=True)
    resume = resume_requested and rundir.checkpoint.is_file()
    if not resume:
        # Starting from step 1 again: records of an earlier attempt would interleave with the new ones.
        rundir.metrics.unlink(missing_ok=True)
    return resume


class _Supervision:
    """State of one supervised child; `run()` is the poll loop."""

    def __init__(
        self,
        session: Session,
        run: Run,
        run_dir: Path,
        *,
        identity: WorkerIdentity,
        options: SupervisorOptions,
        state: WorkerState,
    ) -> None:
        self.session = session
        self.run_id = run.id
        self.run_dir = RunDir(run_dir)
        self.identity = identity
        self.options = options
        self.state = state
        self.metrics = MetricsTail(self.run_dir.metrics)
        self.logs = LogTail(run_dir / STDOUT_FILE, keep=options.tail_lines)
        self.pending_records: list[dict[str, Any]] = []
        self.pending_lines: list[str] = []
        # True after pending records were dropped: re-read metrics.jsonl from the last stored step.
        self.replay_needed = False
        self.stop_reason: StopReason | None = None
        self.stop_requested_at: float | None = None
        self.killed_after_s: float | None = None
        self.lease_lost = False
        self.last_beat = 0.0
        self.started_at = time.monotonic()

    # -- database, every call tolerant of transient errors -------------------------------------------------
    def _db(self, what: str, call: Callable[[], Any]) -> bool:
        """Run `call`; False (after a rollback) when the database is temporarily unavailable."""
        return _try_db(self.session, f"run {self.run_id}: {what}", call)

    def _flush(self) -> None:
        """Send pending metric records and log lines; keep them for the next poll if the DB refuses."""
        if self.replay_needed:
            self._replay()
        if self.pending_records:
            batch = self.pending_records[:MAX_RECORDS_PER_BATCH]
            if self._db(
                "ingest",
                lambda: metric_queries.ingest_metrics(self.session, run_id=self.run_id, records=batch),
            ):
                del self.pending_records[: len(batch)]
        if self.pending_lines:
            lines = list(self.pending_lines)
            if self._db(
                "log", lambda: event_queries.append_log(self.session, run_id=self.run_id, lines=lines)
            ):
                del self.pending_lines[: len(lines)]

    def _replay(self) -> None:
        """After dropped records: once the DB answers, queue metrics.jsonl again from its last stored step.

        The stored step itself is sent again (a step may span several records); ingestion is
        idempotent per (run, key, step), so repeating it is harmless.
        """
        stored: list[int] = []
        if not self._db("read stored step", lambda: stored.append(_stored_step(self.session, self.run_id))):
            return
        self.metrics.rewind()
        self.pending_records = [record for record in self.metrics.poll() if record["step"] >= stored[0]]
        self.replay_needed = False
        log.warning(
            "run %s: database back; %d metric records re-read from step %d of %s",
            self.run_id,
            len(self.pending_records),
            stored[0],
            self.run_dir.metrics.name,
        )

    def _pump(self, *, final: bool = False) -> None:
        records = self.metrics.poll()
        if not self.replay_needed:  # while a replay is due, the file keeps what is read meanwhile
            self.pending_records.extend(records)
            if len(self.pending_records) > self.options.max_pending_records:
                log.warning(
                    "run %s: %d metric records wait for the database; dropping them from memory, to "
                    "be re-read from %s when it answers",
                    self.run_id,
                    len(self.pending_records),
                    self.run_dir.metrics.name,
                )
                self.pending_records = []
                self.replay_needed = True
        self.pending_lines.extend(self.logs.drain() if final else self.logs.poll())
        self._flush()

    @property
    def has_pending(self) -> bool:
        return bool(self.pending_records or self.pending_lines or self.replay_needed)

    def _read_flags(self) -> tuple[RunStatus | None, bool, str | None] | None:
        """(status, cancel_requested, worker_name) of the run, status None once the row was deleted;
        None when the database did not answer."""
        try:
            found = run_queries.run_control_flags(self.session, run_id=self.run_id)
        except TRANSIENT_DB_ERRORS as exc:
            _note_db_failure(self.session, f"run {self.run_id}: read run", exc)
            return None
        if found is None:
            return (None, True, None)
        status, cancel, owner = found
        return RunStatus(status), cancel, owner

    def _beat(self, now: float) -> None:
        if now - self.last_beat < self.options.heartbeat_interval:
            return
        if self._db(
            "heartbeat",
            lambda: worker_queries.heartbeat(
                self.session, worker_name=self.identity.name, run_id=self.run_id
            ),
        ):
            self.last_beat = now

    # -- the child -------------------------------------------------------------------------------------------
    def _request_stop(self, reason: StopReason, now: float) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stop_requested_at = now
            log.info("run %s: asking the child to stop (%s)", self.run_id, reason.value)
        if not self.run_dir.stop_requested():
            self.run_dir.request_stop()

    def _watch(self, process: subprocess.Popen[bytes], now: float) -> None:
        flags = self._read_flags()
        if flags is not None:
            status, cancel, owner = flags
            if status is not RunStatus.RUNNING or owner != self.identity.name:
                self.lease_lost = True
                now_is = status or "gone from the database"
                log.warning("run %s is now %s (worker %s); killing its child", self.run_id, now_is, owner)
                _kill_group(process)
                return
            if cancel:
                self._request_stop(StopReason.CANCEL, now)
        if self.state.shutdown.is_set():
            self._request_stop(StopReason.SHUTDOWN, now)
        elif self.stop_reason is StopReason.CANCEL and not self.run_dir.stop_requested():
            self.run_dir.request_stop()  # someone removed it; the DB flag still says cancel
        asked = self.stop_requested_at
        if asked is not None and self.killed_after_s is None and now - asked > self.options.stop_grace_s:
            self.killed_after_s = now - asked
            log.warning("run %s: child ignored STOP for %.0f s; killing it", self.run_id, self.killed_after_s)
            _kill_group(process)

    def run(self, process: subprocess.Popen[bytes]) -> int:
        self.started_at = time.monotonic()
        while True:
            now = time.monotonic()
            returncode = process.poll()
            self._pump()
            if returncode is not None:
                break
            self._watch(process, now)
            if self.lease_lost:
                returncode = process.wait()
                break
            self._beat(now)
            time.sleep(self.options.poll_interval)
        # The child is gone: what it wrote last is complete now (a last line may lack its newline).
        self._pump(final=True)
        # The database may be restarting right now: every record must be stored before the outcome
        # (a completed run with missing steps would be wrong), so wait as long as for the outcome.
        for delay in FINISH_RETRY_DELAYS_S:
            if not self.has_pending:
                break
            time.sleep(delay)
            self._flush()
        return returncode


def _stored_step(session: Session, run_id: str) -> int:
    """The last metrics step the database holds for the run (0 when none)."""
    run = run_queries.require_run(session, run_id=run_id)
    session.refresh(run)  # the identity map may hold a copy from before the outage
    return int(run.step or 0)


def _try_db(session: Session, what: str, call: Callable[[], Any]) -> bool:
    """Run `call`; False (after a rollback) when the database is temporarily unavailable."""
    try:
        call()
    except TRANSIENT_DB_ERRORS as exc:
        _note_db_failure(session, what, exc)
        return False
    return True


def _note_db_failure(session: Session, what: str, exc: Exception) -> None:
    session.rollback()
    log.warning(
        "%s failed (%s: %s); will retry", what, exc.__class__.__name__, str(exc).splitlines()[0][:200]
    )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group (DataLoader workers, torchrun ranks)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _finish(
    session: Session, run_id: str, outcome: Outcome, returncode: int | None, summary: dict[str, Any] | None
) -> bool:
    """running -> final status (conditional: a run the reaper took away is not overwritten)."""
    fields: dict[str, Any] = {"exit_code": returncode}
    if outcome.status is RunStatus.FAILED:
        error = outcome.message
        if outcome.error:
            error += f"\n--- last lines of output ---\n{outcome.error}"
        fields["error"] = error
    elif outcome.status in (RunStatus.INTERRUPTED, RunStatus.PRUNED):
        fields["error"] = outcome.message
    params = (summary or {}).get("params")
    if isinstance(params, int) and not isinstance(params, bool):
        fields["params"] = params
    moved: list[bool] = []

    def record() -> None:
        run = run_queries.transition_run(
            session, run_id=run_id, from_statuses=(RunStatus.RUNNING,), status=outcome.status, **fields
        )
        moved.append(run is not None)

    # The outcome is the one thing that must reach the database; a restarting database gets some time.
    for delay in FINISH_RETRY_DELAYS_S:
        if _try_db(session, f"run {run_id}: record {outcome.status.value}", record):
            return moved[0]
        time.sleep(delay)
    record()  # last try: let the error propagate (the run stays running until the reaper interrupts it)
    return moved[0]


def _fail_before_start(session: Session, run_id: str, message: str) -> RunResult:
    event_queries.append_log(session, run_id=run_id, lines=[f"[worker] {message}"], stream="worker")
    run_queries.transition_run(
        session, run_id=run_id, from_statuses=(RunStatus.RUNNING,), status=RunStatus.FAILED, error=message
    )
    return RunResult(run_id, RunStatus.FAILED, message)


def execute_run(
    engine: Engine,
    run_id: str,
    *,
    identity: WorkerIdentity,
    options: SupervisorOptions,
    state: WorkerState | None = None,
) -> RunResult:
    """Claim `run_id`, run its training child to the end and record the outcome (see module docstring)."""
    state = state or WorkerState()
    session = make_session_factory(engine)()
    try:
        return _execute(session, run_id, identity=identity, options=options, state=state)
    finally:
        session.close()


def _execute(
    session: Session, run_id: str, *, identity: WorkerIdentity, options: SupervisorOptions, state: WorkerState
) -> RunResult:
    run = run_queries.get_run(session, run_id=run_id)
    if run is None:
        return RunResult(run_id, None, f"run {run_id} does not exist (deleted after it was queued?)")
    run_dir = Path(run.output_dir) if run.output_dir else options.runs_root / run_id
    claimed = run_queries.claim_run(
        session,
        run_id=run_id,
        worker_name=identity.name,
        output_dir=str(run_dir),
        error=None,
        exit_code=None,
        finished_at=None,
    )
    if claimed is None:
        session.rollback()
        current = run_queries.get_run(session, run_id=run_id)
        now_is = current.status if current else "gone from the database"
        return RunResult(run_id, None, f"run {run_id} is {now_is}, not queued; not running it again")
    run = claimed
    state.current_run_id = run_id
    try:
        worker_queries.heartbeat(session, worker_name=identity.name, run_id=run_id)
        if run.cancel_requested:
            stopped = pruned(Outcome(RunStatus.CANCELLED, "cancelled before it started"), run.prune_reason)
            run_queries.transition_run(
                session,
                run_id=run_id,
                from_statuses=(RunStatus.RUNNING,),
                status=stopped.status,
                **({"error": stopped.message} if stopped.status is RunStatus.PRUNED else {}),
            )
            return RunResult(run_id, stopped.status, stopped.message)
        return _start_and_follow(session, run, run_dir, identity=identity, options=options, state=state)
    finally:
        state.current_run_id = None


@dataclass(frozen=True)
class _Launch:
    """What starting the child needs, decided before anything runs."""

    argv: list[str]
    env: dict[str, str]
    resume: bool


def _start_and_follow(
    session: Session,
    run: Run,
    run_dir: Path,
    *,
    identity: WorkerIdentity,
    options: SupervisorOptions,
    state: WorkerState,
) -> RunResult:
    """Prepare the run directory, start the child, follow it to its end, record the outcome."""
    launch = _prepare(session, run, run_dir, identity=identity, options=options)
    if isinstance(launch, RunResult):
        return launch
    supervision = _Supervision(session, run, run_dir, identity=identity, options=options, state=state)
    process = _spawn(session, run.id, run_dir, launch)
    if isinstance(process, RunResult):
        return process
    returncode = _follow(session, run.id, supervision, process)
    if supervision.lease_lost:
        return RunResult(run.id, None, "the run was taken away (interrupted) while it ran", returncode)
    return _conclude(session, run.id, run_dir, supervision, returncode)


def _prepare(
    session: Session, run: Run, run_dir: Path, *, identity: WorkerIdentity, options: SupervisorOptions
) -> _Launch | RunResult:
    """Plan the launch, lay out the run directory and write its config.yaml; a failed run if any fails."""
    run_id, kind, config = run.id, run.kind, dict(run.config or {})
    try:
        plan = plan_launch(kind, config, identity.gpus)
        resume = prepare_run_dir(run_dir, resume_requested=bool(config.get("resume")))
        write_run_config(kind, {**config, **plan.config_overrides}, run_dir, resume=resume)
    except LowDinoError as exc:
        return _fail_before_start(session, run_id, str(exc))
    except OSError as exc:
        return _fail_before_start(
            session,
            run_id,
            f"could not prepare run directory {run_dir} ({exc}); check its permissions and disk space",
        )
    launcher = options.launcher or default_launcher(options.python)
    argv = list(launcher(kind, run_dir, resume, plan.nproc))
    notes = [
        f"[worker] {identity.name}: attempt {run.attempt}, {'resuming' if resume else 'starting'}: {' '.join(argv)}"
    ]
    if config.get("resume") and not resume:
        notes.append("[worker] no checkpoint.pth from an earlier attempt; starting from step 0")
    event_queries.append_log(session, run_id=run_id, lines=notes, stream="worker")
    return _Launch(argv=argv, env=child_env(plan.visible_gpus, extra=options.env_extra), resume=resume)


def _spawn(
    session: Session, run_id: str, run_dir: Path, launch: _Launch
) -> subprocess.Popen[bytes] | RunResult:
    """The training child in its own process group, its output appended to stdout.log."""
    try:
        with (run_dir / STDOUT_FILE).open("ab") as stdout:
            return subprocess.Popen(
                launch.argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT,
                env=launch.env,
                start_new_session=True,
            )
    except OSError as exc:
        return _fail_before_start(
            session, run_id, f"could not start the training process ({exc}); check the worker's Python"
        )


def _follow(
    session: Session, run_id: str, supervision: _Supervision, process: subprocess.Popen[bytes]
) -> int:
    """The poll loop until the child exits; its exit status."""
    try:
        return supervision.run(process)
    except BaseException:
        # The supervisor itself is failing (a bug, or a cold shutdown raising into this thread): never
        # leave a trainer behind, and leave the run resumable.
        _kill_group(process)
        process.wait()
        _try_db(
            session,
            f"run {run_id}: mark interrupted",
            lambda: run_queries.transition_run(
                session,
                run_id=run_id,
                from_statuses=(RunStatus.RUNNING,),
                status=RunStatus.INTERRUPTED,
                error="the worker stopped supervising this run abruptly; resume it to continue",
            ),
        )
        raise


def _conclude(
    session: Session, run_id: str, run_dir: Path, supervision: _Supervision, returncode: int
) -> RunResult:
    """Map the exit to an outcome (worker.outcome), log it and record the final status."""
    _note_signal_in_train_log(run_dir, supervision, returncode)
    summary = _read_summary(run_dir)
    outcome = decide_outcome(
        returncode,
        last_lines=list(supervision.logs.recent),
        summary=summary,
        stop_reason=supervision.stop_reason,
        killed_after_s=supervision.killed_after_s,
    )
    if outcome.status is RunStatus.CANCELLED:
        reasons: list[str | None] = []
        _try_db(
            session,
            f"run {run_id}: read prune reason",
            lambda: reasons.append(run_queries.prune_reason(session, run_id=run_id)),
        )
        outcome = pruned(outcome, reasons[0] if reasons else None)
    _try_db(
        session,
        f"run {run_id}: final log",
        lambda: event_queries.append_log(
            session, run_id=run_id, lines=[f"[worker] {outcome.message}"], stream="worker"
        ),
    )
    recorded = _finish(session, run_id, outcome, returncode, summary)
    message = (
        outcome.message if recorded else f"{outcome.message} (not recorded: the run was no longer running)"
    )
    return RunResult(run_id, outcome.status, message, returncode)


def _note_signal_in_train_log(run_dir: Path, supervision: _Supervision, returncode: int) -> None:
    """Append why the child died to train.log when a signal ended it (it could not say so itself)."""
    line = signal_log_line(
        returncode,
        elapsed_s=time.monotonic() - supervision.started_at,
        killed_by_worker=supervision.killed_after_s is not None,
    )
    if line is None:
        return
    try:
        with RunDir(run_dir).log.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        log.warning("run %s: could not append to %s (%s)", supervision.run_id, RunDir(run_dir).log, exc)


def _read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return RunDir(run_dir).read_summary()
    except (OSError, ValueError):
        return None
