"""Device and precision resolution (lowdino/devices.py)."""

from __future__ import annotations

import pytest
import torch

from lowdino.devices import resolve_device, resolve_precision
from lowdino.errors import ConfigError, DeviceError


def test_device_and_precision_resolution(monkeypatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_precision("auto", torch.device("cpu")).dtype is None
    assert resolve_precision("bf16", torch.device("cpu")).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        resolve_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(
        DeviceError, match="CUDA was requested but torch sees no GPU; use --device cpu or auto"
    ):
        resolve_device("cuda")
