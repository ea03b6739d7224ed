"""DINO / BYOL building blocks pinned to reference formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lowdino.config import PretrainConfig
from lowdino.methods import BYOL, DINO, METHODS
from lowdino.methods.byol import byol_loss
from lowdino.methods.dino.head import DINOHead
from lowdino.methods.dino.loss import DINOLoss, teacher_statistics
from lowdino.methods.ema import ema_update
from lowdino.methods.multicrop import MultiCropWrapper, group_by_resolution
from lowdino.train.schedules import cosine_schedule, linear_warmup_constant

# The modules take every setting explicitly; the values a test does not vary are the config's defaults.
DEFAULTS = PretrainConfig()


def _dino(**overrides: object) -> DINO:
    config = PretrainConfig.model_validate(
        {"out_dim": 16, "n_crops": 4, "hidden_dim": 16, "bottleneck_dim": 8, **overrides}
    )
    return DINO.from_config(config, TinyBackbone)


class TinyBackbone(nn.Module):
    """Resolution-agnostic stand-in with BatchNorm, so tests do not depend on the registry."""

    num_features = 6

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, self.num_features, 3, padding=1)
        self.norm = nn.BatchNorm2d(self.num_features)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return self.norm(self.conv(x)).mean(dim=(2, 3))


def _softmax(values: list[float], temp: float) -> list[float]:
    exps = [math.exp(v / temp) for v in values]
    return [e / sum(exps) for e in exps]


def test_dino_loss_matches_hand_computed_case() -> None:
    # B = 1, K = 3, 3 crops (2 global + 1 local); pairs: (t0, s1), (t0, s2), (t1, s0), (t1, s2).
    student = [[1.0, 0.0, -1.0], [0.5, 0.2, 0.1], [-0.3, 0.8, 0.0]]
    teacher = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.5]]
    t_s, t_t = 0.5, 0.25
    expected = 0.0
    pairs = 0
    for i, t in enumerate(teacher):
        q = _softmax(t, t_t)
        for v, s in enumerate(student):
            if v == i:
                continue
            p = _softmax(s, t_s)
            expected += -sum(qk * math.log(pk) for qk, pk in zip(q, p, strict=True))
            pairs += 1
    expected /= pairs

    loss_fn = DINOLoss(3, n_crops=3, student_temp=t_s, center_momentum=0.9, centering="center")
    loss, _ = loss_fn(torch.tensor(student), torch.tensor(teacher), teacher_temp=t_t)
    assert pairs == 4
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_dino_center_is_ema_of_teacher_batch_mean_and_shifts_targets() -> None:
    loss_fn = DINOLoss(2, n_crops=2, student_temp=0.1, center_momentum=0.9, centering="center")
    teacher = torch.tensor([[1.0, 3.0], [3.0, 5.0]])
    loss_fn(torch.zeros(2, 2), teacher, teacher_temp=0.04)
    assert torch.allclose(loss_fn.center, torch.tensor([[0.2, 0.4]]))
    loss_fn(torch.zeros(2, 2), teacher, teacher_temp=0.04)
    assert torch.allclose(loss_fn.center, torch.tensor([[0.9 * 0.2 + 0.2, 0.9 * 0.4 + 0.4]]))


def test_uniform_teacher_gives_ln_k_and_constant_teacher_zero_batch_entropy() -> None:
    k = 64
    loss_fn = DINOLoss(
        k,
        n_crops=2,
        student_temp=DEFAULTS.student_temp,
        center_momentum=DEFAULTS.center_momentum,
        centering=DEFAULTS.centering,
    )
    loss, stats = loss_fn(torch.zeros(4, k), torch.zeros(4, k), teacher_temp=0.04)
    assert loss.item() == pytest.approx(math.log(k), rel=1e-5)
    assert stats["teacher_entropy"] == pytest.approx(math.log(k), rel=1e-4)

    one_hot = torch.zeros(8, k)
    one_hot[:, 3] = 1.0
    constant = teacher_statistics(one_hot)
    assert constant["teacher_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert constant["teacher_batch_entropy"] == pytest.approx(0.0, abs=1e-6)


def test_lower_teacher_temperature_sharpens_targets() -> None:
    logits = torch.tensor([[1.0, 0.5, 0.0, -0.5]])
    sharp = teacher_statistics(torch.softmax(logits / 0.02, dim=-1))["teacher_entropy"]
    soft = teacher_statistics(torch.softmax(logits / 0.5, dim=-1))["teacher_entropy"]
    assert sharp < soft


def test_cosine_schedule_warmup_endpoints_and_monotone_decay() -> None:
    values = cosine_schedule(1.0, 0.1, total_steps=20, warmup_steps=5, warmup_start=0.0)
    assert len(values) == 20
    assert values[0] == pytest.approx(0.0)
    assert values[5] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    assert np.all(np.diff(values[:6]) > 0)
    assert np.all(np.diff(values[5:]) <= 1e-12)
    u = (12 - 5) / (15 - 1)
    assert values[12] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * u)))


def test_cosine_schedule_for_teacher_momentum_rises_to_one() -> None:
    values = cosine_schedule(0.996, 1.0, total_steps=100)
    assert values[0] == pytest.approx(0.996)
    assert values[-1] == pytest.approx(1.0)
    assert np.all(np.diff(values) >= 0)


def test_teacher_temperature_warmup_then_constant() -> None:
    values = linear_warmup_constant(0.04, 0.07, total_steps=10, warmup_steps=4)
    assert values.tolist()[:4] == pytest.approx([0.04, 0.05, 0.06, 0.07])
    assert values.tolist()[4:] == pytest.approx([0.07] * 6)


def test_ema_update_formula() -> None:
    target, source = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, source, 0.9)
    for old, new, src in zip(before, target.parameters(), source.parameters(), strict=True):
        assert torch.allclose(new, 0.9 * old + 0.1 * src)
    ema_update(target, source, 0.0)
    for new, src in zip(target.parameters(), source.parameters(), strict=True):
        assert torch.equal(new, src)
    with pytest.raises(ValueError, match="momentum"):
        ema_update(target, source, 1.5)


@pytest.mark.parametrize("norm_last_layer", [True, False])
def test_head_shapes_normalised_bottleneck_and_weight_norm(norm_last_layer: bool) -> None:
    head = DINOHead(6, 32, hidden_dim=16, bottleneck_dim=8, use_bn=False, norm_last_layer=norm_last_layer)
    out = head(torch.randn(5, 6))
    assert out.shape == (5, 32)
    gain = head.last_layer.parametrizations.weight.original0
    assert gain.requires_grad is (not norm_last_layer)
    # Weight-normalised rows have norm g = 1 at init, and the bottleneck is unit-norm: |logit| <= 1.
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(32), atol=1e-5)
    assert out.abs().max() <= 1.0 + 1e-5


def test_multicrop_wrapper_runs_one_backbone_call_per_resolution_in_crop_order() -> None:
    backbone = TinyBackbone()
    head = nn.Identity()
    wrapper = MultiCropWrapper(backbone, head)
    crops = [torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)] + [torch.randn(2, 3, 8, 8)] * 3
    out = wrapper(crops)
    assert backbone.calls == [(4, 3, 16, 16), (6, 3, 8, 8)]
    assert out.shape == (10, 6)
    backbone.eval()
    alone = backbone(crops[2])
    assert torch.allclose(wrapper(crops)[4:6], alone, atol=1e-6)
    assert [len(g) for g in group_by_resolution(crops)] == [2, 3]


def _crops(batch: int = 4) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(batch, 3, 16, 16) for _ in range(2)] + [torch.randn(batch, 3, 8, 8) for _ in range(2)]


def test_dino_teacher_starts_equal_gets_no_gradients_and_follows_by_ema() -> None:
    method = _dino()
    for s, t in zip(method.student.parameters(), method.teacher.parameters(), strict=True):
        assert torch.equal(s, t)
    loss, stats = method.training_loss(_crops(), step=0, teacher_temp=0.04)
    loss.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    assert all(p.grad is not None for p in method.student.parameters() if p.requires_grad)
    assert set(stats) >= {"teacher_entropy", "teacher_batch_entropy"}

    optimizer = torch.optim.SGD([p for g in method.parameter_groups() for p in g["params"]], lr=0.5)
    optimizer.step()
    teacher_before = [p.clone() for p in method.teacher.parameters()]
    method.update_target(0.5)
    for old, new, s in zip(
        teacher_before, method.teacher.parameters(), method.student.parameters(), strict=True
    ):
        assert torch.allclose(new, 0.5 * old + 0.5 * s)


def test_dino_freezes_last_layer_only_during_first_epochs() -> None:
    method = _dino(norm_last_layer=False)
    loss, _ = method.training_loss(_crops(), step=0, teacher_temp=0.04)
    loss.backward()
    method.cancel_last_layer_gradients(epoch=0.5, freeze_epochs=1)
    assert all(p.grad is None for p in method.student.head.last_layer.parameters())
    assert method.student.head.mlp[0].weight.grad is not None
    loss, _ = method.training_loss(_crops(), step=1, teacher_temp=0.04)
    loss.backward()
    method.cancel_last_layer_gradients(epoch=1.0, freeze_epochs=1)
    assert all(p.grad is not None for p in method.student.head.last_layer.parameters())


def test_parameter_groups_exclude_biases_and_norms_from_weight_decay() -> None:
    method = _dino()
    groups = {g["name"]: g for g in method.parameter_groups()}
    assert groups["decayed"]["apply_weight_decay"] is True
    assert all(p.ndim > 1 for p in groups["decayed"]["params"])
    assert all(p.ndim <= 1 for p in groups["not_decayed"]["params"])
    n_trainable = sum(1 for p in method.student.parameters() if p.requires_grad)
    assert len(groups["decayed"]["params"]) + len(groups["not_decayed"]["params"]) == n_trainable


def test_state_dict_has_no_wrapper_prefixes_after_wrapping() -> None:
    method = _dino()
    keys_before = set(method.state_dict())
    method.wrap_student(lambda module: nn.DataParallel(module))
    method.wrap_backbone(lambda module: nn.DataParallel(module))
    assert set(method.state_dict()) == keys_before
    assert "loss.center" in keys_before
    loss, _ = method.training_loss(_crops(), step=0, teacher_temp=0.04)
    assert torch.isfinite(loss)


def test_byol_loss_is_two_minus_two_cosine() -> None:
    p = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    z = torch.tensor([[4.0, 3.0], [-2.0, 0.0]])
    cos = torch.tensor([24.0 / 25.0, -1.0])
    assert byol_loss(p, z).item() == pytest.approx((2 - 2 * cos).mean().item())
    assert byol_loss(p, 7.0 * p).item() == pytest.approx(0.0, abs=1e-6)


def test_byol_symmetric_loss_and_target_excludes_predictor() -> None:
    method = BYOL(TinyBackbone(), projection_dim=8, hidden_dim=16, n_crops=2)
    crops = _crops()[:2]
    loss, _ = method.training_loss(crops, step=0, teacher_temp=0.04)
    with torch.no_grad():
        targets = method.teacher(crops).chunk(2)
        preds = method.predictor(method.student(crops)).chunk(2)
    expected = (byol_loss(preds[0], targets[1]) + byol_loss(preds[1], targets[0])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not any(name.startswith("predictor") for name, _ in method.teacher.named_parameters())
    loss.backward()
    assert method.predictor.net[0].weight.grad is not None


def test_from_config_reads_config() -> None:
    config = PretrainConfig(
        out_dim=32, hidden_dim=16, bottleneck_dim=8, n_crops=3, global_crop_size=16, local_crop_size=8
    )
    dino = METHODS[config.method].from_config(config, TinyBackbone)
    assert isinstance(dino, DINO)
    assert dino.loss.center.shape == (1, 32)
    assert dino.loss.n_crops == 3
    byol = METHODS["byol"].from_config(config.model_copy(update={"method": "byol"}), TinyBackbone)
    assert isinstance(byol, BYOL)
    assert byol.predictor.net[0].in_features == config.byol_projection_dim
