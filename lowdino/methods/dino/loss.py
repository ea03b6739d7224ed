"""DINO self-distillation loss with teacher centering and sharpening."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from lowdino.config.pretrain import Centering
from lowdino.methods.dino.sinkhorn import sinkhorn_knopp


class DINOLoss(nn.Module):
    """Cross-entropy between sharpened, centred teacher outputs and student outputs of other crops.

    With teacher outputs t_i (i over the 2 global crops) and student outputs s_v (v over all n crops):

        P_t^i = softmax((t_i - c) / tau_t)        P_s^v = softmax(s_v / tau_s)
        L = 1 / |pairs| * sum_{i, v != i} mean_batch( -sum_k P_t^i[k] log P_s^v[k] )

    and afterwards the center is updated c <- m c + (1 - m) mean_batch(t) over all processes.
    Centering keeps one prototype from dominating; a low tau_t sharpens and keeps the output from
    becoming uniform. A uniform collapse gives L = ln(K); a one-hot collapse gives entropy(P_t) = 0.
    With centering="sinkhorn_knopp" (DINOv2) P_t comes from `sinkhorn_knopp(t, tau_t)` instead, which
    balances prototype usage within the batch; the center is then neither used nor updated.

    Shapes: student_output (n * B, K), teacher_output (2 * B, K), crops stacked crop-major as produced
    by MultiCropWrapper; B batch, K out_dim, n crops.

    Computed in fp32 with autocast off (as DINO does), whatever precision the networks ran in.
    """

    center: torch.Tensor

    def __init__(
        self,
        out_dim: int,
        *,
        n_crops: int,
        student_temp: float,
        center_momentum: float,
        centering: Centering,
    ) -> None:
        super().__init__()
        if n_crops < 2:
            raise ValueError(f"DINO needs at least the 2 global crops, got n_crops={n_crops}")
        self.n_crops = n_crops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.centering = centering
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(
        self, student_output: torch.Tensor, teacher_output: torch.Tensor, *, teacher_temp: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.autocast(device_type=student_output.device.type, enabled=False):
            return self._forward(student_output, teacher_output, teacher_temp=teacher_temp)

    def _forward(
        self, student_output: torch.Tensor, teacher_output: torch.Tensor, *, teacher_temp: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        student_output = student_output.float()
        teacher_output = teacher_output.float().detach()
        student_log_probs = F.log_softmax(student_output / self.student_temp, dim=-1).chunk(self.n_crops)
        if self.centering == "sinkhorn_knopp":
            teacher_probs = sinkhorn_knopp(teacher_output, teacher_temp=teacher_temp)
        else:
            teacher_probs = F.softmax((teacher_output - self.center) / teacher_temp, dim=-1)
        teacher_chunks = teacher_probs.chunk(2)

        total = student_output.new_zeros(())
        n_pairs = 0
        for teacher_index, target in enumerate(teacher_chunks):
            for crop_index, log_probs in enumerate(student_log_probs):
                if crop_index == teacher_index:
                    continue  # the same view on both sides carries no learning signal
                total = total + torch.sum(-target * log_probs, dim=-1).mean()
                n_pairs += 1
        loss = total / n_pairs

        stats = teacher_statistics(teacher_probs)
        if self.centering == "center":
            self.update_center(teacher_output)
        return loss, stats

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        batch_sum = teacher_output.sum(dim=0, keepdim=True)
        count = torch.tensor(float(teacher_output.shape[0]), device=teacher_output.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_sum)
            dist.all_reduce(count)
        batch_center = batch_sum / count
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1.0 - self.center_momentum)


@torch.no_grad()
def teacher_statistics(teacher_probs: torch.Tensor) -> dict[str, float]:
    """Collapse indicators of a (N, K) batch of teacher distributions.

    teacher_entropy: mean per-sample entropy (-> ln K when the output is uniform);
    teacher_batch_entropy: entropy of the batch-mean distribution (-> 0 when every sample picks the
    same prototype, i.e. a constant teacher output).
    """
    eps = 1e-12
    per_sample = -(teacher_probs * (teacher_probs + eps).log()).sum(dim=-1).mean()
    mean_probs = teacher_probs.mean(dim=0)
    batch = -(mean_probs * (mean_probs + eps).log()).sum()
    return {"teacher_entropy": float(per_sample), "teacher_batch_entropy": float(batch)}
