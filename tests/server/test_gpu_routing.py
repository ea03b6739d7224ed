"""Routing by GPU count: gpuN queues, workers that take them, and submissions no live worker could run."""

from __future__ import annotations

from fastapi.testclient import TestClient

from server.workers import queries as worker_queries
from server.workers.queues import expand_gpu_queues, gpu_capacity, gpus_needed

TINY = {"dataset": "synthetic", "batch_size": 16, "backbone": "resnet5m", "max_steps": 5}


def test_a_run_needs_its_device_ids_or_one_gpu_for_cuda() -> None:
    assert gpus_needed({"device": "cpu"}) == 0
    assert gpus_needed({"device": "auto"}) == 0
    assert gpus_needed({"device": "cuda"}) == 1
    assert gpus_needed({"device": "cuda", "device_ids": [0, 1, 2, 3]}) == 4


def test_a_gpu_worker_takes_the_queues_of_every_gpu_count_it_has() -> None:
    assert expand_gpu_queues(("gpu",), 4) == ("gpu", "gpu2", "gpu3", "gpu4")
    assert expand_gpu_queues(("cpu", "gpu"), 1) == ("cpu", "gpu")
    assert expand_gpu_queues(("cpu",), 8) == ("cpu",)  # a CPU-only worker stays CPU-only
    assert gpu_capacity(["gpu", "gpu2"], [0, 1]) == 2
    assert gpu_capacity(["cpu"], [0, 1]) == 0


def submit(client: TestClient, **config: object):  # type: ignore[no-untyped-def]
    return client.post("/api/runs", json={"kind": "pretrain", "config": {**TINY, **config}})


def test_more_gpus_than_the_largest_live_worker_is_refused_at_submission(
    client: TestClient, session: object
) -> None:
    # No live worker at all: the run queues (a worker may be starting), with a warning.
    queued = submit(client, device="cuda", device_ids=[0, 1, 2, 3])
    assert queued.status_code == 201, queued.text
    assert queued.json()["queue"] == "gpu4"
    assert "no live worker takes queue 'gpu4'" in queued.json()["warning"]

    worker_queries.upsert_worker(session, name="gpu-box-1", queues=["gpu", "gpu2"], gpus=[0, 1])  # type: ignore[arg-type]
    worker_queries.upsert_worker(session, name="cpu-box", queues=["cpu"], gpus=[])  # type: ignore[arg-type]
    refused = submit(client, device="cuda", device_ids=[0, 1, 2, 3])
    assert refused.status_code == 409  # the live workers (server state): documented 409
    body = refused.json()
    assert body["detail"].startswith(
        "config.device_ids: needs 4 GPUs; the largest live worker, gpu-box-1, has 2: ask for at most 2"
    )
    assert "\n" not in body["detail"]
    assert body["field_errors"]["device_ids"].startswith("needs 4 GPUs")
    assert client.get("/api/runs").json()["count"] == 1  # nothing was created for the refused run

    fits = submit(client, device="cuda", device_ids=[0, 1])
    assert fits.status_code == 201, fits.text
    assert (fits.json()["queue"], fits.json()["warning"]) == ("gpu2", None)


def test_a_gpu_run_is_refused_when_only_cpu_workers_are_live(client: TestClient, session: object) -> None:
    worker_queries.upsert_worker(session, name="cpu-box", queues=["cpu", "gpu"], gpus=[])  # type: ignore[arg-type]
    refused = submit(client, device="cuda")
    assert refused.status_code == 409
    assert "config.device: needs 1 GPU; the largest live worker, cpu-box, has 0" in refused.json()["detail"]
    assert submit(client, device="cpu").status_code == 201
