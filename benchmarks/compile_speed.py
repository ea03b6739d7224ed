"""`--compile` (torch.compile of the backbones) against eager, the trainer's own step, as JSON.

    .venv/bin/python benchmarks/compile_speed.py [--steps 20] [--global-size 32 --local-size 16 -c 6 -b 64]

Builds the run of `lowdino pretrain --backbone mobilevit_xxs --dataset synthetic --global-crop-size G
--local-crop-size L -c C -b B -o 2048 --device cpu --no-knn-monitor` twice in this process, once
eager and once with the backbones wrapped by torch.compile exactly as `--compile` does, and times
the model-alone training step (lowdino.train.throughput: one batch of crops made once) after a warm-up
that includes the compilation, whose time is reported separately. The two are measured alternately
(eager, compiled, eager, compiled) so that the shared machine's drift hits both, in wall-clock
images/s (best trial) and in images per CPU-second of this process (median), which the other jobs
on a shared machine move far less.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lowdino.cli.main import build_parser
from lowdino.cli.pretrain import config_from_args
from lowdino.devices import resolve_precision
from lowdino.train.distributed import DistContext
from lowdino.train.throughput import model_images_per_sec
from lowdino.train.trainer import compile_backbones, prepare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--global-size", type=int, default=32)
    parser.add_argument("--local-size", type=int, default=16)
    parser.add_argument("-c", "--crops", type=int, default=6)
    parser.add_argument("-b", "--batch-size", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowdino-compile-"))
    argv = [
        "pretrain", "--backbone", "mobilevit_xxs", "--dataset", "synthetic", "--global-crop-size",
        str(args.global_size), "--local-crop-size", str(args.local_size), "-c", str(args.crops),
        "-b", str(args.batch_size), "-o", "2048", "--device", "cpu", "--no-knn-monitor",
    ]  # fmt: skip
    config = config_from_args(build_parser().parse_args(argv))
    device = torch.device("cpu")
    prepared = {}
    compile_seconds = 0.0
    for mode in ("eager", "compiled"):
        run = config.model_copy(update={"output_dir": str(work / mode)})
        prepared[mode] = prepare(run, DistContext(), device, resolve_precision(run.precision, device))
        if mode == "compiled":
            compile_backbones(prepared[mode])
            started = time.perf_counter()
            model_images_per_sec(prepared[mode], steps=1, warmup=1)  # compiles forward and backward
            compile_seconds = time.perf_counter() - started
    rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    cpu_rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.trials):
        for mode in ("eager", "compiled"):
            model_images_per_sec(prepared[mode], steps=1, warmup=1)
            cpu_started = time.process_time()
            rates[mode].append(model_images_per_sec(prepared[mode], steps=args.steps, warmup=0))
            cpu_rates[mode].append(args.steps * args.batch_size / (time.process_time() - cpu_started))
    best = {mode: max(values) for mode, values in rates.items()}
    cpu_median = {mode: sorted(values)[len(values) // 2] for mode, values in cpu_rates.items()}
    print(
        json.dumps(
            {
                "benchmark": "compile_speed",
                "command": "lowdino " + " ".join(argv) + " [--compile]",
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "compile_seconds": round(compile_seconds, 1),
                "images_per_sec_trials": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
                "eager_images_per_sec": round(best["eager"], 1),
                "compiled_images_per_sec": round(best["compiled"], 1),
                "speedup": round(best["compiled"] / best["eager"], 3),
                "images_per_cpu_second_trials": {k: [round(v, 1) for v in vs] for k, vs in cpu_rates.items()},
                "speedup_cpu_time": round(cpu_median["compiled"] / cpu_median["eager"], 3),
                "load_average_1min": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
