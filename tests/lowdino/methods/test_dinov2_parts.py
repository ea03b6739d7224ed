"""Sinkhorn-Knopp teacher targets and the KoLeo regulariser (DINOv2 additions to DINO)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lowdino.config import PretrainConfig
from lowdino.config.loading import build_config
from lowdino.errors import ConfigError
from lowdino.methods import DINO, METHODS
from lowdino.methods.dino.head import DINOHead
from lowdino.methods.dino.koleo import KoLeoLoss
from lowdino.methods.dino.loss import DINOLoss, teacher_statistics
from lowdino.methods.dino.sinkhorn import sinkhorn_knopp
from lowdino.methods.multicrop import MultiCropWrapper


def _reference_sinkhorn(logits: np.ndarray, temp: float, iterations: int) -> np.ndarray:
    """Plain float64 transcription of the SwAV / DINOv2 algorithm, no shift."""
    q = np.exp(logits / temp).T
    k, b = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def test_sinkhorn_matches_reference_formula() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.rand(6, 5, generator=generator) * 2 - 1
    got = sinkhorn_knopp(logits, teacher_temp=0.1, n_iterations=3)
    expected = _reference_sinkhorn(logits.double().numpy(), 0.1, 3)
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-5)


def test_sinkhorn_rows_are_distributions_and_prototypes_used_equally() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(64, 8, generator=generator)
    targets = sinkhorn_knopp(logits, teacher_temp=0.5, n_iterations=20)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(64))
    torch.testing.assert_close(targets.mean(dim=0), torch.full((8,), 1 / 8), atol=1e-3, rtol=0)


def test_sinkhorn_spreads_a_batch_that_softmax_would_collapse_onto_one_prototype() -> None:
    # Every sample prefers prototype 0 a little, differently: a plain sharpened softmax picks 0 for all.
    k, b = 16, 64
    generator = torch.Generator().manual_seed(2)
    logits = 0.1 * torch.randn(b, k, generator=generator)
    logits[:, 0] += 1.0
    softmax_batch = teacher_statistics(torch.softmax(logits / 0.02, dim=-1))["teacher_batch_entropy"]
    balanced = teacher_statistics(sinkhorn_knopp(logits, teacher_temp=0.02))["teacher_batch_entropy"]
    assert softmax_batch < 0.1
    assert balanced > 0.9 * math.log(k)


def test_sinkhorn_survives_logits_that_overflow_float32_exponentials() -> None:
    logits = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.5]])
    targets = sinkhorn_knopp(logits, teacher_temp=0.005)  # exp(200) overflows float32
    assert torch.isfinite(targets).all()
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(2))


def test_dino_loss_with_sinkhorn_uses_balanced_targets_and_leaves_center_alone() -> None:
    generator = torch.Generator().manual_seed(3)
    student = torch.randn(3 * 4, 5, generator=generator)
    teacher = torch.randn(2 * 4, 5, generator=generator)
    loss_fn = DINOLoss(5, n_crops=3, student_temp=0.1, center_momentum=0.9, centering="sinkhorn_knopp")
    loss, _ = loss_fn(student, teacher, teacher_temp=0.07)

    targets = sinkhorn_knopp(teacher, teacher_temp=0.07).chunk(2)
    log_probs = torch.log_softmax(student / 0.1, dim=-1).chunk(3)
    pairs = [(i, v) for i in range(2) for v in range(3) if v != i]
    expected = sum((-targets[i] * log_probs[v]).sum(-1).mean() for i, v in pairs) / len(pairs)
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    assert torch.count_nonzero(loss_fn.center) == 0


def test_koleo_matches_hand_computed_nearest_neighbour_distances() -> None:
    # Unit vectors at 0, 90 and 100 degrees: nearest neighbours are 90 <-> 100, and 0 -> 90.
    angles = torch.tensor([0.0, 90.0, 100.0]) * math.pi / 180
    points = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.tensor([[3.0], [0.5], [2.0]])
    chord = lambda degrees: 2 * math.sin(math.radians(degrees) / 2)  # noqa: E731
    expected = -(math.log(chord(90)) + 2 * math.log(chord(10))) / 3
    assert KoLeoLoss()(points).item() == pytest.approx(expected, rel=1e-5)


def test_koleo_gradient_pushes_nearest_neighbours_apart() -> None:
    generator = torch.Generator().manual_seed(4)
    points = torch.randn(32, 8, generator=generator).requires_grad_()
    loss_fn = KoLeoLoss()

    def min_distance(x: torch.Tensor) -> float:
        x = nn.functional.normalize(x.detach(), dim=1)
        distances = torch.cdist(x, x) + 10 * torch.eye(len(x))
        return float(distances.min(dim=1).values.mean())

    before = min_distance(points)
    optimizer = torch.optim.SGD([points], lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        loss_fn(points).backward()
        optimizer.step()
    assert min_distance(points) > before


def test_koleo_rejects_a_single_sample_batch() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        KoLeoLoss()(torch.randn(1, 4))


class _Pool(nn.Module):
    num_features = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


def test_multicrop_wrapper_returns_backbone_features_in_crop_order() -> None:
    wrapper = MultiCropWrapper(
        _Pool(), DINOHead(3, 7, hidden_dim=8, bottleneck_dim=4, use_bn=False, norm_last_layer=True)
    )
    crops = [torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.randn(2, 3, 4, 4)]
    outputs, features = wrapper(crops, return_features=True)
    assert outputs.shape == (6, 7)
    assert features.shape == (6, 3)
    torch.testing.assert_close(features[4:], wrapper.backbone(crops[2]))
    torch.testing.assert_close(outputs, wrapper(crops))


def test_dino_adds_weighted_koleo_of_each_global_crop_to_its_loss() -> None:
    torch.manual_seed(5)
    crops = [torch.randn(4, 3, 8, 8) for _ in range(2)] + [torch.randn(4, 3, 4, 4)]
    config = PretrainConfig(out_dim=16, n_crops=3, hidden_dim=8, bottleneck_dim=8)
    plain = DINO.from_config(config, _Pool)
    regularised = DINO.from_config(config.model_copy(update={"koleo_weight": 0.1}), _Pool)
    regularised.load_state_dict(plain.state_dict())

    plain_loss, _ = plain.training_loss(crops, step=0, teacher_temp=0.04)
    loss, stats = regularised.training_loss(crops, step=0, teacher_temp=0.04)
    features = regularised.student.backbone(torch.cat(crops[:2])).detach()
    koleo = sum(KoLeoLoss()(half) for half in features.chunk(2))
    assert stats["dino_loss"] == pytest.approx(plain_loss.item(), rel=1e-5)
    assert stats["koleo_loss"] == pytest.approx(float(koleo), rel=1e-5)
    assert loss.item() == pytest.approx(plain_loss.item() + 0.1 * float(koleo), rel=1e-5)


def test_config_selects_centering_and_koleo_and_rejects_unknown_centering() -> None:
    config = PretrainConfig(centering="sinkhorn_knopp", koleo_weight=0.1, out_dim=32, hidden_dim=16)
    method = METHODS[config.method].from_config(config, _Pool)
    assert isinstance(method, DINO)
    assert method.loss.centering == "sinkhorn_knopp"
    assert method.koleo_weight == 0.1
    with pytest.raises(ConfigError, match="centering"):
        build_config(PretrainConfig, overrides={"centering": "softmax"})
