"""int8 export: static quantization calibrated on training images, and its accuracy cost measured by
`lowdino eval --artifact` (kNN through ONNX Runtime) against the fp32 artifact and PyTorch itself."""

from __future__ import annotations

import json

import onnx
import pytest

from lowdino.cli.main import main

pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOWDINO_HOME", str(tmp_path / "home"))


def _knn(tmp_path, name: str, *model: str, data) -> dict:
    out = tmp_path / f"eval-{name}"
    argv = ["eval", *model, "--dataset", "imagefolder", "--data-path", str(data), "--protocols", "knn"]
    assert main([*argv, "--knn-protocol", "both", "--device", "cpu", "--output-dir", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def test_int8_export_is_quantized_calibrated_on_training_images_and_its_knn_measured(cifar_folder, tmp_path):
    common = ["resnet5m", "--image-size", "32", "--parity-data", str(cifar_folder)]
    fp32, int8 = tmp_path / "r.onnx", tmp_path / "r.int8.onnx"
    assert main(["export", *common, "--output", str(fp32)]) == 0
    argv = [
        *common,
        "--quantize",
        "int8",
        "--calibration-data",
        str(cifar_folder),
        "--calibration-images",
        "40",
    ]
    assert main(["export", *argv, "--output", str(int8)]) == 0

    manifest = json.loads((tmp_path / "r.int8.onnx.manifest.json").read_text())
    quantization = manifest["quantization"]
    assert quantization["calibration_images"] == 40
    assert quantization["calibration_split"] == "train"
    assert f"{cifar_folder} (train split, 40 images" in quantization["calibration_source"]
    assert (quantization["format"], quantization["per_channel"]) == ("QDQ", True)
    # Really int8: integer weights in the graph, and features that are not the fp32 ones.
    graph = onnx.load(str(int8)).graph
    assert any(init.data_type == onnx.TensorProto.INT8 for init in graph.initializer)
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) > 10
    parity = manifest["parity"]
    assert parity["precision"] == "int8"
    assert parity["max_abs_diff"] > 1e-4
    assert 0.9 < parity["cosine_mean"] < 1.0
    assert manifest["parity_fp32_before_quantization"]["max_abs_diff"] <= 1e-4

    torch_run = _knn(tmp_path, "torch", "--backbone", "resnet5m", "--image-size", "32", data=cifar_folder)
    fp32_run = _knn(tmp_path, "fp32", "--artifact", str(fp32), data=cifar_folder)
    int8_run = _knn(tmp_path, "int8", "--artifact", str(int8), data=cifar_folder)
    assert (fp32_run["runtime"], fp32_run["precision"], fp32_run["artifact"]) == (
        "onnxruntime",
        "fp32",
        str(fp32),
    )
    assert (int8_run["runtime"], int8_run["precision"]) == ("onnxruntime", "int8")
    assert torch_run["runtime"] == "torch"
    for run in (fp32_run, int8_run):  # the same images as PyTorch's evaluation
        assert (run["train_size"], run["test_size"], run["image_size"]) == (300, 100, 32)
    top1 = {name: {cell["column"]: cell["mean"] for cell in run["results"]} for name, run in
            (("torch", torch_run), ("fp32", fp32_run), ("int8", int8_run))}  # fmt: skip
    # fp32 through ONNX Runtime is PyTorch to within float rounding: the same neighbours, the same top-1.
    assert top1["fp32"] == top1["torch"]
    # int8 costs at most 10 points of kNN (100 test images: one image is one point) on this network.
    for column in ("kNN", "1-NN"):
        assert abs(top1["int8"][column] - top1["fp32"][column]) <= 10.0, top1


def test_int8_export_of_a_transformer_prints_no_per_tensor_fallback_noise(
    cifar_folder, tmp_path, caplog, capfd
):
    argv = ["export", "mobilevit_xxs", "--image-size", "32", "--parity-data", str(cifar_folder), "--quantize"]
    argv += ["int8", "--calibration-data", str(cifar_folder), "--calibration-images", "16"]
    assert main([*argv, "--output", str(tmp_path / "x.int8.onnx")]) == 0
    printed = caplog.text + "".join(capfd.readouterr())
    assert "int8 vs PyTorch" in printed  # the export's own report is still there
    assert "is out-of-range for weight" not in printed  # ONNX Runtime's per-LayerNorm-scale warnings are not
