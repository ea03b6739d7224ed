"""What the trainer's system metrics cost: one sample (psutil over the trainer and its workers; NVML on a
GPU), and a tiny real pretraining sampled every 0.2 s (25 times the default rate: an upper bound) against
the sampler off.

    .venv/bin/python benchmarks/system_monitor_cost.py            # 200 samples, 3 interleaved run pairs
    .venv/bin/python benchmarks/system_monitor_cost.py --quick    # 50 samples, 1 pair

Prints one JSON object. ``sample_ms`` is the median wall time of one sample with `workers` forked
children alive (DataLoader workers are children of the trainer); ``run_s_on`` / ``run_s_off`` are the
fastest of the interleaved tiny runs (load from other processes inflates the figures as little as
possible). Target: ``overhead_percent`` within noise (< 2 %) even at 25 times the default rate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lowdino.config import PretrainConfig
from lowdino.train.system_monitor import SystemMonitor
from lowdino.train.trainer import pretrain

TINY = {
    "backbone": "resnet5m",
    "dataset": "synthetic",
    "synthetic_size": 256,
    "global_crop_size": 16,
    "local_crop_size": 8,
    "n_crops": 2,
    "batch_size": 32,
    "n_epochs": 2,
    "warmup_epochs": 0,
    "out_dim": 64,
    "hidden_dim": 64,
    "bottleneck_dim": 32,
    "knn_monitor": False,
    "memory_check": False,
    "device": "cpu",
}


def _idle(stop: multiprocessing.synchronize.Event) -> None:
    stop.wait()


def sample_ms(samples: int, workers: int) -> float:
    stop = multiprocessing.Event()
    children = [multiprocessing.Process(target=_idle, args=(stop,)) for _ in range(workers)]
    for child in children:
        child.start()
    monitor = SystemMonitor(3600, torch.device("cpu"))
    try:
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            monitor.sample_now()
            times.append((time.perf_counter() - started) * 1000)
            monitor.take()
        return statistics.median(times)
    finally:
        monitor.close()
        stop.set()
        for child in children:
            child.join()


def run_seconds(every: float) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = PretrainConfig.model_validate(
            {**TINY, "system_metrics_every_seconds": every, "output_dir": str(Path(folder) / "run")}
        )
        started = time.perf_counter()
        pretrain(config)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    samples, pairs, workers = (50, 1, 2) if args.quick else (200, 3, 4)
    torch.set_num_threads(1)
    default_every = PretrainConfig.model_fields["system_metrics_every_seconds"].default
    stressed = default_every / 25
    on, off = [], []
    for _ in range(pairs):
        off.append(run_seconds(0))
        on.append(run_seconds(stressed))
    result = {
        "sample_ms": round(sample_ms(samples, workers), 3),
        "workers": workers,
        "samples": samples,
        "every_seconds": stressed,
        "run_s_on": round(min(on), 3),
        "run_s_off": round(min(off), 3),
        "overhead_percent": round(100 * (min(on) - min(off)) / min(off), 2),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
