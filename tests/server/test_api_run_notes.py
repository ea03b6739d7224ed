"""PATCH /api/runs/{id}: name, Markdown notes and tags after the fact, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.runs import queries as run_queries

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def submit(client: TestClient, **body: object) -> dict:
    response = client.post("/api/runs", json={"kind": "pretrain", "config": dict(TINY), **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_patch_sets_only_the_fields_sent_and_they_persist(client: TestClient, session: object) -> None:
    run = submit(client, name="first", tags=["a"])
    notes = (
        "# Why\nlr **too high**: loss *diverged* at step 40.\n\n- try `lr=3e-4`\n<script>alert(1)</script>"
    )
    response = client.patch(f"/api/runs/{run['id']}", json={"notes": notes})
    assert response.status_code == 200, response.text
    assert response.json()["notes"] == notes  # stored as written: rendering safely is the page's job
    assert response.json()["name"] == "first"
    assert response.json()["tags"] == ["a"]

    renamed = client.patch(f"/api/runs/{run['id']}", json={"name": "lr 1e-3", "tags": ["b", "b", "diverged"]})
    assert renamed.status_code == 200
    fetched = client.get(f"/api/runs/{run['id']}").json()
    assert (fetched["name"], fetched["tags"], fetched["notes"]) == ("lr 1e-3", ["b", "diverged"], notes)
    # Nothing else of the run changed.
    assert fetched["config"] == run["config"]
    assert fetched["status"] == run["status"]

    # Editable in any status, finished runs included.
    run_queries.update_run_status(session, run_id=run["id"], status="failed", error="boom")  # type: ignore[arg-type]
    cleared = client.patch(f"/api/runs/{run['id']}", json={"name": None, "notes": "  ", "tags": []})
    assert cleared.status_code == 200
    body = client.get(f"/api/runs/{run['id']}").json()
    assert (body["name"], body["notes"], body["tags"], body["status"]) == (None, None, [], "failed")


def test_patch_refuses_bad_fields_naming_them_and_keeps_the_run(client: TestClient) -> None:
    run = submit(client, name="keep", tags=["a"])
    for body, field in (
        ({"tags": ["has,comma"]}, "tags"),
        ({"name": "x" * 201}, "name"),
        ({"notes": "x" * 20_001}, "notes"),
        ({"status": "completed"}, "status"),
        ({"config": {"lr": 1}}, "config"),
    ):
        response = client.patch(f"/api/runs/{run['id']}", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.text
    fetched = client.get(f"/api/runs/{run['id']}").json()
    assert (fetched["name"], fetched["tags"], fetched["notes"], fetched["status"]) == (
        "keep",
        ["a"],
        None,
        "queued",
    )
    assert client.patch("/api/runs/nosuchrun", json={"name": "x"}).status_code == 404


def test_notes_are_searchable_from_the_runs_list(client: TestClient) -> None:
    noted = submit(client, name="plain name")
    other = submit(client, name="other")
    client.patch(f"/api/runs/{noted['id']}", json={"notes": "Collapsed after the Teacher-Temp change"})
    found = client.get("/api/runs", params={"q": "teacher-temp"}).json()
    assert [run["id"] for run in found["data"]] == [noted["id"]]
    assert other["id"] not in {
        run["id"] for run in client.get("/api/runs", params={"q": "collapsed"}).json()["data"]
    }
