"""Live events under load: many runs writing metrics, many open event streams, several API processes.

PostgreSQL + Redis (the scaled deployment): `--apis` API processes (uvicorn, `server.http.app:create_app`
configured like `lowdino serve --no-worker`) on one temporary database on 127.0.0.1:5432 and the
Redis broker on 127.0.0.1:6379; `--runs` runs written at `--rate` steps/s each by a separate writer
process through the worker's own path (`metric_queries.ingest_metrics`: upsert, progress, one `metric` event,
NOTIFY); SSE clients (asyncio + httpx streaming, spread over the runs and the APIs) measured first at
`--few-clients`, then at `--clients`. Then SQLite in the embedded mode (one API process, the same
writer) at `--few-clients`.

Reported per phase: metric-to-client latency p50/p95 (the writer's wall-clock timestamp in the point
vs the client's receive time; one machine, one clock), events received, error responses (a stream
that is refused or breaks), and on PostgreSQL the database's transactions and rows returned per
second (`pg_stat_database` deltas; the writers' own commits taken out) and the reads of the events
table (`pg_stat_user_tables`; only the API processes read it): the API processes' load,
which must not grow with the number of clients. Loopback only; each phase lasts `--seconds`.

    .venv/bin/python benchmarks/load.py [--seconds 60] [--runs 20] [--rate 10] [--clients 200]

Prints one JSON object (seconds; the machine's load average is included: the host may be shared).
Targets (issue 13): p95 < 1 s, database load independent of the number of clients, no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from servicelib import postgres_available, reachable, start_api, temporary_postgres
from sqlalchemy import Engine, text

from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import create_db_engine, session_scope, upgrade_database
from server.workers import queries as worker_queries

TARGET_P95_S = 1.0
WARMUP_S = 5.0  # connect + catch up; PostgreSQL also publishes its statistics late
HEARTBEAT_S = 5.0
REDIS_URL = "redis://127.0.0.1:6379/13"  # only published to when a run is submitted: never here


# -- the writer process ---------------------------------------------------------------------------------
def write(database_url: str, run_ids: list[str], rate: float, progress: Path) -> None:
    """Every 1/rate s, one metrics record per run (what a worker's tailer ingests), until SIGTERM.

    Appends "<unix time> <commits so far>" to `progress` about twice a second, so that the main
    process can take the writer's own commits out of the database's transaction count.
    """
    engine = create_db_engine(database_url)
    stop = False

    def finish(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    commits, step, last_report, last_beat = 0, 0, 0.0, 0.0
    period = 1.0 / rate
    next_tick = time.monotonic()
    with session_scope(engine) as session, progress.open("a") as out:
        while not stop:
            step += 1
            if time.monotonic() - last_beat >= HEARTBEAT_S:  # as a worker does: else the reaper interrupts
                last_beat = time.monotonic()
                for run_id in run_ids:
                    worker_queries.heartbeat(session, worker_name=f"load-writer-{run_id}", run_id=run_id)
                    commits += 1
            for run_id in run_ids:
                record = {"step": step, "time": time.time(), "loss": 1.0 / step, "lr": 1e-3}
                metric_queries.ingest_metrics(session, run_id=run_id, records=[record])
                commits += 1
            if time.monotonic() - last_report >= 0.5:
                last_report = time.monotonic()
                out.write(f"{time.time()} {commits}\n")
                out.flush()
            next_tick += period
            time.sleep(max(0.0, next_tick - time.monotonic()))  # a slow database lowers the rate
        out.write(f"{time.time()} {commits}\n")
    engine.dispose()


def writer_commits(progress_files: list[Path]) -> int:
    total = 0
    for progress in progress_files:
        lines = progress.read_text().split("\n") if progress.is_file() else []
        complete = [line for line in lines if line.count(" ") == 1]
        total += int(complete[-1].split()[1]) if complete else 0
    return total


# -- the SSE clients ------------------------------------------------------------------------------------
@dataclass
class Phase:
    clients: int
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    connected: int = 0
    errors: list[str] = field(default_factory=list)
    recording: bool = False


async def follow(http: httpx.AsyncClient, url: str, phase: Phase) -> None:
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                phase.errors.append(f"HTTP {response.status_code}")
                return
            phase.connected += 1
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "metric":
                    arrived = time.time()
                    written = json.loads(line[5:])["points"][0]["time"]
                    if phase.recording:
                        phase.latencies.append(arrived - written)
                        phase.received += 1
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken stream is an error, whatever broke it
        phase.errors.append(f"{exc.__class__.__name__}: {exc}"[:200])


async def run_phase(
    bases: list[str], run_ids: list[str], after_id: int, clients: int, seconds: float, measure: Any
) -> tuple[Phase, dict[str, Any]]:
    """`clients` streams (client i: run i % runs, API i % apis) for WARMUP_S + `seconds`."""
    phase = Phase(clients)
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=60.0), limits=limits) as http:
        tasks = [
            asyncio.create_task(
                follow(
                    http,
                    f"{bases[i % len(bases)]}/api/runs/{run_ids[i % len(run_ids)]}/events?last_event_id={after_id}",
                    phase,
                )
            )
            for i in range(clients)
        ]
        await asyncio.sleep(WARMUP_S)
        before = await asyncio.to_thread(measure)
        phase.recording = True
        await asyncio.sleep(seconds)
        phase.recording = False
        after = await asyncio.to_thread(measure)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return phase, {"before": before, "after": after}


def summary(phase: Phase, seconds: float) -> dict[str, Any]:
    ordered = sorted(phase.latencies)

    def quantile(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4) if ordered else None

    return {
        "clients": phase.clients,
        "connected": phase.connected,
        "events_received": phase.received,
        "events_per_s_at_clients": round(phase.received / seconds, 1),
        "latency_p50_s": quantile(0.5),
        "latency_p95_s": quantile(0.95),
        "latency_max_s": round(ordered[-1], 4) if ordered else None,
        "latency_mean_s": round(statistics.fmean(ordered), 4) if ordered else None,
        "errors": len(phase.errors),
        "first_errors": phase.errors[:3],
    }


# -- one deployment -------------------------------------------------------------------------------------
def pg_counters(engine: Engine) -> dict[str, float]:
    """Cumulative counters: the database's transactions and rows returned, and the reads of the events
    table (scans and rows), which only the API processes do (writers only insert into it)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        database = connection.execute(
            text(
                "SELECT xact_commit + xact_rollback, tup_returned FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        ).one()
        events = connection.execute(
            text(
                "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0), "
                "coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
                "FROM pg_stat_user_tables WHERE relname = 'events'"
            )
        ).one()
    return {
        "time": time.time(),
        "xacts": float(database[0]),
        "tup_returned": float(database[1]),
        "events_scans": float(events[0]),
        "events_rows": float(events[1]),
    }


def measure_deployment(
    database_url: str, *, apis: int, env_extra: dict[str, str], args: argparse.Namespace, phases: list[int]
) -> dict[str, Any]:
    engine = create_db_engine(database_url)
    upgrade_database(engine)
    with session_scope(engine) as session:
        run_ids = [
            run_queries.create_run(session, kind="pretrain", config={}, name=f"load-{i}").id
            for i in range(args.runs)
        ]
        for run_id in run_ids:
            run_queries.claim_run(session, run_id=run_id, worker_name="load-writer")
    postgres = engine.dialect.name == "postgresql"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        processes, bases = [], []
        for _ in range(apis):
            process, base = start_api(home, database_url, env_extra=env_extra)
            processes.append(process)
            bases.append(base)
        progress = [home / f"writer-{index}.progress" for index in range(args.writers)]
        writers = [
            subprocess.Popen(
                [sys.executable, __file__, "--writer", database_url, "--rate", str(args.rate),
                 "--run-ids", ",".join(run_ids[index :: args.writers])],
                env={**os.environ, "LOWDINO_WRITER_PROGRESS": str(progress[index])},
            )
            for index in range(args.writers)
        ]  # fmt: skip
        try:

            def measure() -> dict[str, float]:
                counters = pg_counters(engine) if postgres else {"time": time.time()}
                counters["writer_commits"] = float(writer_commits(progress))
                return counters

            results = []
            for clients in phases:
                # Streams start at the newest event: no catch-up read of history inside the window.
                with session_scope(engine) as session:
                    after_id = max(
                        event_queries.latest_event_id(session, run_id=run_id) or 0 for run_id in run_ids
                    )
                phase, window = asyncio.run(
                    run_phase(bases, run_ids, after_id, clients, args.seconds, measure)
                )
                result = summary(phase, args.seconds)
                before, after = window["before"], window["after"]
                elapsed = after["time"] - before["time"]
                writes = after["writer_commits"] - before["writer_commits"]
                result["writer_commits_per_s"] = round(writes / elapsed, 1)
                if postgres:
                    xacts = after["xacts"] - before["xacts"]
                    result["db_transactions_per_s"] = round(xacts / elapsed, 1)
                    # Each ingest is one transaction; the rest is the API processes (and this probe).
                    result["db_transactions_per_s_besides_writer"] = round((xacts - writes) / elapsed, 1)
                    for key in ("tup_returned", "events_scans", "events_rows"):
                        result[f"db_{key}_per_s"] = round((after[key] - before[key]) / elapsed, 1)
                    # The writers' rate varies with the machine's load; per write, the phases compare.
                    scans = after["events_scans"] - before["events_scans"]
                    result["db_events_scans_per_writer_commit"] = round(scans / max(writes, 1), 3)
                result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
                results.append(result)
        finally:
            for writer in writers:
                writer.send_signal(signal.SIGTERM)
            for writer in writers:
                writer.wait(timeout=60)
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    engine.dispose()
    return {
        "database": engine.dialect.name,
        "apis": apis,
        "runs": args.runs,
        "rate_steps_per_s_per_run": args.rate,
        "phases": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per phase")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="steps/s written per run")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--few-clients", type=int, default=20, help="the first phase, and the SQLite one")
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--writers", type=int, default=2, help="writer processes (the runs split among them)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--writer", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--run-ids", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        write(args.writer, args.run_ids.split(","), args.rate, Path(os.environ["LOWDINO_WRITER_PROGRESS"]))
        return
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "load",
        "command": " ".join(["benchmarks/load.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(value, 2) for value in os.getloadavg()],
        "targets": {"latency_p95_s": TARGET_P95_S, "errors": 0, "db_load": "independent of clients"},
    }
    if not postgres_available() or not reachable("127.0.0.1", 6379):
        result["postgres_redis"] = "skipped: PostgreSQL 127.0.0.1:5432 or Redis 127.0.0.1:6379 unreachable"
    else:
        with temporary_postgres("lowdino_load") as database_url:
            result["postgres_redis"] = measure_deployment(
                database_url,
                apis=args.apis,
                env_extra={"LOWDINO_BROKER_URL": REDIS_URL},
                args=args,
                phases=[args.few_clients, args.clients],
            )
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            result["sqlite_embedded"] = measure_deployment(
                f"sqlite:///{Path(tmp) / 'lowdino.db'}",
                apis=1,
                env_extra={"LOWDINO_BROKER_URL": f"sqla+sqlite:///{Path(tmp) / 'broker.db'}"},
                args=args,
                phases=[args.few_clients],
            )
    result["loadavg_after"] = [round(value, 2) for value in os.getloadavg()]
    result["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
