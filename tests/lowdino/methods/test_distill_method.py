"""Distillation losses pinned to hand-computed values, and the Distillation method's wiring."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lowdino.methods.distill import (
    Distillation,
    cosine_distillation_loss,
    kl_distillation_loss,
    mse_distillation_loss,
)


class Pool(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.num_features = width
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.seen_sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_sizes.append(x.shape[-1])
        return self.conv(x).mean(dim=(2, 3))


def test_kl_loss_matches_hand_computation() -> None:
    s, t, temp = [0.0, 1.0], [1.0, 0.0], 2.0
    ps = [math.exp(v / temp) for v in s]
    pt = [math.exp(v / temp) for v in t]
    ps = [v / sum(ps) for v in ps]
    pt = [v / sum(pt) for v in pt]
    expected = temp**2 * sum(q * math.log(q / p) for q, p in zip(pt, ps, strict=True))
    loss = kl_distillation_loss(torch.tensor([s]), torch.tensor([t]), temp)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert kl_distillation_loss(torch.tensor([t]), torch.tensor([t]), temp).item() == pytest.approx(
        0.0, abs=1e-7
    )


def test_cosine_and_mse_losses() -> None:
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert cosine_distillation_loss(s, t).item() == pytest.approx((1.0 + 0.0) / 2)
    assert mse_distillation_loss(s, t).item() == pytest.approx((1 + 1 + 0 + 1) / 4)


@pytest.mark.parametrize("loss", ["kl", "cosine", "mse"])
def test_student_learns_teacher_is_frozen_and_resized(loss: str) -> None:
    torch.manual_seed(0)
    method = Distillation(
        Pool(4),
        Pool(6),
        loss=loss,
        temperature=3.0,
        label_loss_weight=1.0,
        num_classes=3,
        teacher_image_size=14,
    )
    teacher_before = [p.clone() for p in method.teacher.parameters()]
    images, labels = torch.randn(8, 3, 16, 16), torch.randint(0, 3, (8,))
    optimizer = torch.optim.SGD([p for g in method.parameter_groups() for p in g["params"]], lr=0.1)
    first = None
    for step in range(30):
        optimizer.zero_grad()
        value, metrics = method.training_loss([images], step=step, labels=labels)
        value.backward()
        optimizer.step()
        first = first if first is not None else value.item()
    assert value.item() < first
    assert {"distill_loss", "label_loss", "train_top1"} <= set(metrics)
    assert method.teacher.seen_sizes[-1] == 14
    for old, new in zip(teacher_before, method.teacher.parameters(), strict=True):
        assert torch.equal(old, new)
    assert method.eval_backbone() is method.student.backbone


def test_label_loss_needs_classes() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        Distillation(
            Pool(4),
            Pool(6),
            loss="kl",
            temperature=3.0,
            label_loss_weight=0.5,
            num_classes=None,
            teacher_image_size=None,
        )
