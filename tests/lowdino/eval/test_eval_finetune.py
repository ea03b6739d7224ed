"""Fine-tuning: the uint8 augmentation and end-to-end training of a copy of the backbone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowdino.errors import DataError
from lowdino.eval.finetune import finetune_top1, random_crop_flip


class TinyBackbone(nn.Module):
    num_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x))).mean(dim=(2, 3))


def to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1.0


def colour_images(n: int, generator: torch.Generator):
    """Class k has a bright channel k: learnable in a few steps, and unchanged by crops and flips."""
    labels = torch.randint(0, 3, (n,), generator=generator)
    images = torch.randint(0, 60, (n, 3, 8, 8), generator=generator, dtype=torch.uint8)
    images[torch.arange(n), labels] += 150
    return images, labels


def test_random_crop_flip_is_a_shifted_window_of_the_padded_image():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 8), generator=generator, dtype=torch.uint8)
    out = random_crop_flip(images, torch.Generator().manual_seed(1), padding=2)
    assert out.shape == images.shape
    assert out.dtype == torch.uint8
    padded = F.pad(images, (2, 2, 2, 2))
    for i in range(16):
        windows = [
            padded[i, :, y : y + 8, x : x + 8].flip(-1) if flip else padded[i, :, y : y + 8, x : x + 8]
            for y in range(5)
            for x in range(5)
            for flip in (False, True)
        ]
        assert any(torch.equal(out[i], window) for window in windows)
    assert not torch.equal(out, images)  # 16 images all drawn (0 shift, no flip) is vanishingly unlikely


def test_finetune_learns_a_simple_task_and_leaves_the_backbone_alone():
    generator = torch.Generator().manual_seed(0)
    train, train_labels = colour_images(96, generator)
    test, test_labels = colour_images(48, generator)
    torch.manual_seed(0)
    backbone = TinyBackbone()
    before = {name: value.clone() for name, value in backbone.state_dict().items()}
    top1 = finetune_top1(
        backbone,
        train,
        train_labels,
        test,
        test_labels,
        transform=to_float,
        num_classes=3,
        epochs=15,
        lr=3e-2,
        batch_size=32,
    )
    assert top1 >= 90.0
    assert all(torch.equal(before[name], value) for name, value in backbone.state_dict().items())


def test_finetune_is_seeded():
    generator = torch.Generator().manual_seed(1)
    train, train_labels = colour_images(40, generator)
    backbone = TinyBackbone()
    runs = [
        finetune_top1(
            backbone,
            train,
            train_labels,
            train,
            train_labels,
            transform=to_float,
            num_classes=3,
            epochs=1,
            lr=1e-2,
            batch_size=16,
            seed=3,
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]


def test_mismatched_images_and_labels():
    with pytest.raises(DataError, match="one label per training image"):
        finetune_top1(
            TinyBackbone(),
            torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(1, 3, 8, 8, dtype=torch.uint8),
            torch.zeros(1, dtype=torch.long),
            transform=to_float,
            num_classes=2,
        )
