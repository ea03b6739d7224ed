"""The metrics a run records, and which direction is better for each.

The trainer, the methods and the evaluation write these keys to metrics.jsonl; the job service keeps a
"best" value only for keys listed here, so a schedule (lr, momentum) or a rate (images/s) never gets
one, and a new loss is declared here rather than guessed from its name. Evaluation results are named
by `eval_metric_key`: one series per protocol and label fraction, always higher-is-better top-1; each
eval record carries its series name under `EVAL_SERIES_FIELD`, so readers take it from the record.
"""

from __future__ import annotations

from typing import Literal

Goal = Literal["min", "max"]

METRIC_GOALS: dict[str, Goal] = {
    # every method
    "loss": "min",
    # DINO (lowdino.methods.dino) and its DINOv2 options
    "dino_loss": "min",
    "koleo_loss": "min",
    # distillation (lowdino.methods.distill)
    "distill_loss": "min",
    "label_loss": "min",
    "train_top1": "max",
    # the in-training kNN monitor (on the validation split)
    "knn_top1": "max",
}
EVAL_METRIC_SUFFIX = "_top1"
# The field of an eval metrics record naming the series its "top1" belongs to (`eval_metric_key`).
EVAL_SERIES_FIELD = "series"
LATENCY_METRIC_SUFFIX = "_median_ms"

# System metrics: sampled every few seconds while a run trains (lowdino.train.system_monitor) and written
# into that step's record like any other metric; none is a loss or an accuracy, so none keeps a "best".
SYSTEM_METRIC_PREFIX = "sys_"
CPU_PERCENT = "sys_cpu_percent"  # the run's processes (trainer + data-loader workers); 100 = one core
RSS_MB = "sys_rss_mb"  # their resident memory
DATA_WAIT_PERCENT = "sys_data_wait_percent"  # share of step time spent waiting for the next batch
GPU_UTIL_PERCENT = "sys_gpu_util_percent"
GPU_MEMORY_MB = "sys_gpu_memory_mb"
GPU_POWER_W = "sys_gpu_power_w"
# Waiting for data above this share of its step time, a run is data-bound: more loader workers or a
# faster data path would speed it up, a faster model would not.
DATA_BOUND_WAIT_PERCENT = 30.0


def eval_metric_key(protocol: str, label_fraction: float | None) -> str:
    """'knn_top1' at all labels, 'linear_10pct_top1' at 10 %: each protocol and fraction its own series."""
    if label_fraction is None or label_fraction >= 1.0:
        return f"{protocol}{EVAL_METRIC_SUFFIX}"
    return f"{protocol}_{label_fraction * 100:g}pct{EVAL_METRIC_SUFFIX}".replace(".", "_")


def latency_metric_key(runtime: str, batch_size: int, threads: int, precision: str = "fp32") -> str:
    """'latency_onnxruntime_int8_b1_t1_median_ms': one series per runtime, precision, batch and threads.

    A latency record (protocol "latency") carries it as ``key`` with the median milliseconds per image
    as ``value``, and under `EVAL_SERIES_FIELD`; lower is better, and no "best" is kept for it.
    """
    return f"latency_{runtime}_{precision}_b{batch_size}_t{threads}{LATENCY_METRIC_SUFFIX}"


def metric_goal(key: str) -> Goal | None:
    """'min' or 'max' for a declared metric; None: no "best" to keep (schedules, rates, undeclared keys).

    Evaluation series (`eval_metric_key`) are top-1 and always 'max'; the service knows them as such
    from the record that produced them, not from their name.
    """
    return METRIC_GOALS.get(key)
