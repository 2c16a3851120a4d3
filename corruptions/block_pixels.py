"""The `block_pixels` corruption: AmbientGAN's block-pixels measurement (Bora et al., 2018)."""

from __future__ import annotations

import torch

from corruptions.base import CORRUPTIONS, SubsetCorruption, check_number


@CORRUPTIONS.register("block_pixels")
class BlockPixels(SubsetCorruption):
    """Zero each pixel of a severity-sized subset of images with probability `p`.

    Args:
        p: probability that a pixel of an affected image is set to 0 (black).
    """

    description = "each pixel of a severity-sized subset zeroed with probability p"

    def __init__(self, *, p: float = 0.5) -> None:
        self.p = check_number("block_pixels", "p", p, 0.0, 1.0)

    def transform(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        keep = torch.rand(batch.shape, generator=generator, device=batch.device) >= self.p
        return batch * keep
