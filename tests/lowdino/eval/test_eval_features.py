"""Feature extraction: eval mode, no gradients, order, batching, pooling, restored mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lowdino.augment import EvalTransform
from lowdino.backbones import create_backbone
from lowdino.devices import resolve_device, resolve_precision
from lowdino.errors import ConfigError, DataError, DeviceError
from lowdino.eval.features import extract_features


class Recorder(nn.Module):
    """Pools a conv map; remembers whether it ran in train mode and with gradients enabled."""

    def __init__(self, pooled: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.pooled = pooled
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        out = self.norm(self.conv(x))
        return out.mean(dim=(2, 3)) if self.pooled else out


def images(n: int = 10, size: int = 8) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(n), dtype=torch.uint8
    )


def scale(batch: torch.Tensor) -> torch.Tensor:
    return batch.float() / 255


def test_eval_mode_without_gradients_and_mode_restored():
    model = Recorder().train()
    features = extract_features(model, images(), scale, batch_size=4)
    assert features.shape == (10, 4)
    assert features.dtype == torch.float32
    assert features.device.type == "cpu"
    assert not features.requires_grad
    assert model.calls == [(False, False)] * 3  # 4 + 4 + 2 images
    assert model.training  # the trainer's kNN monitor calls this mid-training


def test_batch_size_does_not_change_features_or_order():
    model = Recorder()
    data = images(13)
    whole = extract_features(model, data, scale, batch_size=64)
    pieces = extract_features(model, data, scale, batch_size=3)
    torch.testing.assert_close(whole, pieces)
    one = extract_features(model, data[7:8], scale, batch_size=1)
    torch.testing.assert_close(whole[7:8], one)


def test_feature_maps_are_average_pooled():
    model = Recorder(pooled=False)
    pooled = Recorder()
    pooled.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        extract_features(model, images(), scale, batch_size=4),
        extract_features(pooled, images(), scale, batch_size=4),
    )


def test_with_a_registry_backbone_and_the_eval_transform():
    backbone = create_backbone("mobilevit_xxs")
    features = extract_features(backbone, images(6, 20), EvalTransform(32), batch_size=4)
    assert features.shape == (6, backbone.num_features)
    assert torch.isfinite(features).all()


def test_bad_inputs():
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        extract_features(Recorder(), torch.zeros(3, 8, 8, dtype=torch.uint8), scale, batch_size=2)
    with pytest.raises(DataError, match="empty"):
        extract_features(Recorder(), torch.zeros(0, 3, 8, 8, dtype=torch.uint8), scale, batch_size=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without a GPU")
def test_cuda_without_gpu_is_a_device_error():
    with pytest.raises(DeviceError, match="--device cpu or auto"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_evaluation_resolves_precision_as_training_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two resolvers used to disagree: fp16 on a CPU was an error in training but silently fp32 in
    # evaluation. One rule now: it is refused in both, before any work.
    scale = EvalTransform(8, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        extract_features(
            Recorder(), torch.zeros(2, 3, 8, 8, dtype=torch.uint8), scale, batch_size=2, precision="fp16"
        )
    # ... and "auto" on a GPU without bf16 is fp16 with loss scaling everywhere (evaluation said bf16).
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    auto = resolve_precision("auto", torch.device("cuda"))
    assert (auto.name, auto.dtype, auto.use_scaler) == ("fp16", torch.float16, True)
