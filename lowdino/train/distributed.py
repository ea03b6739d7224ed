"""Process-group set-up for `torchrun` launches, and the rank helpers the trainer uses.

A plain `lowdino pretrain` is one process (world size 1). Under `torchrun --nproc_per_node N` the
environment carries RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR; then every process joins one
process group (gloo on CPU, nccl on GPU), trains on its shard of each batch, and only rank 0 writes
logs, metrics and checkpoints.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from lowdino.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job. `world_size == 1` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def context_from_env(env: dict[str, str] | None = None) -> DistContext:
    """Read torchrun's variables; anything absent means a single process."""
    env = dict(os.environ) if env is None else env
    try:
        world_size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(
            f"WORLD_SIZE / RANK / LOCAL_RANK must be integers ({exc}); launch with torchrun"
        ) from exc
    return DistContext(rank=rank, world_size=max(world_size, 1), local_rank=local_rank)


def init_process_group(ctx: DistContext, device: torch.device) -> None:
    """Join the torchrun job: nccl for CUDA (one GPU per local rank), gloo for CPU."""
    if not ctx.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # A long timeout: rank 0 alone runs the kNN monitor while the others wait at the next collective.
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=60))


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def any_ranks(flags: Sequence[bool], ctx: DistContext, device: torch.device) -> list[bool]:
    """Each flag true on every rank when it is true on any rank, in one all-reduce (rank 0 alone sees
    the STOP file and its clock: the per-step stop and checkpoint decisions)."""
    if not ctx.distributed:
        return list(flags)
    tensor = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [bool(value > 0) for value in tensor.tolist()]


def broadcast_module_state(module: torch.nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every rank, so student and teacher start identical."""
    if not ctx.distributed:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's `obj`, in rank order (used for per-rank RNG states in checkpoints)."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()
