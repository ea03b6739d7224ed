"""The data layer the worker uses: ingestion, status transitions, heartbeats and the reaper, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from lowdino.contract.metrics import EVAL_SERIES_FIELD
from server.events import queries as event_queries
from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.engine import session_scope
from server.storage.models import Metric, Run, utcnow
from server.workers import queries as worker_queries


@pytest.fixture
def run_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        return run_queries.create_run(session, kind="pretrain", config={"backbone": "resnet5m"}, name="r").id


def records(steps: range, *, total: int = 100, offset: float = 0.0) -> list[dict]:
    return [
        {
            "step": s,
            "epoch": s / 10,
            "time": s * 0.5,
            "total_steps": total,
            "loss": 5.0 - s * 0.01 + offset,
            "lr": 0.1,
            "knn_top1": float(s) if s % 10 == 0 else None,
        }
        for s in steps
    ]


def rows_per_step(engine: Engine, run_id: str, key: str) -> dict[int, int]:
    with session_scope(engine) as session:
        query = (
            select(Metric.step, func.count())
            .where(Metric.run_id == run_id, Metric.key == key)
            .group_by(Metric.step)
        )
        return dict(session.execute(query).all())


def test_ingest_is_idempotent_and_updates_values(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        written = metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(1, 21)))
        assert written == 20 * 2 + 2  # loss + lr per step, knn_top1 at steps 10 and 20 (None skipped)
        # A replay (resume from a checkpoint at step 15) rewrites 15-20 and adds 21-30.
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(15, 31), offset=-1.0))
        # Duplicates inside one batch keep the last value instead of failing the upsert.
        metric_queries.ingest_metrics(
            session, run_id=run_id, records=[{"step": 5, "loss": 9.0}, {"step": 5, "loss": 8.0}]
        )
    counts = rows_per_step(engine, run_id, "loss")
    assert sorted(counts) == list(range(1, 31))
    assert set(counts.values()) == {1}
    with session_scope(engine) as session:
        values = dict(
            session.execute(
                select(Metric.step, Metric.value).where(Metric.run_id == run_id, Metric.key == "loss")
            ).all()
        )
    assert values[5] == 8.0
    assert values[16] == pytest.approx(5.0 - 0.16 - 1.0)
    assert values[14] == pytest.approx(5.0 - 0.14)


def test_ingest_updates_progress_latest_and_best(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(1, 41)))
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(41, 51)))
        run = run_queries.require_run(session, run_id=run_id)
        assert (run.step, run.total_steps) == (50, 100)
        assert run.fraction == pytest.approx(0.5)
        assert run.eta_seconds == pytest.approx(50 * 0.5)  # 0.5 s per step, 50 steps left
        assert run.latest_metrics["loss"] == pytest.approx(4.5)
        assert run.latest_metrics["knn_top1"] == 50.0
        assert run.latest_metrics["step"] == 50
        assert run.best_metrics["loss"] == {"value": pytest.approx(4.5), "step": 50, "goal": "min"}
        assert run.best_metrics["knn_top1"]["value"] == 50.0
        assert run.best_metrics["knn_top1"]["goal"] == "max"
        assert "lr" not in run.best_metrics  # a schedule has no "best"
        metric_queries.ingest_metrics(
            session, run_id=run_id, records=[{"step": 51, "knn_top1": 10.0, "loss": 9.0}]
        )
        run = run_queries.require_run(session, run_id=run_id)
        assert run.best_metrics["knn_top1"]["value"] == 50.0
        assert run.latest_metrics["knn_top1"] == 10.0


def test_ingest_appends_one_metric_event_per_batch(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        before = event_queries.events_after(session, run_id=run_id)
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(1, 6)))
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(6, 8)))
        events = event_queries.events_after(session, run_id=run_id, after_id=before[-1].id)
    assert [event.type for event in events] == ["metric", "metric"]
    assert events[0].id < events[1].id
    points = events[0].data["points"]
    assert {(p["key"], p["step"]) for p in points} >= {("loss", 1), ("loss", 5), ("lr", 3)}
    assert events[1].data["step"] == 7
    assert events[1].data["total_steps"] == 100


def test_eval_records_get_a_series_per_protocol(engine: Engine, run_id: str) -> None:
    eval_records = [
        {"step": 1, "total_steps": 3, "protocol": "knn", "label_fraction": 1.0, "seed": 0, "top1": 40.0},
        {"step": 2, "total_steps": 3, "protocol": "linear", "label_fraction": 0.1, "seed": 0, "top1": 45.5},
        {"step": 3, "total_steps": 3, "protocol": "linear", "label_fraction": 0.3, "seed": 0, "top1": 50.0},
    ]
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=eval_records)
        assert {"knn_top1", "linear_10pct_top1", "linear_30pct_top1"} <= set(
            metric_queries.metric_keys(session, run_id=run_id)
        )
        best = run_queries.require_run(session, run_id=run_id).best_metrics
        assert best["linear_10pct_top1"]["value"] == 45.5


def test_eval_records_name_their_own_series(engine: Engine, run_id: str) -> None:
    # What the library writes now: the series under EVAL_SERIES_FIELD, used as written (here one the
    # protocol / fraction fields could not give). Old logs without it still get the derived name.
    records = [
        {
            "step": 1,
            "protocol": "linear",
            "label_fraction": 0.1,
            "top1": 45.5,
            EVAL_SERIES_FIELD: "probe_top1",
        },
        {"step": 2, "protocol": "linear", "label_fraction": 0.3, "top1": 50.0},
    ]
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=records)
        keys = set(metric_queries.metric_keys(session, run_id=run_id))
        assert {"probe_top1", "linear_30pct_top1"} <= keys
        assert "linear_10pct_top1" not in keys
        assert EVAL_SERIES_FIELD not in keys
        best = run_queries.require_run(session, run_id=run_id).best_metrics
        assert best["probe_top1"]["value"] == 45.5


def test_ingest_into_unknown_run_raises(engine: Engine) -> None:
    from server.errors import RunNotFoundError

    with session_scope(engine) as session, pytest.raises(RunNotFoundError):
        metric_queries.ingest_metrics(session, run_id="missing", records=[{"step": 1, "loss": 1.0}])


def test_claim_is_exclusive(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as first, session_scope(engine) as second:
        claimed = run_queries.claim_run(first, run_id=run_id, worker_name="a")
        assert claimed is not None
        assert claimed.status == "running"
        assert claimed.worker_name == "a"
        assert claimed.started_at is not None
        assert run_queries.claim_run(second, run_id=run_id, worker_name="b") is None
    with session_scope(engine) as session:
        statuses = [
            event.data["status"]
            for event in event_queries.events_after(session, run_id=run_id)
            if event.type == "status"
        ]
    assert statuses == ["queued", "running"]


def test_update_run_status_stamps_times_and_rejects_unknown_fields(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        run = run_queries.update_run_status(session, run_id=run_id, status="running", worker_name="w")
        assert run.started_at is not None
        assert run.heartbeat_at is not None
        run = run_queries.update_run_status(
            session, run_id=run_id, status="failed", error="boom", exit_code=1
        )
        assert run.finished_at is not None
        assert run.finished_at.tzinfo is not None
        last = event_queries.events_after(session, run_id=run_id)[-1]
        assert last.data["status"] == "failed"
        assert last.data["error"] == "boom"
        assert last.data["exit_code"] == 1
        with pytest.raises(ValueError, match="unknown run fields"):
            run_queries.update_run_status(session, run_id=run_id, status="failed", colour="red")
        with pytest.raises(ValueError, match="status"):
            run_queries.update_run_status(session, run_id=run_id, status="exploded")


def test_reaper_interrupts_only_stale_running_runs(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        fresh = run_queries.create_run(session, kind="pretrain", config={}).id
        queued = run_queries.create_run(session, kind="pretrain", config={}).id
        run_queries.claim_run(session, run_id=run_id, worker_name="dead")
        run_queries.claim_run(session, run_id=fresh, worker_name="alive")
        stale_time = utcnow() - timedelta(seconds=120)
        run_queries.update_run_status(session, run_id=run_id, status="running", heartbeat_at=stale_time)
        worker_queries.heartbeat(session, worker_name="alive", run_id=fresh)
        changed = run_queries.mark_interrupted_runs(session, older_than=30)
        assert changed == [run_id]
        assert run_queries.require_run(session, run_id=run_id).status == "interrupted"
        assert "heartbeat" in (run_queries.require_run(session, run_id=run_id).error or "")
        assert run_queries.require_run(session, run_id=fresh).status == "running"
        assert run_queries.require_run(session, run_id=queued).status == "queued"
        assert run_queries.mark_interrupted_runs(session, older_than=30) == []
        # A late heartbeat of the dead worker does not revive the run.
        worker_queries.heartbeat(session, worker_name="dead", run_id=run_id)
        assert run_queries.require_run(session, run_id=run_id).status == "interrupted"


def test_workers_register_beat_and_list(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        worker_queries.upsert_worker(
            session, name="gpu01-1", hostname="gpu01", queues=["gpu"], gpus=[0, 1], pid=123
        )
        worker_queries.heartbeat(session, worker_name="gpu01-1", run_id=run_id)
        worker_queries.heartbeat(session, worker_name="newcomer")
        workers = {worker.name: worker for worker in worker_queries.list_workers(session, seen_within=30)}
        assert workers["gpu01-1"].gpus == [0, 1]
        assert workers["gpu01-1"].current_run_id == run_id
        assert "newcomer" in workers
        worker_queries.remove_worker(session, name="newcomer")
        assert [w.name for w in worker_queries.list_workers(session)] == ["gpu01-1"]


def test_logs_are_events_with_tail(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        event_queries.append_log(session, run_id=run_id, lines="one\ntwo")
        event_queries.append_log(
            session, run_id=run_id, lines=[f"line {i}" for i in range(450)], stream="stderr"
        )
        assert event_queries.log_lines(session, run_id=run_id, tail=3) == ["line 447", "line 448", "line 449"]
        assert event_queries.log_lines(session, run_id=run_id, tail=452)[:2] == ["one", "two"]
        logs = [event for event in event_queries.events_after(session, run_id=run_id) if event.type == "log"]
        assert len(logs) == 4  # 2 lines, then 450 split into 200 + 200 + 50


def test_deleting_a_run_cascades(engine: Engine, run_id: str) -> None:
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=records(range(1, 5)))
        run_queries.delete_run(session, run_id=run_id)
        assert session.scalar(select(func.count()).select_from(Metric)) == 0
        assert session.get(Run, run_id) is None
        assert event_queries.events_after(session, run_id=run_id) == []


def test_only_metrics_the_library_declares_keep_a_best(engine: Engine, run_id: str) -> None:
    from lowdino.contract.metrics import METRIC_GOALS

    records = [
        {"step": 1, "loss": 3.0, "val_accuracy_guess": 10.0, "teacher_entropy": 5.0, "knn_top1": 20.0},
        {"step": 2, "loss": 2.0, "val_accuracy_guess": 30.0, "teacher_entropy": 4.0, "knn_top1": 10.0},
    ]
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=records)
        best = run_queries.require_run(session, run_id=run_id).best_metrics
    assert best["loss"] == {"value": 2.0, "step": 2, "goal": METRIC_GOALS["loss"]}
    assert best["knn_top1"] == {"value": 20.0, "step": 1, "goal": "max"}
    # Not declared by the library: no guess from the name, so no "best" either.
    assert "val_accuracy_guess" not in best
    assert "teacher_entropy" not in best


def test_the_step_0_look_is_kept_in_the_series_but_is_never_the_best(engine: Engine, run_id: str) -> None:
    # The trainer's step-0 kNN is the untrained network's: a run that only lost ground keeps a best
    # from its trained states, and the random-init figure stays readable in the series.
    records = [{"step": 0, "knn_top1": 18.0}, {"step": 5, "knn_top1": 11.5}, {"step": 10, "knn_top1": 12.0}]
    with session_scope(engine) as session:
        metric_queries.ingest_metrics(session, run_id=run_id, records=records)
        best = run_queries.require_run(session, run_id=run_id).best_metrics
        points = list(metric_queries.iter_points(session, run_id=run_id, keys=["knn_top1"]))
    assert best["knn_top1"] == {"value": 12.0, "step": 10, "goal": "max"}
    assert [(step, value) for _key, step, _epoch, _time, value in points] == [
        (0, 18.0),
        (5, 11.5),
        (10, 12.0),
    ]


def test_a_generated_name_longer_than_the_column_is_shortened_not_an_error(engine: Engine) -> None:
    # A sweep names its runs after every changed option; on PostgreSQL an over-long name was a 500.
    long_name = ", ".join(f"option_{i}=value_{i}" for i in range(20))
    assert len(long_name) > run_queries.NAME_LENGTH
    with session_scope(engine) as session:
        run = run_queries.create_run(session, kind="pretrain", config={}, name=long_name)
        stored = run_queries.get_run(session, run_id=run.id)
        assert stored is not None
        assert stored.name is not None
        assert len(stored.name) == run_queries.NAME_LENGTH
        assert stored.name == long_name[: run_queries.NAME_LENGTH - 1] + "…"
