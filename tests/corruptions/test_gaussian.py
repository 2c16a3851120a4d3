from __future__ import annotations

import pytest
import torch

from corruptions import CORRUPTIONS, PluginError
from corruptions.gaussian import GaussianBlurNoise, gaussian_kernel


def _images(count: int = 200, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (count, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


@pytest.mark.parametrize("severity", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_gaussian_mask_size_equals_severity_fraction(severity: float) -> None:
    images = _images()
    result = GaussianBlurNoise().corrupt(images, severity, torch.Generator().manual_seed(1))
    assert result.mask.dtype == torch.bool
    assert int(result.mask.sum()) == round(severity * len(images))


def test_gaussian_untouched_images_are_bit_identical() -> None:
    images = _images()
    result = GaussianBlurNoise().corrupt(images, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(result.images[~result.mask], images[~result.mask])
    # every corrupted image changed
    changed = (result.images[result.mask] != images[result.mask]).flatten(1).any(1)
    assert bool(changed.all())


def test_gaussian_preserves_shape_dtype_and_does_not_modify_input() -> None:
    images = _images()
    before = images.clone()
    result = GaussianBlurNoise(blur_sigma=2.0, noise_std=0.5).corrupt(
        images, 1.0, torch.Generator().manual_seed(1)
    )
    assert result.images.shape == images.shape
    assert result.images.dtype == torch.uint8
    assert torch.equal(images, before)


def test_gaussian_is_deterministic_under_a_seed() -> None:
    images = _images()
    plugin = GaussianBlurNoise()
    first = plugin.corrupt(images, 0.5, torch.Generator().manual_seed(7))
    second = plugin.corrupt(images, 0.5, torch.Generator().manual_seed(7))
    other = plugin.corrupt(images, 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.mask, second.mask)
    assert not torch.equal(first.mask, other.mask)


def test_gaussian_blur_only_keeps_a_constant_image_and_smooths_an_edge() -> None:
    flat = torch.full((1, 28, 28), 100, dtype=torch.uint8)
    blurred = GaussianBlurNoise(blur_sigma=1.5, noise_std=0.0).corrupt(flat, 1.0, torch.Generator())
    assert torch.equal(blurred.images, flat)

    edge = torch.zeros(1, 28, 28, dtype=torch.uint8)
    edge[:, :, 14:] = 255
    smoothed = (
        GaussianBlurNoise(blur_sigma=1.0, noise_std=0.0)
        .corrupt(edge, 1.0, torch.Generator())
        .images
    )
    assert 0 < int(smoothed[0, 10, 13]) < 255


def test_gaussian_noise_has_the_requested_std() -> None:
    grey = torch.full((50, 28, 28), 128, dtype=torch.uint8)
    noisy = GaussianBlurNoise(blur_sigma=0.0, noise_std=0.1).corrupt(
        grey, 1.0, torch.Generator().manual_seed(0)
    )
    std = (noisy.images.float() / 255.0).std().item()
    assert std == pytest.approx(0.1, rel=0.05)


def test_gaussian_kernel_is_normalised() -> None:
    kernel = gaussian_kernel(1.0)
    assert kernel.sum().item() == pytest.approx(1.0)
    assert len(kernel) == 7


@pytest.mark.parametrize("severity", [-0.1, 1.5, float("nan"), "half", True])
def test_gaussian_rejects_bad_severity(severity: object) -> None:
    with pytest.raises(PluginError, match=r"severity must be"):
        GaussianBlurNoise().corrupt(_images(4), severity, torch.Generator())  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "value"), [("blur_sigma", -1.0), ("noise_std", "strong")])
def test_gaussian_rejects_bad_parameters(key: str, value: object) -> None:
    with pytest.raises(PluginError, match=rf"gaussian parameter {key} must be a number >= 0, got"):
        CORRUPTIONS.create("gaussian", {key: value})
