"""GET /api/runs?where=: the query grammar over run fields, config options, tags, dates and summary
metrics, on SQLite and PostgreSQL; refusals (unknown keys, injection attempts) name the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from server.metrics import queries as metric_queries
from server.runs import queries as run_queries
from server.storage.models import Run

TINY = {"dataset": "synthetic", "batch_size": 16}


def submit(
    client: TestClient, *, name: str, tags: list[str], kind: str = "pretrain", **config: object
) -> str:
    body = {"kind": kind, "name": name, "tags": tags, "config": {**TINY, **config}}
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def runs(client: TestClient, session: object) -> dict[str, str]:
    """Four runs: two backbones, two learning rates, kNN figures 25 / 35 / 45, one eval run."""
    ids = {
        "small": submit(client, name="small lr", tags=["baseline"], backbone="resnet5m", lr=0.0005),
        "big": submit(client, name="big lr", tags=["sweep", "seed-0"], backbone="resnet5m", lr=0.002),
        "mvit": submit(client, name="mobile", tags=["sweep"], backbone="mobilevit_xxs", lr=0.002),
        "eval": submit(client, name="eval it", tags=[], kind="eval", backbone="resnet5m"),
    }
    for key, knn, loss in (("small", 25.0, 3.0), ("big", 35.0, 2.5), ("mvit", 45.0, 2.0)):
        metric_queries.ingest_metrics(
            session,  # type: ignore[arg-type]
            run_id=ids[key],
            records=[
                {"step": 1, "loss": loss + 1, "knn_top1": knn - 5},
                {"step": 2, "loss": loss, "knn_top1": knn},
            ],
        )
    run_queries.update_run_status(session, run_id=ids["mvit"], status="completed", exit_code=0)  # type: ignore[arg-type]
    client.patch(f"/api/runs/{ids['big']}", json={"notes": "diverged at 50% of warm-up"})
    return ids


def found(client: TestClient, where: str) -> set[str]:
    response = client.get("/api/runs", params={"where": where, "limit": 500})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    return {run["id"] for run in body["data"]}


def test_queries_select_by_config_metrics_fields_tags_and_dates(
    client: TestClient, runs: dict[str, str]
) -> None:
    small, big, mvit, ev = runs["small"], runs["big"], runs["mvit"], runs["eval"]
    assert found(client, "backbone = 'resnet5m' and knn_top1 > 30") == {big}
    assert found(client, "knn_top1 >= 35") == {big, mvit}
    assert found(client, "lr = 0.002") == {big, mvit}
    assert found(client, "config.lr < 0.001") == {small}
    assert found(client, "lr != 0.002") == {small, ev}  # a run without the key differs from it
    assert found(client, "not (knn_top1 > 30)") == {small, ev}
    assert found(client, "status = 'completed' or kind = 'eval'") == {mvit, ev}
    assert found(client, "status in ('queued', 'running') and kind != 'eval'") == {small, big}
    assert found(client, "tags contains 'sweep'") == {big, mvit}
    assert found(client, "tags = 'baseline' or tags in ('seed-0')") == {small, big}
    assert found(client, "tags != 'sweep'") == {small, ev}
    assert found(client, "name contains 'LR'") == {small, big}
    assert found(client, 'notes contains "50%"') == {big}  # LIKE wildcards are literal
    assert found(client, "notes contains '_'") == set()
    assert found(client, "best.loss < 2.2") == {mvit}
    assert found(client, "loss < 2.2") == {mvit}  # the metric; `config.loss` is distillation's option
    assert found(client, "config.loss = 'kl'") == set()
    assert found(client, "metrics.loss <= 2.5 AND NOT backbone = 'mobilevit_xxs'") == {big}
    assert found(client, "(backbone = 'mobilevit_xxs' or lr < 0.001) and knn_top1 > 0") == {small, mvit}
    # A text option compared with a number matches nothing (and PostgreSQL never casts text to float).
    assert found(client, "dataset > 3") == set()
    assert found(client, "config.backbone = 'mobilevit_xxs'") == {mvit}
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert found(client, f"created_at > '{yesterday}'") == set(runs.values())
    assert found(client, f"created_at < '{yesterday}T00:00:00+00:00'") == set()
    # Combined with the other filters.
    body = client.get("/api/runs", params={"where": "knn_top1 > 0", "tag": "sweep", "sort": "name"}).json()
    assert [run["id"] for run in body["data"]] == [big, mvit]


def refusal(client: TestClient, where: str) -> str:
    response = client.get("/api/runs", params={"where": where})
    assert response.status_code == 409, response.text  # text the schema allows, a grammar it cannot state
    body = response.json()
    assert body["detail"].startswith("where: "), body
    assert body["field_errors"]["where"] in body["detail"]
    return str(body["detail"])


@pytest.mark.parametrize(
    ("where", "token", "position"),
    [
        ("backbone = 'x'; DROP TABLE runs; --", ";", 14),
        ("backbone = 'x' or 1=1", "1", 18),
        ("name = 'a'' or ''1''='1'", "'", 23),
        ("backbone = 'x' union select * from runs", "*", 28),
        ("lr = 1 -- comment", "-", 7),
        ("lr = 0.1 /* */", "/", 9),
        ("config.__class__ = 1", "config.__class__", 0),
        ("runs.id = 'x'", "runs.id", 0),
        ("sqlite_master.name = 'runs'", "sqlite_master.name", 0),
        ("knn_top1 > (select 1)", "(", 11),
        ("pg_sleep(5) = 1", "pg_sleep", 0),
    ],
)
def test_injection_attempts_are_refused_naming_the_token(
    client: TestClient, session: object, runs: dict[str, str], where: str, token: str, position: int
) -> None:
    detail = refusal(client, where)
    assert f"at position {position} ({token!r})" in detail
    assert session.query(Run).count() == 4  # type: ignore[attr-defined]


def test_unknown_keys_and_bad_values_are_named(client: TestClient, runs: dict[str, str]) -> None:
    detail = refusal(client, "knn_top > 30")
    assert "unknown key 'knn_top' at position 0" in detail
    assert "did you mean 'knn_top1'" in detail
    assert "unknown key 'config.nope'" in refusal(client, "config.nope = 1")
    assert "unknown key 'learning_rate' at position 19" in refusal(
        client, "backbone = 'x' and learning_rate > 1"
    )
    assert "status is one of" in refusal(client, "status = 'runing'")
    assert "'runing'" in refusal(client, "status = 'runing'")
    assert "metrics are numbers" in refusal(client, "knn_top1 > 'high'")
    assert "this key is text at position 11 ('3')" in refusal(client, "backbone > 3")
    assert "dates are ISO text" in refusal(client, "created_at > 'yesterday'")
    assert "unterminated text at position 11" in refusal(client, "backbone = 'resnet")
    assert "missing ')'" in refusal(client, "(lr = 1 or lr = 2")
    assert "expected a value at position 4" in refusal(client, "lr >")
    assert "empty query" in refusal(client, "   ")
    assert "too deeply nested" in refusal(client, "(" * 40 + "lr = 1" + ")" * 40)
    # What the schema does state (printable text, its length) stays a 422.
    assert client.get("/api/runs", params={"where": "lr = 1\x00"}).status_code == 422
    assert client.get("/api/runs", params={"where": "lr = 1 or " * 200}).status_code == 422
