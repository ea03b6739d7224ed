"""DINO's head, loss and KoLeo stay fp32 under bf16 autocast, so the loss matches fp32 training.

Stated tolerance: 1e-5 relative, i.e. fp32 rounding (bf16 rounding of the logits, x50 at teacher
temperature 0.02, moved this loss by 1.1e-4 relative and KoLeo by 8e-3).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from lowdino.methods.dino.head import DINOHead
from lowdino.methods.dino.koleo import KoLeoLoss
from lowdino.methods.dino.loss import DINOLoss

pytestmark = pytest.mark.usefixtures("torch_single_thread")

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


def _head_and_loss(head: DINOHead, loss: DINOLoss, student_features, teacher_features) -> torch.Tensor:
    student_out, teacher_out = head(student_features), head(teacher_features)
    value, _ = loss(student_out, teacher_out, teacher_temp=0.02)
    return value


def test_dino_head_and_loss_under_bf16_autocast_match_fp32() -> None:
    torch.manual_seed(0)
    head = DINOHead(64, 4096, hidden_dim=256, bottleneck_dim=64, use_bn=False, norm_last_layer=True)
    student_features, teacher_features = torch.randn(4 * 32, 64), torch.randn(2 * 32, 64)
    reference = _head_and_loss(
        head,
        DINOLoss(4096, n_crops=4, student_temp=0.1, center_momentum=0.9, centering="center"),
        student_features,
        teacher_features,
    )
    with torch.autocast(**BF16):
        logits = head(student_features)
        value = _head_and_loss(
            head,
            DINOLoss(4096, n_crops=4, student_temp=0.1, center_momentum=0.9, centering="center"),
            student_features,
            teacher_features,
        )
    assert logits.dtype == torch.float32
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=0)


def test_koleo_under_bf16_autocast_finds_the_same_nearest_neighbour() -> None:
    # Sample 0's nearest neighbour is sample 2 (angle 0.010 rad) not sample 1 (0.011 rad); in bf16
    # both cosines round to 1.0 and the argmax picks sample 1.
    e = torch.eye(8)
    features = torch.stack([e[0], e[0] + 0.011 * e[1], e[0] + 0.010 * e[2], e[3], e[4], e[5], e[6], e[7]])
    reference = KoLeoLoss()(features)
    with torch.autocast(**BF16):
        value = KoLeoLoss()(features)
    x = F.normalize(features, dim=-1)
    assert float((x[0] - x[2]).norm()) < float((x[0] - x[1]).norm())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, reference, rtol=1e-5, atol=0)
