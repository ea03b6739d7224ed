"""What a worker declares: the GPUs it offers (pinned, or seen without touching CUDA) and its queues."""

from __future__ import annotations

from pathlib import Path

from worker.identity import WorkerIdentity, visible_gpus


def test_visible_gpus_from_cuda_visible_devices_or_the_device_files(tmp_path: Path) -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, dev=tmp_path) == (0, 1)  # by position
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-8f1c,GPU-77aa,GPU-0b2e"}, dev=tmp_path) == (0, 1, 2)
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, dev=tmp_path) == ()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / name).touch()
    assert visible_gpus({}, dev=tmp_path) == (0, 1)
    assert visible_gpus({}, dev=tmp_path / "missing") == ()


def test_a_pinned_worker_reports_its_gpu_set() -> None:
    identity = WorkerIdentity(name="w", hostname="h", queues=("gpu", "gpu2"), gpus=(4, 5), pid=1)
    assert identity.reported_gpus == (4, 5)
