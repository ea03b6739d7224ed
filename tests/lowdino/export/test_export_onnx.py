"""`lowdino export` to ONNX and TorchScript: parity with PyTorch on real CIFAR-10 images, the manifest,
run checkpoints (teacher / student), the run directory, and refusals that leave nothing behind."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from _train_utils import tiny_config

from lowdino.backbones import create_backbone, get_spec
from lowdino.cli.main import main
from lowdino.config.export import ExportConfig
from lowdino.config.loading import build_config
from lowdino.contract.rundir import RunDir
from lowdino.export.images import preprocess, sample_training_images, stratified_sample
from lowdino.export.parity import ParityError
from lowdino.export.run import export
from lowdino.hashing import file_hash
from lowdino.train.trainer import pretrain

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _export(tmp_path: Path, source: str, *flags: str, capsys=None) -> dict:
    """Run the CLI; returns the manifest written beside --output (tmp_path/model.<ext>)."""
    suffix = ".pt" if "torchscript" in flags else ".onnx"
    output = tmp_path / f"model{suffix}"
    assert main(["export", source, "--output", str(output), *flags]) == 0
    return json.loads((tmp_path / f"model{suffix}.manifest.json").read_text())


def _features(path: Path, batch: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": batch.numpy()})[0]


@pytest.mark.parametrize("name", ["mobilevit_xxs", "resnet5m", "mobilenetv2_100"])
def test_random_init_backbones_match_pytorch_on_real_images(name, cifar_folder, tmp_path):
    manifest = _export(tmp_path, name, "--image-size", "32", "--parity-data", str(cifar_folder))
    parity = manifest["parity"]
    assert parity["precision"] == "fp32"
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["images"] == 16
    assert "train split" in parity["image_source"]
    assert manifest["parity_images_are_random"] is False
    spec = get_spec(name)
    assert (manifest["backbone"], manifest["image_size"], manifest["format"]) == (name, 32, "onnx")
    assert (manifest["mean"], manifest["std"]) == (list(spec.mean), list(spec.std))
    assert manifest["opset"] == 18
    assert {"torch", "onnx", "onnxruntime"} <= set(manifest["runtime_versions"])
    assert manifest["artifact_sha256"] == file_hash(tmp_path / "model.onnx")

    # Independently of the export code: the same seeded network, other real images, a batch size
    # that the export never saw (the batch axis is dynamic).
    torch.manual_seed(0)
    backbone = create_backbone(name).eval()
    images = sample_training_images(str(cifar_folder), 5, seed=3)
    batch = preprocess(images, name, 32)
    with torch.inference_mode():
        expected = backbone(batch).numpy()
    got = _features(tmp_path / "model.onnx", batch)
    assert got.shape == (5, manifest["feature_dim"])
    assert np.abs(got - expected).max() <= 1e-4
    assert manifest["params"] == sum(p.numel() for p in backbone.parameters())


def test_torchscript_export_matches_pytorch(cifar_folder, tmp_path):
    manifest = _export(
        tmp_path,
        "resnet5m",
        "--format",
        "torchscript",
        "--image-size",
        "32",
        "--parity-data",
        str(cifar_folder),
    )
    assert (manifest["format"], manifest["exporter"]) == ("torchscript", "torch.jit.trace")
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    module = torch.jit.load(str(tmp_path / "model.pt"))
    torch.manual_seed(0)
    backbone = create_backbone("resnet5m").eval()
    batch = preprocess(sample_training_images(str(cifar_folder), 3, seed=1), "resnet5m", 32)
    with torch.inference_mode():
        assert torch.allclose(module(batch), backbone(batch), atol=1e-5)


@pytest.fixture(scope="module")
def pretrain_run(cifar_folder, tmp_path_factory) -> Path:
    """A real pretraining run (mobilevit_xxs, DINO, 3 steps at 32 px) on the CIFAR-10 image folder."""
    out = tmp_path_factory.mktemp("pretrain")
    folder = out / "cifar"
    shutil.copytree(cifar_folder, folder, ignore=shutil.ignore_patterns(".lowdino-cache"))
    pretrain(tiny_config(out / "run", dataset="imagefolder", data_path=str(folder), max_steps=3))
    return out / "run"


def test_pretrain_run_exports_into_a_run_directory(pretrain_run, tmp_path):
    out = tmp_path / "export-run"
    assert main(["export", str(pretrain_run), "--output-dir", str(out)]) == 0
    run = RunDir(out)
    summary = run.read_summary()
    assert summary["status"] == "completed"
    assert summary["kind"] == "export"
    artifact = out / summary["artifact"]
    manifest = json.loads((out / summary["manifest"]).read_text())
    assert artifact.name == "mobilevit_xxs.onnx"
    assert artifact.is_file()
    # The run's evaluation size and its own training images; the checkpoint identified by hash.
    assert manifest["image_size"] == 32
    assert manifest["source"] == {
        "kind": "checkpoint",
        "path": str(pretrain_run / "checkpoint.pth"),
        "sha256": file_hash(pretrain_run / "checkpoint.pth"),
        "network": "teacher",
    }
    assert str(pretrain_run.parent / "cifar") in manifest["parity"]["image_source"]
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert summary["parity"] == manifest["parity"]
    # config.yaml reads back as the export's config.
    config = build_config(ExportConfig, file=run.config)
    assert (config.source, config.output_dir) == (str(pretrain_run), str(out))
    assert "fp32 parity" in run.log.read_text()

    # The teacher is the checkpoint's evaluated backbone; the student (3 steps apart) is another network.
    payload = torch.load(pretrain_run / "checkpoint.pth", weights_only=True)
    teacher = create_backbone("mobilevit_xxs").eval()
    teacher.load_state_dict(payload["backbone"])
    batch = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = teacher(batch).numpy()
    assert np.abs(_features(artifact, batch) - expected).max() <= 1e-4
    student = _export(tmp_path / "student", str(pretrain_run), "--which", "student")
    assert student["source"]["network"] == "student"
    assert student["parity"]["max_abs_diff"] <= 1e-4
    assert np.abs(_features(tmp_path / "student" / "model.onnx", batch) - expected).max() > 1e-4


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    # Progress lines ("[lowdino export] ...") may come first; the error is one line of its own.
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lowdino export: ")]
    assert len(errors) == 1
    assert errors[0].startswith("lowdino export: error: ")
    return errors[0]


def test_bad_sources_and_sizes_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    output = tmp_path / "out" / "model.onnx"
    corrupt = tmp_path / "corrupt" / "checkpoint.pth"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(2)}, foreign)
    cases = {
        "cannot be read": [str(corrupt.parent)],
        "not a LowDINO run checkpoint": [str(foreign)],
        "unknown backbone 'resnet9000'": ["resnet9000"],
        "no run directory or checkpoint at": [str(tmp_path / "missing" / "checkpoint.pth")],
        "multiples of 14": ["dinov2_vits14", "--image-size", "30"],
        "image_size": ["resnet5m", "--image-size", "0"],
        "needs training images to calibrate on": ["resnet5m", "--image-size", "32", "--quantize", "int8"],
        # Without the [executorch] extra the format is refused; with it, the .onnx output name is.
        (
            "must end in .pte"
            if importlib.util.find_spec("executorch")
            else "--format executorch is unavailable"
        ): ["resnet5m", "--format", "executorch"],
    }
    for expected, args in cases.items():
        message = _refused(["export", *args, "--output", str(output)], capsys)
        assert expected in message, message
        assert not output.parent.exists() or not any(output.parent.iterdir()), expected
    message = _refused(["export", "resnet5m", "--output", str(tmp_path / "model.pt")], capsys)
    assert "must end in .onnx" in message


def test_failed_parity_writes_nothing(cifar_folder, tmp_path, capsys):
    output = tmp_path / "one-off" / "model.onnx"
    argv = ["export", "mobilenetv2_100", "--image-size", "32", "--parity-data", str(cifar_folder)]
    message = _refused([*argv, "--parity-tolerance", "1e-12", "--output", str(output)], capsys)
    assert "differs from PyTorch by" in message
    assert "> tolerance 1e-12" in message
    assert list(output.parent.iterdir()) == []  # not even a scratch folder
    # In a run directory: no artifact, and summary.json says why.
    run_dir = tmp_path / "run"
    with pytest.raises(ParityError):
        export(
            build_config(
                ExportConfig,
                overrides={
                    "source": "mobilenetv2_100",
                    "image_size": 32,
                    "parity_tolerance": 1e-12,
                    "output_dir": str(run_dir),
                },
            )
        )
    summary = RunDir(run_dir).read_summary()
    assert summary["status"] == "failed"
    assert "differs from PyTorch" in summary["error"]
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.yaml", "summary.json", "train.log"]


def test_calibration_and_parity_samples_are_stratified_training_images(cifar_folder):
    labels = [0] * 30 + [1] * 30 + [2] * 3
    picked = stratified_sample(labels, 9, seed=0)
    assert sorted({labels[i] for i in picked}) == [0, 1, 2]
    assert [labels[i] for i in picked].count(2) == 3
    assert picked == stratified_sample(labels, 9, seed=0) != stratified_sample(labels, 9, seed=1)
    assert len(stratified_sample(labels, 1000, seed=0)) == len(labels)
    images = sample_training_images(str(cifar_folder), 20, seed=0)
    assert images.shape == (20, 3, 32, 32)
    assert images.dtype == torch.uint8


def test_the_service_command_line_exports_from_a_config_file(tmp_path):
    """What the worker runs for a kind: `python -m lowdino export --config RUN/config.yaml --output-dir RUN`."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("source: resnet5m\nimage_size: 32\nparity_images: 2\n")
    assert main(["export", "--config", str(run / "config.yaml"), "--output-dir", str(run)]) == 0
    summary = RunDir(run).read_summary()
    assert (summary["status"], summary["artifact"]) == ("completed", "resnet5m.onnx")
    manifest = json.loads((run / summary["manifest"]).read_text())
    assert manifest["parity_images_are_random"] is True
    assert "random normal batch" in manifest["parity"]["image_source"]
    assert build_config(ExportConfig, file=run / "config.yaml").output_dir == str(run)
