"""Training pipeline speed vs the model alone, on real CIFAR-10 images, printed as JSON.

    .venv/bin/python benchmarks/pretrain_speed.py [--max-steps 40] [--threads N]

Threads: the trainer's resource plan (lowdino.resources) in both measurements, unless --threads.

1. Runs, in this process, exactly
       lowdino pretrain --backbone mobilevit_xxs --dataset imagefolder --data-path DIR
         --global-crop-size 32 --local-crop-size 16 -c 6 -b 64 -o 2048 --max-steps 40 --device cpu
         --output-dir OUT
   (DIR: the CIFAR-10 train folder extracted once from ../shared/datasets/cifar10-jpeg.zip) and reads
   its steady-state images/s (first 5 steps excluded) from summary.json.
2. Times the same training step with the data path removed (lowdino.train.throughput: the crops of
   one batch made once and reused; student forward + backward on the 6 crops, teacher forward on the
   2 globals, one backbone call per resolution, AdamW step, EMA update).

Target: pipeline / model >= 0.8. The kNN monitor is off in both (it is evaluation, not training).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar_data import DEFAULT_ZIP, extract_cifar10

from lowdino.cli.main import build_parser
from lowdino.cli.main import main as lowdino_main
from lowdino.cli.pretrain import config_from_args
from lowdino.contract import rundir
from lowdino.train.throughput import measure_model_rate

TARGET_RATIO = 0.8


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--model-steps", type=int, default=20, help="timed steps of the model-alone rate")
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the shared CIFAR-10 JPEG zip")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="lowdino pretrain --threads (default: the resource plan's, every core of a CPU device)",
    )
    args = parser.parse_args()

    data_path = extract_cifar10(args.zip)
    work = Path(tempfile.mkdtemp(prefix="lowdino-speed-"))
    argv = [
        "pretrain", "--backbone", "mobilevit_xxs", "--dataset", "imagefolder", "--data-path", str(data_path),
        "--global-crop-size", "32", "--local-crop-size", "16", "-c", "6", "-b", "64", "-o", "2048",
        "--max-steps", str(args.max_steps), "--device", "cpu", "--no-knn-monitor",
        "--output-dir", str(work / "pipeline"),
    ]  # fmt: skip
    if args.threads:
        argv += ["--threads", str(args.threads)]
    code = lowdino_main(argv)
    if code != rundir.EXIT_OK:
        raise SystemExit(f"lowdino pretrain exited with {code}")
    summary = json.loads((work / "pipeline" / rundir.SUMMARY_FILE).read_text())

    config = config_from_args(build_parser().parse_args(argv))
    config = config.model_copy(update={"output_dir": str(work / "model")})
    model_rate = measure_model_rate(config, steps=args.model_steps)
    pipeline_rate = summary["images_per_sec"]
    ratio = pipeline_rate / model_rate
    print(
        json.dumps(
            {
                "benchmark": "pretrain_speed",
                "command": "lowdino " + " ".join(argv),
                "pipeline_images_per_sec": round(pipeline_rate, 1),
                "model_images_per_sec": round(model_rate, 1),
                "ratio": round(ratio, 3),
                "target_ratio": TARGET_RATIO,
                "meets_target": ratio >= TARGET_RATIO,
                "torch_threads": torch.get_num_threads(),
                "steps": summary["steps"],
            }
        )
    )


if __name__ == "__main__":
    main()
