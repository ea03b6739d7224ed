"""Training on a CUDA GPU: bf16 autocast, DataParallel over one device, resume of a GPU checkpoint on CPU.

Marked `gpu` and skipped without CUDA (CI has none); benchmarks/gpu_check.sh runs them on a GPU machine
with `pytest -m gpu`.
"""

from __future__ import annotations

import pytest
import torch
from _train_utils import tiny_config

from lowdino.train.checkpoint import load_checkpoint
from lowdino.train.trainer import pretrain

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to torch)"),
]


def test_bf16_autocast_trains_on_the_gpu(tmp_path) -> None:
    out = tmp_path / "run"
    summary = pretrain(tiny_config(out, device="cuda", precision="bf16"))
    assert summary["status"] == "completed"
    assert summary["device"].startswith("cuda")
    assert torch.isfinite(torch.tensor(summary["final_loss"]))
    assert "(bf16," in (out / "train.log").read_text()


def test_dataparallel_over_one_device(tmp_path) -> None:
    summary = pretrain(tiny_config(tmp_path / "run", device="cuda", device_ids=[0]))
    assert summary["status"] == "completed"


def test_a_gpu_checkpoint_resumes_on_cpu(tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(out, device="cuda", n_epochs=1))
    checkpoint = load_checkpoint(out / "checkpoint.pth")
    assert all(
        tensor.device.type == "cpu" for tensor in checkpoint["method"].values() if torch.is_tensor(tensor)
    )
    summary = pretrain(tiny_config(out, device="cpu", n_epochs=2, resume=True))
    assert summary["status"] == "completed"
    assert summary["steps"] == 10
