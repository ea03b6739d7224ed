"""SyncBatchNorm conversion keeps every activation of every backbone (timm fuses some into the norm)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lowdino.backbones import backbone_names, create_backbone, get_spec
from lowdino.config import PretrainConfig
from lowdino.methods.byol import BYOL
from lowdino.methods.dino.method import DINO
from lowdino.methods.distill import Distillation
from lowdino.train.syncbn import sync_batchnorm, sync_batchnorm_children

pytestmark = pytest.mark.usefixtures("torch_single_thread")

ACTIVATION_MODULES = ("torch.nn.modules.activation", "timm.layers.activations")


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__.startswith(ACTIVATION_MODULES)


def _run_counting_activations(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    calls = 0

    def count(*_: object) -> None:
        nonlocal calls
        calls += 1

    handles = [m.register_forward_hook(count) for m in model.modules() if _is_activation(m)]
    try:
        with torch.no_grad():
            return model(x), calls
    finally:
        for handle in handles:
            handle.remove()


def _input(name: str) -> torch.Tensor:
    spec = get_spec(name)
    size = math.ceil(max(32, spec.min_input_size) / spec.input_multiple) * spec.input_multiple
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", backbone_names())
def test_converted_backbone_computes_the_same_function(name: str) -> None:
    torch.manual_seed(0)
    original = create_backbone(name).eval()
    converted = sync_batchnorm(copy.deepcopy(original)).eval()
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
        for m in converted.modules()
    )
    x = _input(name)
    expected, expected_calls = _run_counting_activations(original, x)
    out, calls = _run_counting_activations(converted, x)
    assert expected_calls > 0
    assert calls == expected_calls
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def _plain_batchnorms(module: nn.Module) -> list[str]:
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
    ]


@pytest.mark.parametrize("method_name", ["dino", "byol", "distill"])
def test_every_network_of_a_method_is_converted_and_keeps_its_output(method_name: str) -> None:
    torch.manual_seed(0)
    method: nn.Module
    if method_name == "dino":
        config = PretrainConfig(out_dim=64, n_crops=2, hidden_dim=64, bottleneck_dim=32)
        method = DINO.from_config(config, lambda: create_backbone("mobilevit_xxs"))
    elif method_name == "byol":
        config = PretrainConfig(method="byol", n_crops=2, byol_projection_dim=32, byol_hidden_dim=64)
        method = BYOL.from_config(config, lambda: create_backbone("mobilevit_xxs"))
    else:
        # A randomly initialised teacher: built directly, since from_config insists on teacher weights.
        method = Distillation(
            create_backbone("mobilenetv2_035"),
            create_backbone("resnet5m"),
            loss="kl",
            temperature=3.0,
            label_loss_weight=1.0,
            num_classes=10,
            teacher_image_size=None,
        )
    method.eval()
    x = _input("mobilevit_xxs")
    networks = {"student": lambda m, x: m.student([x]) if method_name != "distill" else m.student(x)[1]}
    if method_name == "byol":
        networks["predictor"] = lambda m, x: m.predictor(m.student([x]))
    before = {key: fn(method, x) for key, fn in networks.items()}
    student = method.student

    sync_batchnorm_children(method)

    assert _plain_batchnorms(method) == []
    assert method.student is student  # references the method (and DDP) hold stay valid
    for key, fn in networks.items():
        torch.testing.assert_close(fn(method, x), before[key], atol=1e-5, rtol=1e-5)
