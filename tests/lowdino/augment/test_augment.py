"""Batched multi-crop augmentation and the evaluation transform."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lowdino.augment import EvalTransform, MultiCropAugmentation, ViewAugmentation, blur_kernel_size
from lowdino.augment.ops import random_gaussian_blur
from lowdino.data import load_dataset

pytestmark = pytest.mark.usefixtures("torch_single_thread")

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NO_PHOTOMETRIC = {
    "flip_p": 0.0,
    "jitter_p": 0.0,
    "grayscale_p": 0.0,
    "blur_p": (0.0, 0.0, 0.0),
    "solarize_p": 0.0,
}


def _normalised(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255 - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]


@pytest.fixture(scope="module")
def cifar(cifar_folder: Path) -> torch.Tensor:
    return load_dataset("imagefolder", cifar_folder, "test").images[:64]


def test_multicrop_shapes_dtype_and_normalisation(cifar: torch.Tensor) -> None:
    augment = MultiCropAugmentation(32, 16, 4, mean=MEAN, std=STD)
    views = augment(cifar)
    assert [tuple(v.shape) for v in views] == [(64, 3, 32, 32)] * 2 + [(64, 3, 16, 16)] * 4
    assert all(v.dtype == torch.float32 for v in views)
    # Normalised: values span the ImageNet-normalised range of [0, 1] inputs, centred near 0.
    low = min((0 - m) / s for m, s in zip(MEAN, STD, strict=True))
    high = max((1 - m) / s for m, s in zip(MEAN, STD, strict=True))
    for view in views:
        assert view.min() >= low - 1e-4
        assert view.max() <= high + 1e-4
        assert view.mean().abs() < 0.6


def test_two_views_for_byol(cifar: torch.Tensor) -> None:
    views = MultiCropAugmentation(24, 12, 0)(cifar)
    assert [tuple(v.shape) for v in views] == [(64, 3, 24, 24)] * 2


def test_full_crop_without_photometric_ops_is_exact_normalisation(cifar: torch.Tensor) -> None:
    """Scale (1, 1) always falls back to the whole image, and roi_align reproduces the pixels."""
    augment = MultiCropAugmentation(
        32, 32, 2, global_scale=(1.0, 1.0), local_scale=(1.0, 1.0), **NO_PHOTOMETRIC
    )
    expected = _normalised(cifar)
    for view in augment(cifar):
        torch.testing.assert_close(view, expected, atol=1e-5, rtol=0)


def test_local_crops_come_from_their_own_image() -> None:
    """Locals are one batched call of B * n_local crops; chunk i must be in the input's order."""
    colours = torch.randint(0, 256, (8, 3), dtype=torch.uint8)
    images = colours[:, :, None, None].expand(8, 3, 20, 20).contiguous()
    augment = MultiCropAugmentation(16, 8, 3, **NO_PHOTOMETRIC)
    expected = _normalised(colours[:, :, None, None])
    for view in augment(images):
        torch.testing.assert_close(view, expected.expand_as(view), atol=1e-5, rtol=0)


def test_every_image_gets_its_own_parameters() -> None:
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    views = MultiCropAugmentation(32, 16, 2)(image.expand(16, 3, 32, 32).contiguous())
    for view in views:
        flat = view.flatten(1)
        distances = torch.cdist(flat, flat).fill_diagonal_(float("inf"))
        assert distances.min() > 1e-3  # no two copies of the same image were augmented alike


def test_deterministic_under_manual_seed(cifar: torch.Tensor) -> None:
    augment = MultiCropAugmentation(32, 16, 2)
    torch.manual_seed(7)
    first = augment(cifar)
    torch.manual_seed(7)
    second = augment(cifar)
    torch.manual_seed(8)
    third = augment(cifar)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not any(torch.equal(a, c) for a, c in zip(first, third, strict=True))


def test_blur_and_solarize_rates_follow_the_recipe() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (4000, 3, 8, 8), dtype=torch.uint8)
    augment = MultiCropAugmentation(8, 8, 2, jitter_p=0.0)  # jitter is irrelevant here and the slowest op
    augment(images)
    rates = {
        view: {op: applied.float().mean().item() for op, applied in module.last_applied.items()}
        for view, module in (
            ("global1", augment.global1),
            ("global2", augment.global2),
            ("local", augment.local),
        )
    }
    assert len(augment.local.last_applied["blur"]) == 8000  # both locals in one call
    tolerance = 0.03  # > 6 standard deviations of a rate measured on 4000 draws
    assert rates["global1"]["blur"] == 1.0
    assert rates["global2"]["blur"] == pytest.approx(0.1, abs=tolerance)
    assert rates["local"]["blur"] == pytest.approx(0.5, abs=tolerance)
    assert rates["global2"]["solarize"] == pytest.approx(0.2, abs=tolerance)
    assert rates["global1"]["solarize"] == rates["local"]["solarize"] == 0.0
    assert rates["global1"]["flip"] == pytest.approx(0.5, abs=tolerance)
    assert rates["local"]["grayscale"] == pytest.approx(0.2, abs=tolerance)


def test_solarize_inverts_bright_pixels_of_exactly_the_flagged_images() -> None:
    torch.manual_seed(1)
    images = torch.randint(0, 256, (200, 3, 8, 8), dtype=torch.uint8)
    view = ViewAugmentation(
        8, (1.0, 1.0), blur_p=0.0, solarize_p=0.5, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0
    )
    out = view(images.float() / 255) * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    flagged = view.last_applied["solarize"]
    x = images.float() / 255
    torch.testing.assert_close(out[flagged], torch.where(x >= 0.5, 1 - x, x)[flagged], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[~flagged], x[~flagged], atol=1e-5, rtol=0)
    assert 0 < int(flagged.sum()) < 200


def test_blur_smooths_exactly_the_flagged_images() -> None:
    torch.manual_seed(2)
    images = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8)
    view = ViewAugmentation(32, (1.0, 1.0), blur_p=0.5, flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    x = images.float() / 255
    out = view(x) * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]
    flagged = view.last_applied["blur"]

    def roughness(t: torch.Tensor) -> torch.Tensor:
        return (t[..., 1:] - t[..., :-1]).abs().mean(dim=(1, 2, 3))

    torch.testing.assert_close(out[~flagged], x[~flagged], atol=1e-5, rtol=0)
    assert (roughness(out[flagged]) <= roughness(x[flagged]) + 1e-6).all()
    assert roughness(out[flagged]).mean() < 0.8 * roughness(x[flagged]).mean()


def test_blur_writes_only_the_chosen_images_in_place() -> None:
    impulses = torch.zeros(64, 3, 32, 32)
    impulses[..., 16, 16] = 1.0
    out, mask = random_gaussian_blur(impulses, p=0.5)
    assert out is impulses
    assert 0 < int(mask.sum()) < 64
    assert bool((out[~mask, :, 16, 16] == 1.0).all())  # untouched
    assert bool((out[mask, :, 16, 16] < 1.0).all())
    torch.testing.assert_close(out.sum(dim=(2, 3)), torch.ones(64, 3))  # each kernel normalised


def test_blur_kernel_spans_three_sigma_clipped_to_the_image() -> None:
    assert [blur_kernel_size(side, 2.0) for side in (8, 16, 32, 96, 224)] == [7, 13, 13, 13, 13]
    assert [blur_kernel_size(32, sigma) for sigma in (0.1, 0.5, 1.0)] == [3, 5, 7]


@pytest.mark.parametrize("side", [16, 32, 224])
def test_blur_of_an_impulse_is_the_full_gaussian_at_every_resolution(side: int) -> None:
    # sigma 2 at 16 / 32 px was a 3x3 kernel: nothing reached 2 px or more from the impulse.
    sigma = 2.0
    impulse = torch.zeros(1, 3, side, side)
    centre = side // 2
    impulse[..., centre, centre] = 1.0
    out, _ = random_gaussian_blur(impulse, p=1.0, sigma=(sigma, sigma))
    offsets = torch.arange(-6, 7, dtype=torch.float64)
    g = torch.exp(-(offsets**2) / (2 * sigma**2))
    g /= g.sum()
    expected = (g[:, None] * g[None, :]).float()
    window = out[0, 0, centre - 6 : centre + 7, centre - 6 : centre + 7]
    torch.testing.assert_close(window, expected, atol=1e-6, rtol=1e-4)
    assert out[0, 0, centre, centre + 5] > 1e-3


def test_eval_transform_resizes_with_antialiasing_and_centre_crops() -> None:
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 255
    images = checker.to(torch.uint8).expand(2, 3, 64, 64).contiguous()
    out = EvalTransform(16, mean=(0, 0, 0), std=(1, 1, 1))(images)
    assert out.shape == (2, 3, 16, 16)
    # Averaging a 1-pixel checkerboard gives grey; a non-antialiased resize would alias to 0 or 1.
    torch.testing.assert_close(out, torch.full_like(out, 0.5), atol=0.02, rtol=0)

    wide = torch.zeros((1, 3, 10, 20), dtype=torch.uint8)
    wide[..., 5:15] = 255  # bright centre square, dark margins
    out = EvalTransform(10, mean=(0, 0, 0), std=(1, 1, 1))(wide)
    assert out.shape == (1, 3, 10, 10)
    assert out.min() == 1.0
    # Shrinking by 2: the centre survives; only the border pixels blend with the margin.
    out = EvalTransform(10, mean=(0, 0, 0), std=(1, 1, 1))(
        wide.repeat_interleave(2, -1).repeat_interleave(2, -2)
    )
    assert out.shape == (1, 3, 10, 10)
    assert out[..., 1:-1].min() == 1.0
    assert out.mean() > 0.9

    same = torch.randint(0, 256, (3, 3, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(EvalTransform(28, MEAN, STD)(same), _normalised(same))


# --- crops cut by a streaming loader ---------------------------------------------------------------


def test_precut_crops_keep_view_order_and_only_get_the_photometric_chain() -> None:
    from lowdino.data.types import CropBatch

    augment = MultiCropAugmentation(16, 8, 3, mean=MEAN, std=STD, **NO_PHOTOMETRIC)
    assert [(s.size, s.count) for s in augment.specs()] == [(16, 2), (8, 3)]
    globals_ = torch.randint(0, 256, (5, 2, 3, 16, 16), dtype=torch.uint8)
    locals_ = torch.randint(0, 256, (5, 3, 3, 8, 8), dtype=torch.uint8)
    views = augment(CropBatch([globals_, locals_]))
    assert len(views) == 5
    assert torch.allclose(views[0], _normalised(globals_[:, 0]), atol=1e-5)
    assert torch.allclose(views[1], _normalised(globals_[:, 1]), atol=1e-5)
    for k in range(3):  # local view k holds local crop k of every image, as the whole-image path
        assert torch.allclose(views[2 + k], _normalised(locals_[:, k]), atol=1e-5)


def test_precut_crops_get_the_random_photometric_chain() -> None:
    from lowdino.data.types import CropBatch

    augment = MultiCropAugmentation(16, 8, 2, mean=MEAN, std=STD)
    crops = CropBatch(
        [
            torch.randint(0, 256, (64, 2, 3, 16, 16), dtype=torch.uint8),
            torch.zeros(64, 2, 3, 8, 8, dtype=torch.uint8),
        ]
    )
    views = augment(crops)
    flipped = augment.global1.last_applied["flip"]
    assert 0 < int(flipped.sum()) < 64  # per-image parameters, not one draw for the batch
    assert augment.global1.last_applied["blur"].all()  # DINO: global view 1 always blurred
    assert not torch.allclose(views[0], _normalised(crops.groups[0][:, 0]), atol=1e-3)


def test_workers_quantised_views_match_the_float_chain_to_a_grey_level() -> None:
    """What loader workers hand over (uint8, `augment_crops(quantize=True)`), normalised by the
    training process, is the training-process result rounded to 1/255: the same random draws."""
    from lowdino.data.types import CropBatch

    augment = MultiCropAugmentation(32, 16, 3, mean=MEAN, std=STD)
    crops = CropBatch(
        [
            torch.randint(0, 256, (40, 2, 3, 32, 32), dtype=torch.uint8),
            torch.randint(0, 256, (40, 3, 3, 16, 16), dtype=torch.uint8),
        ]
    )
    torch.manual_seed(3)
    reference = augment(crops)
    torch.manual_seed(3)
    quantised = augment.augment_crops(crops, quantize=True)
    assert [view.dtype for view in quantised] == [torch.uint8] * 5
    views = augment(CropBatch([], quantised))
    grey_level = 0.5 / 255 / min(STD) + 1e-5
    for ours, theirs in zip(views, reference, strict=True):
        assert ours.dtype == torch.float32
        assert ours.shape == theirs.shape
        assert float((ours - theirs).abs().max()) <= grey_level
    assert not torch.allclose(views[0], _normalised(crops.groups[0][:, 0]), atol=1e-2)  # augmented


def test_distillation_view_from_the_workers_matches_the_training_process_view() -> None:
    from lowdino.augment.singleview import SingleViewAugmentation
    from lowdino.data.types import CropBatch

    augment = SingleViewAugmentation(32, (0.3, 1.0), MEAN, STD)
    crops = CropBatch([torch.randint(0, 256, (24, 1, 3, 32, 32), dtype=torch.uint8)])
    torch.manual_seed(5)
    (reference,) = augment(crops)
    torch.manual_seed(5)
    quantised = augment.augment_crops(crops, quantize=True)
    assert quantised[0].dtype == torch.uint8
    (view,) = augment(CropBatch([], quantised))
    assert float((view - reference).abs().max()) <= 0.5 / 255 / min(STD) + 1e-5


# --- colour jitter -------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["brightness", "contrast", "saturation", "hue"])
def test_jitter_steps_match_torchvision_per_image(step: str) -> None:
    import torchvision.transforms.v2.functional as F

    from lowdino.augment import jitter

    ours = {
        "brightness": jitter.adjust_brightness_,
        "contrast": jitter.adjust_contrast_,
        "saturation": jitter.adjust_saturation_,
        "hue": jitter.adjust_hue_,
    }[step]
    reference = getattr(F, f"adjust_{step}")
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 20, 24, generator=generator)
    if step == "hue":
        factors = torch.rand(6, generator=generator) - 0.5
    else:
        factors = torch.rand(6, generator=generator) * 1.2 + 0.4
    expected = torch.stack([reference(x[i], float(factors[i])) for i in range(6)])
    assert torch.allclose(ours(x.clone(), factors), expected, atol=1e-4)


def test_jitter_leaves_unselected_images_alone_and_draws_per_image_factors() -> None:
    from lowdino.augment.jitter import ColorJitter

    jitter = ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.5)
    x = torch.rand(64, 3, 8, 8)
    out = jitter(x.clone())
    changed = (out - x).abs().amax(dim=(1, 2, 3)) > 1e-4
    factors = jitter.last_factors["brightness"]
    assert 0 < int(changed.sum()) < 64
    assert torch.equal(changed, factors != 1.0)
    assert len(set(factors[changed].tolist())) == int(changed.sum())  # one factor per image
    assert sorted(jitter.last_order) == ["brightness", "contrast", "hue", "saturation"]
    assert float(factors[changed].min()) >= 0.6
    assert float(factors[changed].max()) <= 1.4
