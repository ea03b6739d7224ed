"""Device and numeric precision of a run, resolved from its config before anything is written.

One resolver for training and evaluation alike, so the same `precision` and `device_ids` mean the
same thing in `lowdino pretrain`, `lowdino distill` and `lowdino eval`.

Precision:
    auto  -> bf16 autocast on GPUs that support it, fp16 autocast + GradScaler on older GPUs, fp32 on CPU
    bf16  -> bf16 autocast (CPU too: slower than fp32 on most CPUs, but allowed)
    fp16  -> fp16 autocast with loss scaling; GPU only
    fp32  -> no autocast
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from lowdino.errors import ConfigError, DeviceError

NO_GPU_MESSAGE = "CUDA was requested but torch sees no GPU; use --device cpu or auto"


def resolve_device(name: str, *, local_rank: int | None = None) -> torch.device:
    """`auto`/`cpu`/`cuda` -> a torch.device; under torchrun (`local_rank` given) each process takes GPU
    `local_rank`."""
    cuda = torch.cuda.is_available()
    if name == "cuda" and not cuda:
        raise DeviceError(NO_GPU_MESSAGE)
    if name == "cpu" or not cuda:
        return torch.device("cpu")
    if local_rank is not None:
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"local rank {local_rank} has no GPU (torch sees {torch.cuda.device_count()}); "
                "lower torchrun's --nproc_per_node to the number of GPUs"
            )
        return torch.device("cuda", local_rank)
    return torch.device("cuda", torch.cuda.current_device())


def resolve_device_ids(
    device_ids: list[int] | None, device: torch.device, *, distributed: bool = False
) -> list[int]:
    """GPU ids for nn.DataParallel; empty when DataParallel only passes calls through.

    On CPU, DataParallel has no devices to scatter to and runs the module unchanged, so ids are
    accepted (the same command line works on a laptop) but ignored with a warning.
    """
    if not device_ids:
        return []
    if distributed:
        raise ConfigError(
            "--device-ids (DataParallel) cannot be combined with torchrun (DistributedDataParallel); "
            "drop --device-ids and set --nproc_per_node instead"
        )
    if device.type != "cuda":
        warnings.warn(
            f"device_ids {device_ids} ignored on CPU: DataParallel runs the backbone unchanged",
            RuntimeWarning,
            stacklevel=2,
        )
        return []
    count = torch.cuda.device_count()
    missing = [index for index in device_ids if index >= count]
    if missing:
        raise DeviceError(
            f"device_ids {device_ids} name GPUs {missing} but torch sees {count}; "
            f"use ids below {count} (e.g. --device-ids {','.join(str(i) for i in range(count))})"
        )
    if device.index not in device_ids:
        raise ConfigError(
            f"device_ids {device_ids} must include the run's device cuda:{device.index}; add it to --device-ids"
        )
    # DataParallel keeps the module on (and gathers outputs to) its first id: the run's device.
    return [device.index, *(index for index in device_ids if index != device.index)]


@dataclass(frozen=True)
class Precision:
    """How the forward runs: autocast dtype (None = fp32) and whether the loss needs scaling."""

    name: str
    dtype: torch.dtype | None
    use_scaler: bool

    @contextlib.contextmanager
    def autocast(self, device: torch.device) -> Iterator[None]:
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=device.type, dtype=self.dtype):
            yield


def resolve_precision(name: str, device: torch.device) -> Precision:
    if name == "auto":
        name = "fp32" if device.type != "cuda" else "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp32":
        return Precision("fp32", None, False)
    if name == "bf16":
        return Precision("bf16", torch.bfloat16, False)
    if device.type != "cuda":
        raise ConfigError("precision fp16 needs a GPU; use --precision fp32 or bf16 on CPU")
    return Precision("fp16", torch.float16, True)


def out_of_memory_error(batch_size: int, device: torch.device) -> DeviceError:
    smaller = max(batch_size // 2, 1)
    return DeviceError(
        f"out of memory on {device} at batch size {batch_size}; lower --batch-size (e.g. {smaller}) "
        "or the crop sizes / number of crops"
    )
