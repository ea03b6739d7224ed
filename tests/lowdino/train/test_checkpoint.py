"""Checkpoints and --resume: exact continuation, metrics truncation, incompatible checkpoints, RNG state."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from _train_utils import StopAtStep, tiny_config

from lowdino.contract import rundir
from lowdino.contract.metrics_log import iter_records
from lowdino.errors import CheckpointError
from lowdino.train.checkpoint import (
    capture_rng_state,
    check_compatible,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from lowdino.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _assert_same_tensors(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dino", "byol"])
def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, method) -> None:
    # 2 epochs x 5 steps; the interruption falls mid-epoch (step 3), so the resumed run must replay
    # the rest of epoch 1 in the same data order with the same augmentation RNG.
    options = {"method": method, "byol_projection_dim": 16, "byol_hidden_dim": 32, "seed": 7}
    straight = pretrain(tiny_config(tmp_path / "straight", **options))
    interrupted = pretrain(tiny_config(tmp_path / "resumed", **options), callbacks=[StopAtStep(3)])
    assert interrupted["status"] == "cancelled"
    resumed = pretrain(tiny_config(tmp_path / "resumed", resume=True, **options))

    assert straight["status"] == resumed["status"] == "completed"
    a = load_checkpoint(tmp_path / "straight" / rundir.CHECKPOINT_FILE)
    b = load_checkpoint(tmp_path / "resumed" / rundir.CHECKPOINT_FILE)
    assert a["step"] == b["step"] == 10
    _assert_same_tensors(a["method"], b["method"])  # student, teacher and (DINO) center
    _assert_same_tensors(a["backbone"], b["backbone"])
    exp_avg = [state["exp_avg"] for state in a["optimizer"]["state"].values()]
    assert all(
        torch.equal(x, y["exp_avg"]) for x, y in zip(exp_avg, b["optimizer"]["state"].values(), strict=True)
    )

    losses = {r["step"]: r["loss"] for r in iter_records(tmp_path / "straight" / rundir.METRICS_FILE)}
    replayed = list(iter_records(tmp_path / "resumed" / rundir.METRICS_FILE))
    assert [r["step"] for r in replayed] == list(range(1, 11))
    assert {r["step"]: r["loss"] for r in replayed} == losses


@pytest.mark.slow
def test_resume_truncates_records_past_the_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(out), callbacks=[StopAtStep(3)])
    metrics = out / rundir.METRICS_FILE
    # A crash after the checkpoint at step 3: steps 4-5 were logged, then a half-written line.
    with metrics.open("a") as handle:
        for step in (4, 5):
            handle.write(json.dumps({"step": step, "epoch": step / 5, "loss": 99.0, "stale": True}) + "\n")
        handle.write('{"step": 6, "lo')
    summary = pretrain(tiny_config(out, resume=True, max_steps=6))
    records = list(iter_records(metrics))
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert not any(r.get("stale") for r in records)
    assert summary["steps"] == 6


@pytest.mark.slow
def test_checkpoint_every_steps_bounds_the_loss_of_an_interrupted_run(tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(out, checkpoint_every_steps=2, n_epochs=1), callbacks=[StopAtStep(5)])
    # Saved at 2 and 4 by the step interval, at 5 by the epoch end and the stop: the latest wins.
    assert load_checkpoint(out / rundir.CHECKPOINT_FILE)["step"] == 5
    assert (out / "checkpoint_e0001.pth").is_file()


@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused_and_nothing_is_touched(tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(out, max_steps=2))
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    with pytest.raises(
        CheckpointError, match=r"backbone 'mobilevit_xxs' in the checkpoint vs 'resnet5m' now"
    ):
        pretrain(tiny_config(out, backbone="resnet5m", resume=True))
    with pytest.raises(CheckpointError, match=r"out_dim 64 in the checkpoint vs 128 now"):
        pretrain(tiny_config(out, out_dim=128, resume=True))
    with pytest.raises(CheckpointError, match=r"method 'dino' in the checkpoint vs 'byol' now"):
        pretrain(tiny_config(out, method="byol", resume=True))
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before


def test_resume_without_a_checkpoint_says_how_to_start(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="run without --resume to start a new run"):
        pretrain(tiny_config(tmp_path / "empty", resume=True))
    assert not (tmp_path / "empty").exists()


def test_checkpoint_backbone_loads_into_a_fresh_backbone(tmp_path) -> None:
    from lowdino.backbones import create_backbone

    out = tmp_path / "run"
    pretrain(tiny_config(out, max_steps=1))
    backbone = create_backbone("mobilevit_xxs", weights=str(out / rundir.CHECKPOINT_FILE))
    saved = load_checkpoint(out / rundir.CHECKPOINT_FILE)["backbone"]
    _assert_same_tensors(backbone.state_dict(), saved)


def test_rng_state_round_trip_through_checkpoint_file(tmp_path) -> None:
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = tmp_path / "checkpoint.pth"
    save_checkpoint([path, tmp_path / "copy.pth"], {"rng": [state], "config": {"backbone": "resnet5m"}})
    assert (tmp_path / "copy.pth").read_bytes() == path.read_bytes()
    loaded = load_checkpoint(path)  # weights_only=True must accept everything we store
    torch.rand(5)
    np.random.rand(5)
    restore_rng_state(loaded["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pth")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(corrupt)
    payload = {"config": {"backbone": "resnet5m", "method": "dino", "out_dim": 256}}
    with pytest.raises(
        CheckpointError, match=r"backbone 'resnet5m' in the checkpoint vs 'mobilevit_xxs'.*out_dim"
    ):
        check_compatible(payload, {"backbone": "mobilevit_xxs", "method": "dino", "out_dim": 512}, corrupt)
    check_compatible(payload, {"backbone": "resnet5m", "method": "dino", "out_dim": 256, "lr": 1.0}, corrupt)
