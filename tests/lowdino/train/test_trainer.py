"""The training loop end to end on tiny real models: run directory, metrics, callbacks, STOP, errors."""

from __future__ import annotations

import json

import pytest
import torch
from _train_utils import StopAtStep, tiny_config

from lowdino.contract import rundir
from lowdino.contract.metrics_log import iter_records
from lowdino.devices import resolve_precision
from lowdino.errors import ConfigError, DataError, DeviceError
from lowdino.train.checkpoint import load_checkpoint
from lowdino.train.distributed import context_from_env
from lowdino.train.trainer import prepare, pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.mark.slow
def test_pretrain_writes_the_run_directory(tmp_path) -> None:
    out = tmp_path / "run"
    recorder = StopAtStep()  # never stops: records what callbacks receive
    # 50 images, 1 per class held out for the monitor: 40 left to train on, 5 steps per epoch.
    summary = pretrain(
        tiny_config(out, knn_monitor=True, synthetic_size=50, val_fraction=0.2), callbacks=[recorder]
    )
    run = rundir.RunDir(out)

    records = list(iter_records(run.metrics))
    # The kNN monitor's look before the first update, then 2 epochs x 5 steps, each once.
    assert [r["step"] for r in records] == list(range(0, 11))
    assert recorder.records == records  # callbacks get every record exactly as written
    init, records = records[0], records[1:]
    assert set(init) == {"step", "epoch", "time", "total_steps", "knn_top1"}
    assert (init["epoch"], init["total_steps"]) == (0.0, 10)
    for key in (
        "epoch",
        "time",
        "total_steps",
        "loss",
        "lr",
        "weight_decay",
        "momentum",
        "teacher_temp",
        "images_per_sec",
        "teacher_entropy",
    ):
        assert all(key in r for r in records), key
    assert records[4]["epoch"] == pytest.approx(1.0)
    assert all(r["total_steps"] == 10 for r in records)
    # kNN at the end of each epoch (logging_freq 1), nowhere else.
    assert [r["step"] for r in records if "knn_top1" in r] == [5, 10]
    assert records[0]["lr"] < records[3]["lr"]  # warm-up over the first epoch
    assert records[-1]["momentum"] == pytest.approx(1.0)

    assert summary["status"] == "completed"
    assert summary == json.loads(run.summary.read_text())
    assert summary["steps"] == 10
    # The run's figure is the final one; the best of the looks is labelled as the validation split's.
    knn = [r["knn_top1"] for r in records if "knn_top1" in r]
    assert summary["init_knn_top1"] == init["knn_top1"]
    assert summary["final_knn_top1"] == knn[-1]
    assert summary["best_val_knn_top1"] == max(knn)  # over trained states: the step-0 look is not one
    assert summary["knn_split"] == "val"
    assert "best_knn_top1" not in summary
    assert summary["labels_used"] == 0.0
    assert summary["final_loss"] == pytest.approx(records[-1]["loss"])
    assert summary["params"] == 951024  # mobilevit_xxs backbone
    assert summary["images_per_sec"] > 0
    assert summary["wall_time_sec"] > 0

    assert run.periodic_checkpoint(1).is_file()
    assert run.periodic_checkpoint(2).is_file()
    checkpoint = load_checkpoint(run.checkpoint)
    assert checkpoint["step"] == 10
    assert checkpoint["backbone_name"] == "mobilevit_xxs"
    assert set(checkpoint["method"]) >= {"loss.center"}
    assert any((out / "logs").iterdir())  # TensorBoard events inside the run directory
    assert "kNN top-1" in run.log.read_text()
    assert "step 0 (random init): validation kNN top-1" in run.log.read_text()
    config_text = run.config.read_text()
    assert "backbone: mobilevit_xxs" in config_text


def test_the_step_0_look_is_the_untrained_teachers_knn(tmp_path) -> None:
    """The run's own random-init baseline: recorded at step 0, before any update, and carried by the
    summary beside the final figure; a resumed run keeps it and does not look again."""
    out = tmp_path / "run"
    options = {"synthetic_size": 100, "val_fraction": 0.2, "knn_max_train": None, "knn_max_val": None}
    config = tiny_config(out, knn_monitor=True, max_steps=2, **options)
    stopped = pretrain(config, callbacks=[StopAtStep(1)])
    records = list(iter_records(rundir.RunDir(out).metrics))
    assert [(r["step"], "knn_top1" in r) for r in records] == [(0, True), (1, False)]
    init = records[0]["knn_top1"]
    assert stopped["init_knn_top1"] == init
    assert stopped["final_knn_top1"] is None  # no look after an update yet
    assert stopped["best_val_knn_top1"] is None  # and the untrained network is no candidate for best

    # The same config's networks before training (prepare seeds and builds them as the run did).
    fresh = config.model_copy(update={"output_dir": str(tmp_path / "fresh")})
    device = torch.device("cpu")
    prepared = prepare(fresh, context_from_env({}), device, resolve_precision("fp32", device))
    assert prepared.knn is not None
    assert prepared.knn(prepared.method.eval_backbone()) == init

    resumed = pretrain(config.model_copy(update={"resume": True}))
    records = list(iter_records(rundir.RunDir(out).metrics))
    assert [r["step"] for r in records if "knn_top1" in r] == [0, 2]  # no second step-0 look
    assert resumed["init_knn_top1"] == init
    assert resumed["final_knn_top1"] == records[-1]["knn_top1"]


def test_callback_stop_checkpoints_and_cancels(tmp_path) -> None:
    out = tmp_path / "run"
    callback = StopAtStep(3)
    summary = pretrain(tiny_config(out), callbacks=[callback])
    assert summary["status"] == "cancelled"
    assert summary["steps"] == 3
    assert [r["step"] for r in callback.records] == [1, 2, 3]
    assert load_checkpoint(out / rundir.CHECKPOINT_FILE)["step"] == 3
    assert json.loads((out / rundir.SUMMARY_FILE).read_text())["status"] == "cancelled"


def test_max_minutes_makes_the_step_that_runs_out_of_time_the_last_one(tmp_path) -> None:
    out = tmp_path / "run"
    # A budget shorter than any step: step 1 is the last, measured and saved as at max_steps, and the run
    # is completed (a time-boxed search trial is scored on it), not cancelled.
    config = tiny_config(out, knn_monitor=True, synthetic_size=50, val_fraction=0.2, max_minutes=1e-6)
    summary = pretrain(config)
    assert summary["status"] == "completed"
    assert summary["steps"] == 1
    records = list(iter_records(rundir.RunDir(out).metrics))
    assert [r["step"] for r in records] == [0, 1]  # the random-init look, then the one step
    assert summary["final_knn_top1"] == records[1]["knn_top1"]
    assert load_checkpoint(out / rundir.CHECKPOINT_FILE)["step"] == 1
    assert "time budget of 1e-06 minutes reached: step 1 is the last" in rundir.RunDir(out).log.read_text()


def test_stop_file_cancels_after_the_current_step(tmp_path) -> None:
    out = tmp_path / "run"
    run = rundir.RunDir(out)
    run.request_stop()  # another process asked before the first step finished
    summary = pretrain(tiny_config(out))
    assert summary["status"] == "cancelled"
    assert summary["steps"] == 1
    assert load_checkpoint(run.checkpoint)["step"] == 1
    assert not run.stop_request.exists()  # consumed, so a later --resume is not stopped again


def test_existing_run_is_never_overwritten(tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(tiny_config(out, max_steps=2), callbacks=[StopAtStep(1)])
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    with pytest.raises(
        ConfigError, match="already holds a run; pass --resume to continue it or choose another"
    ):
        pretrain(tiny_config(out, max_steps=2))
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before


def test_directory_with_only_a_config_file_is_a_fresh_run(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / rundir.CONFIG_FILE).write_text("backbone: mobilevit_xxs\n")  # written by the worker
    assert pretrain(tiny_config(out, max_steps=1))["status"] == "completed"


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"batch_size": 64}, DataError, "batch size 64 is larger than the 40 training images"),
        (
            {"backbone": "dinov2_vits14", "global_crop_size": 28, "local_crop_size": 8},
            ConfigError,
            "dinov2_vits14 needs image sizes of at least 14",
        ),
        ({"dataset": "imagefolder", "data_path": "/nonexistent/lowdino-data"}, DataError, "/nonexistent"),
        (
            {"device": "cuda"},
            DeviceError,
            "CUDA was requested but torch sees no GPU; use --device cpu or auto",
        ),
        ({"precision": "fp16"}, ConfigError, "fp16 needs a GPU"),
    ],
)
def test_bad_input_fails_before_anything_is_written(tmp_path, monkeypatch, overrides, error, message) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    with pytest.raises(error, match=message):
        pretrain(tiny_config(out, **overrides))
    assert not out.exists()


def test_device_ids_on_cpu_run_the_backbone_through_data_parallel(tmp_path, monkeypatch) -> None:
    calls = []
    original = torch.nn.DataParallel.forward

    def counting_forward(self, *inputs, **kwargs):
        calls.append(inputs[0].shape)
        return original(self, *inputs, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.nn.DataParallel, "forward", counting_forward)
    with pytest.warns(RuntimeWarning, match="ignored on CPU"):
        summary = pretrain(tiny_config(tmp_path / "run", device_ids=[0, 1], max_steps=2))
    assert summary["status"] == "completed"
    # One student backbone call per crop resolution and step: (2 x 8, 3, 32, 32) and (2 x 8, 3, 16, 16).
    assert [tuple(shape) for shape in calls] == [(16, 3, 32, 32), (16, 3, 16, 16)] * 2
    # The wrapper lives outside the module tree: checkpoint keys carry no "module." prefix.
    keys = load_checkpoint(tmp_path / "run" / rundir.CHECKPOINT_FILE)["method"]
    assert not [key for key in keys if ".module." in key]


def test_byol_trains_with_the_same_loop(tmp_path) -> None:
    summary = pretrain(
        tiny_config(tmp_path / "run", method="byol", max_steps=3, byol_projection_dim=16, byol_hidden_dim=32)
    )
    assert summary["status"] == "completed"
    assert summary["final_loss"] is not None


def test_out_of_memory_names_the_batch_size(tmp_path, monkeypatch) -> None:
    from lowdino.methods.dino.method import DINO

    def exhausted(self, crops, **kwargs):
        # What the CUDA caching allocator raises; this CPU-only machine cannot produce it for real.
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DINO, "training_loss", exhausted)
    with pytest.raises(DeviceError, match=r"at batch size 8; lower --batch-size \(e.g. 4\)"):
        pretrain(tiny_config(tmp_path / "run"))


@pytest.mark.slow
def test_channels_last_changes_the_layout_not_the_training(tmp_path, monkeypatch) -> None:
    from lowdino.methods.multicrop import MultiCropWrapper

    tensors: list[torch.Tensor] = []
    original_forward = MultiCropWrapper.forward

    def recording_forward(self, crops, **kwargs):
        # Dense 3x3+ kernels only: 1x1 and depthwise (C, 1, k, k) kernels are contiguous in both layouts.
        tensors.extend(crops)
        tensors.extend(p for p in self.parameters() if p.ndim == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
        return original_forward(self, crops, **kwargs)

    monkeypatch.setattr(MultiCropWrapper, "forward", recording_forward)
    pretrain(tiny_config(tmp_path / "nhwc", max_steps=3, channels_last=True))
    assert tensors
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in tensors)
    assert not any(t.is_contiguous() for t in tensors)

    tensors.clear()
    pretrain(tiny_config(tmp_path / "nchw", max_steps=3, channels_last=False))
    assert all(t.is_contiguous() for t in tensors)

    nhwc = load_checkpoint(tmp_path / "nhwc" / rundir.CHECKPOINT_FILE)["method"]
    nchw = load_checkpoint(tmp_path / "nchw" / rundir.CHECKPOINT_FILE)["method"]
    assert nhwc.keys() == nchw.keys()
    for key, value in nchw.items():
        if value.is_floating_point():
            torch.testing.assert_close(nhwc[key], value, rtol=1e-3, atol=1e-4, msg=key)
