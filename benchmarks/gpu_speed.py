"""Pretraining throughput on any device and crop size, and the share the full pipeline keeps, as JSON.

    .venv/bin/python benchmarks/gpu_speed.py --backbone mobilevit_s --global-crop-size 224 \
        --local-crop-size 96 --batch-size 128 --device cuda --precision bf16

The method of benchmarks/pretrain_speed.py (which pins the CPU / CIFAR-10 / 32 px case of the README)
for the GPU matrix of benchmarks/gpu_check.sh: a real `lowdino pretrain` run's steady-state images/s
(summary.json), and the model alone (lowdino.train.throughput: the same training step on crops made
once). Data: the synthetic dataset (32 px sources, generated in memory, so nothing needs to be on the
GPU machine); at 224 px the multi-crop augmentation upsamples them, on the GPU like real data.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from lowdino.cli.main import build_parser
from lowdino.cli.main import main as lowdino_main
from lowdino.cli.pretrain import config_from_args
from lowdino.train.throughput import measure_model_rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backbone", default="mobilevit_s")
    parser.add_argument("--global-crop-size", type=int, default=32)
    parser.add_argument("--local-crop-size", type=int, default=16)
    parser.add_argument("--local-crops", type=int, default=4, help="-c is this + 2 global crops")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--model-steps", type=int, default=20, help="timed steps of the model-alone rate")
    parser.add_argument("--synthetic-size", type=int, default=4096)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lowdino-gpu-speed-"))
    argv = [
        "pretrain", "--backbone", args.backbone, "--dataset", "synthetic",
        "--synthetic-size", str(args.synthetic_size),
        "--global-crop-size", str(args.global_crop_size), "--local-crop-size", str(args.local_crop_size),
        "-c", str(args.local_crops + 2), "-b", str(args.batch_size), "-o", "2048",
        "--max-steps", str(args.max_steps), "--device", args.device, "--precision", args.precision,
        "--no-knn-monitor", "--output-dir", str(work / "pipeline"),
    ]  # fmt: skip
    code = lowdino_main(argv)
    if code != 0:
        raise SystemExit(f"lowdino pretrain exited with {code}")
    summary = json.loads((work / "pipeline" / "summary.json").read_text())
    config = config_from_args(build_parser().parse_args(argv))
    config = config.model_copy(update={"output_dir": str(work / "model")})
    model_rate = measure_model_rate(config, steps=args.model_steps)
    pipeline_rate = summary["images_per_sec"]
    if pipeline_rate is None:
        raise SystemExit(
            f"{args.max_steps} steps give no steady-state rate (the first steps are excluded); raise --max-steps"
        )
    device_name = torch.cuda.get_device_name(0) if summary["device"].startswith("cuda") else "cpu"
    print(
        json.dumps(
            {
                "benchmark": "gpu_speed",
                "command": "lowdino " + " ".join(argv),
                "backbone": args.backbone,
                "crop_px": [args.global_crop_size, args.local_crop_size],
                "device": summary["device"],
                "device_name": device_name,
                "precision": args.precision,
                "batch_size": args.batch_size,
                "pipeline_images_per_sec": round(pipeline_rate, 1),
                "model_images_per_sec": round(model_rate, 1),
                "ratio": round(pipeline_rate / model_rate, 3),
                "steps": summary["steps"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
