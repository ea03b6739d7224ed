"""METHODS: every method builds from its config, declares its needs and trains; no name falls through."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from lowdino.backbones import create_backbone
from lowdino.config import DistillConfig, PretrainConfig
from lowdino.config.pretrain import MethodName
from lowdino.errors import ConfigError
from lowdino.methods import BYOL, DINO, METHODS, Distillation, TrainingNeeds, UnknownMethodError, get_method
from lowdino.methods.dino import DINOHead, DINOLoss
from lowdino.train.kinds import method_key, training_needs

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SMALL = {"global_crop_size": 16, "local_crop_size": 8, "hidden_dim": 16, "bottleneck_dim": 8, "out_dim": 32}


class Pool(nn.Module):
    """A resolution-agnostic backbone with BatchNorm: conv -> BN -> global average pool."""

    def __init__(self, width: int = 6) -> None:
        super().__init__()
        self.num_features = width
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x)).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def teacher_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "mobilevit_xxs.pth"
    torch.save(create_backbone("mobilevit_xxs").state_dict(), path)
    return path


# A small config of each method; a method added to METHODS needs one here (the KeyError says so).
CONFIGS: dict[str, Callable[[Path], PretrainConfig | DistillConfig]] = {
    "dino": lambda _: PretrainConfig.model_validate({"method": "dino", "n_crops": 3, "koleo_weight": 0.1, **SMALL}),
    "byol": lambda _: PretrainConfig.model_validate({"method": "byol", "n_crops": 3, **SMALL}),
    "distill": lambda weights: DistillConfig(
        student="resnet5m", teacher="mobilevit_xxs", teacher_weights=str(weights), crop_size=16,
        label_loss_weight=0.5,
    ),
}  # fmt: skip


def _crops(config: PretrainConfig | DistillConfig, batch: int) -> list[torch.Tensor]:
    if isinstance(config, DistillConfig):
        return [torch.randn(batch, 3, config.crop_size, config.crop_size)]
    sizes = [config.global_crop_size] * 2 + [config.local_crop_size] * config.n_local_crops
    return [torch.randn(batch, 3, side, side) for side in sizes]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_builds_from_its_config_and_trains_at_its_smallest_batch(
    name: str, teacher_weights: Path
) -> None:
    config = CONFIGS[name](teacher_weights)
    assert method_key(config) == name  # the trainer reaches this entry for this config
    needs = training_needs(config)
    assert needs == METHODS[name].training_needs(config)
    assert isinstance(needs, TrainingNeeds)
    assert needs.min_batch >= 1
    torch.manual_seed(0)
    method = METHODS[name].from_config(config, Pool, num_classes=10)
    assert isinstance(method, METHODS[name])
    method.train()
    batch = max(needs.min_batch, 2)
    loss, metrics = method.training_loss(
        _crops(config, batch), step=0, teacher_temp=0.04, labels=torch.randint(0, 10, (batch,))
    )
    assert torch.isfinite(loss)
    assert all(isinstance(value, float) for value in metrics.values())
    loss.backward()
    trained = [param for group in method.parameter_groups() for param in group["params"]]
    assert trained
    assert any(param.grad is not None and param.grad.abs().sum() > 0 for param in trained)
    assert isinstance(method.eval_backbone(), nn.Module)


def test_the_registry_names_exactly_the_methods_the_configs_offer() -> None:
    assert set(METHODS) == {*typing.get_args(MethodName), "distill"}


def test_an_unknown_method_is_an_error_not_a_fallback() -> None:
    with pytest.raises(UnknownMethodError, match=r"unknown method 'simclr'; use one of byol, dino, distill"):
        get_method("simclr")
    assert issubclass(UnknownMethodError, ConfigError)  # the CLI prints it as one line and exits 2
    assert get_method("byol") is BYOL


def test_the_config_decides_the_head_s_last_layer_gain() -> None:
    # norm_last_layer defaulted to True in the modules but False in the config; only the config decides.
    for norm_last_layer in (True, False):
        config = PretrainConfig.model_validate({**SMALL, "norm_last_layer": norm_last_layer})
        method = DINO.from_config(config, Pool)
        head = method.student.head
        assert isinstance(head, DINOHead)
        assert head.last_layer.parametrizations.weight.original0.requires_grad is (not norm_last_layer)
    assert PretrainConfig().norm_last_layer is False


@pytest.mark.parametrize("module", [DINO, DINOHead, DINOLoss, BYOL, Distillation])
def test_module_settings_have_no_defaults_of_their_own(module: type) -> None:
    """Every keyword-only setting is passed in (from the config model), so no second default can drift."""
    keyword_only = [
        parameter
        for parameter in inspect.signature(module.__init__).parameters.values()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name != "n_layers"
    ]
    assert keyword_only
    assert [p.name for p in keyword_only if p.default is not inspect.Parameter.empty] == []
