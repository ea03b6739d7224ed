"""Sinkhorn-Knopp teacher targets: DINOv2's replacement for DINO's running-mean centering."""

from __future__ import annotations

import torch
import torch.distributed as dist


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


@torch.no_grad()
def sinkhorn_knopp(
    teacher_output: torch.Tensor, *, teacher_temp: float, n_iterations: int = 3
) -> torch.Tensor:
    """Teacher targets whose prototypes are used equally often over the batch (Caron et al. 2020, SwAV).

    Q = exp(t / tau_t)^T (K, B) is scaled alternately so that every row (prototype) sums to 1/K and
    every column (sample) to 1/B; the result, times B, gives per-sample distributions (B, K).
    Unlike running-mean centering it acts on the current batch, so a prototype cannot dominate even
    for a few steps. With fewer samples than prototypes (B < K) each target must spread over at least
    K / B prototypes, so its entropy cannot fall below ln(K / B).
    Under DDP the sums run over all processes, so B is the global batch.

    Shapes: teacher_output (B, K) -> (B, K), each row a distribution; B batch, K out_dim.
    """
    # float64 and a global shift: exp(logits / 0.02) spans ~1e+-43, beyond float32; the shift is a
    # constant factor that the first normalisation removes.
    logits = teacher_output.double() / teacher_temp
    shift = logits.max()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(shift, op=dist.ReduceOp.MAX)
    q = torch.exp(logits - shift).t()
    n_prototypes = q.shape[0]
    n_samples = _all_reduce(torch.tensor(float(q.shape[1]), device=q.device, dtype=q.dtype))
    q /= _all_reduce(q.sum())
    for _ in range(n_iterations):
        q /= _all_reduce(q.sum(dim=1, keepdim=True)).clamp_min(1e-300)
        q /= n_prototypes
        q /= q.sum(dim=0, keepdim=True)
        q /= n_samples
    q *= n_samples
    return q.t().to(teacher_output.dtype)
