"""End to end at scale (PostgreSQL + Redis + real `lowdino worker` processes + the real trainer).

Two workers on different queues (a CPU-only one, and one owning "GPUs 0,1") receive only their runs;
a run asking for more GPUs than any live worker has is refused at submission; a 2-GPU run becomes a
2-process DDP run (torchrun; gloo, since this machine has no GPU: "auto" falls back to the CPU) whose
metrics come from rank 0 alone; a trainer killed by SIGKILL leaves the reason in train.log and resumes
from its wall-clock checkpoint through the API.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2elib import Stack, loss_rows_per_step, processes_mentioning, running_stack, tiny_pretrain, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services]

FINAL = {"completed", "failed", "cancelled", "interrupted"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("scaling"), "scaled") as stack:
        stack.start_worker("cpuw", queues="cpu", gpus="none")
        # "GPUs" 0 and 1 on a machine without any: routing only looks at what the worker declares.
        stack.start_worker("gpuw", queues="gpu", gpus="0,1")
        yield stack


def _worker(stack: Stack, prefix: str) -> dict[str, Any]:
    workers = [w for w in stack.get("/api/health")["workers"] if w["name"].startswith(prefix)]
    assert len(workers) == 1, workers
    return dict(workers[0])


def test_each_worker_receives_only_the_runs_of_its_queues(stack: Stack) -> None:
    gpu_worker = _worker(stack, "gpuw")
    assert (gpu_worker["gpus"], gpu_worker["queues"]) == ([0, 1], ["gpu", "gpu2"])
    assert _worker(stack, "cpuw")["queues"] == ["cpu"]

    cpu_run = stack.submit(tiny_pretrain(n_epochs=1), name="cpu")
    one_gpu = stack.submit(tiny_pretrain(n_epochs=1, device="cuda"), name="1 gpu")
    for run_id, worker, queue in ((cpu_run, "cpuw", "cpu"), (one_gpu, "gpuw", "gpu")):
        run = stack.wait_status(run_id, FINAL, deadline_s=150)
        assert run["queue"] == queue
        assert run["worker_name"].startswith(f"{worker}@"), run
    assert stack.run(cpu_run)["status"] == "completed"
    # The 1-GPU run reached the GPU worker, whose child then found no CUDA on this machine.
    gpu_run = stack.run(one_gpu)
    assert gpu_run["status"] == "failed"
    assert "CUDA was requested but torch sees no GPU" in gpu_run["error"]


def test_a_run_needing_more_gpus_than_any_live_worker_is_refused(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.api_url}/api/runs",
        json={"kind": "pretrain", "config": tiny_pretrain(device="cuda", device_ids=[0, 1, 2, 3])},
        timeout=10,
    )
    assert response.status_code == 409, response.text  # server state: the live workers' GPUs
    assert response.json()["detail"].startswith(
        "config.device_ids: needs 4 GPUs; the largest live worker, gpuw@"
    )
    assert ", has 2: ask for at most 2" in response.json()["detail"]


def test_a_two_gpu_run_is_two_ddp_ranks_with_metrics_from_rank_zero_only(stack: Stack) -> None:
    # Global batch 16 -> 8 per rank; 64 images: 4 steps.
    run_id = stack.submit(tiny_pretrain(n_epochs=1, device="auto", device_ids=[0, 1]), name="ddp")
    run = stack.wait_status(run_id, FINAL, deadline_s=240)
    assert run["status"] == "completed", run.get("error")
    assert (run["queue"], run["worker_name"].split("@")[0]) == ("gpu2", "gpuw")
    assert loss_rows_per_step(stack.database_url, run_id) == {1: 1, 2: 1, 3: 1, 4: 1}
    summary = json.loads(stack.artifact_text(run_id, "summary.json"))
    assert (summary["world_size"], summary["device"]) == (2, "cpu")
    logs = stack.get(f"/api/runs/{run_id}/logs?tail=5000")["lines"]
    assert any("torch.distributed.run" in line and "--nproc_per_node=2" in line for line in logs)


def test_a_trainer_killed_by_sigkill_is_logged_and_resumes_from_its_wall_clock_checkpoint(
    stack: Stack,
) -> None:
    total = 120  # 30 epochs x 4 steps; no step or epoch checkpoint before the end (logging_freq)
    config = tiny_pretrain(n_epochs=30, logging_freq=30, checkpoint_every_minutes=0.002)
    run_id = stack.submit(config, name="kill -9 the trainer")
    wait_for(
        lambda: "checkpoint.pth" in stack.artifact_names(run_id),
        "a wall-clock checkpoint",
        deadline_s=150,
        every_s=0.2,
    )
    run_dir = str(stack.run(run_id)["output_dir"])
    pids = processes_mentioning(run_dir, "lowdino")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)  # what the kernel's out-of-memory killer does

    run = stack.wait_status(run_id, FINAL, deadline_s=60)
    assert run["status"] == "failed"
    assert "killed by SIGKILL" in run["error"]
    assert 0 < int(run["progress"]["step"] or 0) < total
    last_line = stack.artifact_text(run_id, "train.log").splitlines()[-1]
    assert "ERROR worker: trainer killed by SIGKILL (likely the kernel's out-of-memory killer" in last_line

    resumed = httpx.post(f"{stack.api_url}/api/runs/{run_id}/resume", timeout=10)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "queued"
    run = stack.wait_status(run_id, FINAL, deadline_s=300)
    assert run["status"] == "completed", run.get("error")
    assert loss_rows_per_step(stack.database_url, run_id) == dict.fromkeys(range(1, total + 1), 1)
