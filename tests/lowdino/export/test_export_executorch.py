"""`lowdino export --format executorch`: .pte programs lowered to XNNPACK, checked against PyTorch on real
CIFAR-10 images through ExecuTorch's own runtime, evaluated (`lowdino eval --artifact X.pte`: kNN and
latency) and quantized to int8 with PT2E. Needs the [executorch] extra; without it only the one-line
refusal is checked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lowdino.backbones import create_backbone, get_spec
from lowdino.cli.main import main
from lowdino.errors import ConfigError
from lowdino.export.images import preprocess, sample_training_images
from lowdino.export.runtime import load_runtime
from lowdino.hashing import file_hash

# Lowering to XNNPACK takes about a minute per backbone on 2 shared cores (the fixture lowers two), far
# beyond "a few seconds": every test here that lowers is slow, with room for a loaded machine.
pytestmark = [pytest.mark.usefixtures("torch_single_thread"), pytest.mark.timeout(1200)]
INSTALLED = importlib.util.find_spec("executorch") is not None
needs_executorch = pytest.mark.skipif(not INSTALLED, reason="the executorch package is not installed")
FAST_LATENCY = ["--latency-batch-sizes", "1,4", "--latency-threads", "1", "--latency-warmup", "2"]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def programs(cifar_folder, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """mobilevit_xxs and mobilenetv2_100 (random init, seed 0) exported once at 32 px by the CLI."""
    if not INSTALLED:
        pytest.skip("the executorch package is not installed")
    out = tmp_path_factory.mktemp("pte")
    exported = {}
    for name in ("mobilevit_xxs", "mobilenetv2_100"):
        path = out / f"{name}.pte"
        argv = ["export", name, "--format", "executorch", "--image-size", "32"]
        assert main([*argv, "--parity-data", str(cifar_folder), "--output", str(path)]) == 0
        exported[name] = (path, json.loads(Path(f"{path}.manifest.json").read_text()))
    return exported


def _seeded(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_backbone(name).eval()


@needs_executorch
@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilevit_xxs", "mobilenetv2_100"])
def test_executorch_programs_match_pytorch_on_real_images(name, programs, cifar_folder):
    from executorch.runtime import Runtime

    path, manifest = programs[name]
    parity = manifest["parity"]
    assert (parity["precision"], parity["images"]) == ("fp32", 16)
    assert parity["max_abs_diff"] <= 1e-4
    assert "train split" in parity["image_source"]
    assert (manifest["format"], manifest["delegate"], manifest["backbone"]) == ("executorch", "XNNPACK", name)
    assert (manifest["dynamic_batch"], manifest["max_batch"]) == (False, 1)  # one image per call
    assert manifest["delegated_subgraphs"] >= 1
    assert manifest["executorch_version"] == manifest["runtime_versions"]["executorch"]
    assert (manifest["mean"], manifest["std"]) == (list(get_spec(name).mean), list(get_spec(name).std))
    assert manifest["artifact_sha256"] == file_hash(path)

    # Independently of LowDINO's runtime wrapper: ExecuTorch's own bindings on other real images.
    backbone = _seeded(name)
    batch = preprocess(sample_training_images(str(cifar_folder), 6, seed=3), name, 32)
    with torch.inference_mode():
        expected = backbone(batch).numpy()
    method = Runtime.get().load_program(path).load_method("forward")
    got = method.execute([batch[:1].clone()])[0].numpy()
    assert got.shape == (1, manifest["feature_dim"])
    assert np.abs(got - expected[:1]).max() <= 1e-4
    # Through `load_runtime`: a batch of 6 goes through the 1-image program in turn.
    assert np.abs(load_runtime(path)(batch.numpy()) - expected).max() <= 1e-4


@needs_executorch
@pytest.mark.slow
def test_runtimes_with_other_thread_counts_do_not_break_each_other(programs, cifar_folder):
    """ExecuTorch has one thread pool per process: a runtime made for 2 threads resizes it, and the
    1-thread runtime made before must still compute the same features afterwards (it reloads)."""
    path, _ = programs["mobilenetv2_100"]
    batch = preprocess(sample_training_images(str(cifar_folder), 3, seed=4), "mobilenetv2_100", 32).numpy()
    one = load_runtime(path, threads=1)
    before = one(batch)
    two = load_runtime(path, threads=2)
    assert np.abs(two(batch) - before).max() <= 1e-5
    assert np.abs(one(batch) - before).max() <= 1e-5
    assert (one.name, one.threads, two.threads) == ("executorch", 1, 2)


def _eval(tmp_path: Path, label: str, *argv: str, data: Path) -> dict:
    out = tmp_path / f"eval-{label}"
    args = ["eval", *argv, "--dataset", "imagefolder", "--data-path", str(data), "--device", "cpu"]
    assert main([*args, "--output-dir", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


@needs_executorch
@pytest.mark.slow
def test_eval_of_a_pte_gives_pytorchs_knn_and_executorch_latency_rows(programs, cifar_folder, tmp_path):
    path, _ = programs["mobilevit_xxs"]
    through_et = _eval(
        tmp_path,
        "pte",
        "--artifact",
        str(path),
        "--protocols",
        "knn,latency",
        *FAST_LATENCY,
        data=cifar_folder,
    )
    # The PyTorch backbone, also timed through a .pte made for the measurement (--latency-runtimes).
    argv = ["--backbone", "mobilevit_xxs", "--image-size", "32", "--protocols", "knn,latency"]
    torch_run = _eval(
        tmp_path, "torch", *argv, "--latency-runtimes", "executorch", *FAST_LATENCY, data=cifar_folder
    )
    assert (through_et["runtime"], through_et["precision"], through_et["artifact"]) == (
        "executorch",
        "fp32",
        str(path),
    )
    assert (through_et["train_size"], through_et["test_size"], through_et["image_size"]) == (300, 100, 32)
    top1 = {
        label: {cell["column"]: cell["mean"] for cell in run["results"]}
        for label, run in (("executorch", through_et), ("torch", torch_run))
    }
    assert abs(top1["executorch"]["kNN"] - top1["torch"]["kNN"]) <= 0.5, top1
    for run in (through_et, torch_run):
        rows = run["latency"]
        assert [(row["runtime"], row["batch_size"], row["threads"]) for row in rows] == [
            ("executorch", 1, 1),
            ("executorch", 4, 1),
        ]
        assert all(0 < row["median_ms"] <= row["p90_ms"] and row["image_size"] == 32 for row in rows)
    assert all(row["artifact"] == str(path) for row in through_et["latency"])


@needs_executorch
@pytest.mark.slow
def test_int8_executorch_export_is_calibrated_on_training_images(cifar_folder, tmp_path):
    path = tmp_path / "m.int8.pte"
    # The smallest network here: XNNPACK's int8 lowering of mobilevit_xxs takes minutes on 2 cores, the
    # quantization path is the same (the README measures mobilevit_xxs int8 with benchmarks/latency.py).
    argv = ["export", "mobilenetv2_035", "--format", "executorch", "--quantize", "int8", "--image-size", "32"]
    argv += ["--calibration-data", str(cifar_folder), "--calibration-images", "16", "--parity-images", "8"]
    assert main([*argv, "--output", str(path)]) == 0
    manifest = json.loads(Path(f"{path}.manifest.json").read_text())
    quantization = manifest["quantization"]
    assert quantization["calibration_images"] == 16
    assert quantization["calibration_split"] == "train"
    assert f"{cifar_folder} (train split, 16 images" in quantization["calibration_source"]
    assert quantization["format"] == "XNNPACK int8"
    assert manifest["parity_fp32_before_quantization"]["max_abs_diff"] <= 1e-4
    parity = manifest["parity"]
    # Really quantized: the features move, but stay the network's (cosine close to 1).
    assert parity["precision"] == "int8"
    assert parity["max_abs_diff"] > 1e-4
    assert 0.9 < parity["cosine_mean"] < 1.0
    run = _eval(tmp_path, "int8", "--artifact", str(path), "--protocols", "knn", data=cifar_folder)
    assert (run["runtime"], run["precision"]) == ("executorch", "int8")


@needs_executorch
def test_a_corrupt_program_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.pte"
    path.write_bytes(b"not a program")
    with pytest.raises(ConfigError, match="is not a loadable ExecuTorch program"):
        load_runtime(path)


@pytest.mark.skipif(INSTALLED, reason="the refusal is for machines without the executorch package")
def test_without_the_package_executorch_is_refused_in_one_line(tmp_path, capsys):
    output = tmp_path / "out" / "model.pte"
    assert main(["export", "resnet5m", "--format", "executorch", "--output", str(output)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lowdino export: ")]
    assert len(errors) == 1
    assert "pip install 'lowdino[executorch]'" in errors[0]
    assert not output.parent.exists()
