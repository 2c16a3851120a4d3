"""The `gaussian` corruption: Gaussian blur followed by additive Gaussian noise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from corruptions.base import CORRUPTIONS, SubsetCorruption, check_number


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian kernel covering +-3 sigma."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


@CORRUPTIONS.register("gaussian")
class GaussianBlurNoise(SubsetCorruption):
    """Blur a severity-sized subset with a Gaussian kernel, then add per-pixel noise.

    Args:
        blur_sigma: standard deviation of the blur kernel in pixels; 0 disables blur.
        noise_std: standard deviation of the additive noise, in units of the
            full pixel range (1.0 = 255 grey levels); 0 disables noise.
    """

    description = "Gaussian blur plus Gaussian pixel noise on a severity-sized subset"

    def __init__(self, *, blur_sigma: float = 1.0, noise_std: float = 0.2) -> None:
        self.blur_sigma = check_number("gaussian", "blur_sigma", blur_sigma, 0.0, math.inf)
        self.noise_std = check_number("gaussian", "noise_std", noise_std, 0.0, math.inf)

    def transform(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.blur_sigma > 0:
            kernel = gaussian_kernel(self.blur_sigma).to(batch)
            pad = len(kernel) // 2
            # separable blur: rows then columns, repeating the border pixels
            batch = F.conv2d(
                F.pad(batch, (pad, pad, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1)
            )
            batch = F.conv2d(
                F.pad(batch, (0, 0, pad, pad), mode="replicate"), kernel.view(1, 1, -1, 1)
            )
        if self.noise_std > 0:
            noise = torch.randn(batch.shape, generator=generator, device=batch.device)
            batch = batch + self.noise_std * noise
        return batch.clamp(0.0, 1.0)
