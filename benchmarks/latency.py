"""CPU latency of every registered backbone: torch eager against ONNX Runtime and, where the executorch
package is installed, ExecuTorch on XNNPACK (fp32, and int8 for the small CNN / MobileViT that are meant
to be deployed), batch 1, one thread and all cores.

Weights are random ("random weights: latency only"): these networks have no data-dependent control
flow, so their latency does not depend on the weights' values. The fp32 ONNX graph and .pte program
are parity-checked against PyTorch before they are timed; the int8 ones are calibrated on CIFAR-10
TRAINING images taken from the JPEG zip. Prints one JSON object: the machine (CPU model, cores, load
average before and after), one row per measurement (`lowdino.eval.latency.LatencyRow`), and per
backbone and size ``onnxruntime_speedup_vs_torch``, ``executorch_speedup_vs_torch`` and the int8
speed-ups at each thread count, and ``int8_paired``: the fp32 and int8 artifacts called in turn on the
same image (robust to load from other processes), with each one's speed-up over fp32 ONNX Runtime.

    .venv/bin/python benchmarks/latency.py [--backbones mobilevit_xxs,resnet5m] [--sizes 32,224]
        [--threads 1,0] [--repetitions 50] [--int8 mobilenetv2_100,mobilevit_xxs] [--zip cifar10-jpeg.zip]
        [--no-executorch]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from lowdino.backbones import backbone_names, check_input_size, create_backbone, get_spec
from lowdino.errors import ConfigError
from lowdino.eval.latency import (
    LatencyRow,
    all_cores,
    artifact_runner,
    cpu_model,
    measure_latency,
    thread_counts,
    time_calls,
    torch_runner,
)
from lowdino.export.images import image_sample
from lowdino.export.onnx import INPUT_NAME, export_onnx
from lowdino.export.parity import compare, reference_features, require_parity
from lowdino.export.pte import executorch_version, export_pte, quantize_pte
from lowdino.export.quantize import Int8Settings, quantize_int8
from lowdino.export.runtime import load_runtime

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO_ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
NOTE = "random weights: latency only"


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def extract_training_images(zip_path: Path, folder: Path, per_class: int) -> Path:
    """The first ``per_class`` TRAINING images of each CIFAR-10 class, as an image folder."""
    taken: dict[str, int] = defaultdict(int)
    with zipfile.ZipFile(zip_path) as archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if len(parts) != 4 or parts[1] != "train" or not parts[3].endswith(".jpg"):
                continue
            if taken[parts[2]] >= per_class:
                continue
            taken[parts[2]] += 1
            target = folder / "train" / parts[2] / parts[3]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    return folder


def usable_size(name: str, size: int) -> int:
    """``size``, or the nearest size below it the backbone takes (DINOv2's patch 14: 32 -> 28)."""
    try:
        check_input_size(name, size)
        return size
    except ConfigError:
        multiple = get_spec(name).input_multiple
        return max(multiple, size // multiple * multiple)


def paired_speedups(artifacts: dict[str, Path], size: int, threads: int, args: argparse.Namespace) -> dict:
    """The artifacts called in turn on the same image, so that all see the same load from other
    processes (on a busy machine two separate runs of 50 calls can differ by 2x on their own). Keys:
    "onnxruntime_fp32", "onnxruntime_int8", "executorch_fp32", "executorch_int8" (those present); every
    speed-up is the median of the per-round ratios against the first, fp32 ONNX Runtime."""
    batch = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    calls = {name: artifact_runner(path)(threads, batch) for name, path in artifacts.items()}
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        time_calls(call, warmup=args.warmup, repetitions=0)
    for _ in range(args.repetitions):
        for name, call in calls.items():
            seconds[name] += time_calls(call, warmup=0, repetitions=1)
    baseline = seconds["onnxruntime_fp32"]
    result: dict[str, Any] = {"threads": threads, "pairs": args.repetitions}
    for name, values in seconds.items():
        result[f"{name}_median_ms"] = round(statistics.median(values) * 1000, 4)
        if name != "onnxruntime_fp32":
            ratios = [a / b for a, b in zip(baseline, values, strict=True)]
            result[f"{name}_speedup_vs_onnxruntime_fp32_paired"] = round(statistics.median(ratios), 3)
    if "onnxruntime_int8" in seconds:  # the figure earlier results named so
        result["int8_speedup_paired"] = result["onnxruntime_int8_speedup_vs_onnxruntime_fp32_paired"]
    if "executorch_int8" in seconds and "executorch_fp32" in seconds:
        ratios = [a / b for a, b in zip(seconds["executorch_fp32"], seconds["executorch_int8"], strict=True)]
        result["executorch_int8_speedup_vs_executorch_fp32_paired"] = round(statistics.median(ratios), 3)
    return result


def bench_backbone(
    name: str,
    size: int,
    args: argparse.Namespace,
    calibration: Path | None,
    scratch: Path,
    paired: list[dict],
) -> list[LatencyRow]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        backbone = create_backbone(name).eval()
    common: dict[str, Any] = {
        "image_size": size,
        "batch_sizes": [1],
        "threads": args.threads,
        "warmup": args.warmup,
        "repetitions": args.repetitions,
        "note": NOTE,
    }
    rows = measure_latency(torch_runner(backbone), runtime="torch", **common)
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    reference = reference_features(backbone, example)
    fp32 = scratch / f"{name}-{size}.onnx"
    export_onnx(backbone, example, fp32, opset=18, dynamic=True)
    parity = compare(reference, load_runtime(fp32)(example.numpy()), "random")
    require_parity(parity, 1e-4, f"the ONNX export of {name} at {size} px")
    rows += measure_latency(artifact_runner(fp32), runtime="onnxruntime", **common)
    artifacts = {"onnxruntime_fp32": fp32}
    if args.executorch:
        pte = scratch / f"{name}-{size}.pte"
        export_pte(backbone, example[:1], pte)  # batch 1, as timed
        parity = compare(reference, load_runtime(pte)(example.numpy()), "random")
        require_parity(parity, 1e-4, f"the ExecuTorch export of {name} at {size} px")
        rows += measure_latency(artifact_runner(pte), runtime="executorch", **common)
        artifacts["executorch_fp32"] = pte
    if calibration is not None and name in args.int8:
        images = image_sample(str(calibration), args.calibration_images, 0, name, size).batch
        int8 = scratch / f"{name}-{size}.int8.onnx"
        quantize_int8(fp32, int8, images.numpy(), INPUT_NAME, Int8Settings())
        rows += measure_latency(artifact_runner(int8), runtime="onnxruntime", precision="int8", **common)
        artifacts["onnxruntime_int8"] = int8
        if args.executorch:
            pte_int8 = scratch / f"{name}-{size}.int8.pte"
            quantize_pte(backbone, example[:1], images, pte_int8)
            rows += measure_latency(
                artifact_runner(pte_int8), runtime="executorch", precision="int8", **common
            )
            artifacts["executorch_int8"] = pte_int8
        for threads in thread_counts(args.threads):
            pair = {"key": f"{name}@{size}px/t{threads}", **paired_speedups(artifacts, size, threads, args)}
            paired.append(pair)
            if args.progress is not None:
                with args.progress.open("a") as handle:
                    handle.write(json.dumps({"paired": pair, "load": os.getloadavg()}) + "\n")
    return rows


def speedups(rows: list[tuple[str, LatencyRow]]) -> dict[str, Any]:
    """Per "<backbone>@<size>px/t<threads>": the medians and the speed-ups."""
    table: dict[str, Any] = {}
    for key, row in rows:
        cell = table.setdefault(key, {})
        runtime = row.runtime if row.precision == "fp32" else f"{row.runtime}_int8"
        cell[f"{runtime}_median_ms"] = round(row.median_ms, 4)
    for cell in table.values():
        torch_ms, ort_ms = cell.get("torch_median_ms"), cell.get("onnxruntime_median_ms")
        et_ms = cell.get("executorch_median_ms")
        if torch_ms and ort_ms:
            cell["onnxruntime_speedup_vs_torch"] = round(torch_ms / ort_ms, 3)
        if torch_ms and et_ms:
            cell["executorch_speedup_vs_torch"] = round(torch_ms / et_ms, 3)
        if ort_ms and cell.get("onnxruntime_int8_median_ms"):
            cell["int8_speedup_vs_onnxruntime_fp32"] = round(ort_ms / cell["onnxruntime_int8_median_ms"], 3)
        if ort_ms and cell.get("executorch_int8_median_ms"):
            ratio = ort_ms / cell["executorch_int8_median_ms"]
            cell["executorch_int8_speedup_vs_onnxruntime_fp32"] = round(ratio, 3)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbones", type=_csv, default=backbone_names())
    parser.add_argument("--sizes", type=lambda text: [int(v) for v in _csv(text)], default=[32, 224])
    parser.add_argument("--threads", type=lambda text: [int(v) for v in _csv(text)], default=[1, 0])
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--int8", type=_csv, default=["mobilenetv2_100", "mobilevit_xxs"])
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    parser.add_argument(
        "--executorch",
        action=argparse.BooleanOptionalAction,
        default=importlib.util.find_spec("executorch") is not None,
        help="Also time ExecuTorch (XNNPACK) programs (default: where the executorch package is installed).",
    )
    parser.add_argument(
        "--progress",
        type=Path,
        default=None,
        help="Also append each row as one JSON line here, as it is measured.",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[tuple[str, LatencyRow]] = []
    paired: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="lowdino-latency-") as tmp:
        scratch = Path(tmp)
        calibration = None
        if args.int8 and args.zip.is_file():
            calibration = extract_training_images(args.zip, scratch / "cifar", per_class=20)
        for name in args.backbones:
            for requested in args.sizes:
                size = usable_size(name, requested)
                print(f"{name} at {size} px ...", file=sys.stderr, flush=True)
                for row in bench_backbone(name, size, args, calibration, scratch, paired):
                    key = f"{name}@{size}px/t{row.threads}"
                    rows.append((key, row))
                    if args.progress is not None:
                        with args.progress.open("a") as handle:
                            handle.write(
                                json.dumps({"key": key, "load": os.getloadavg(), **row.as_dict()}) + "\n"
                            )
    result = {
        "machine": {
            "cpu_model": cpu_model(),
            "cores": all_cores(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "executorch": executorch_version() if args.executorch else None,
        },
        "weights": NOTE,
        "batch_size": 1,
        "repetitions": args.repetitions,
        "summary": speedups(rows),
        "int8_paired": paired,
        "rows": [{"key": key, **row.as_dict()} for key, row in rows],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
