"""InceptionV3 weights in torch-fidelity's format, random: for tests and timings offline."""

from __future__ import annotations

from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3


class _RandomInception(FeatureExtractorInceptionV3):
    def load_state_dict(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        """Keep the random initialisation."""


def write_random_inception_weights(path: Path, seed: int = 0) -> Path:
    """A state dict in torch-fidelity's InceptionV3 format, with random weights."""
    empty = path.with_suffix(".empty")
    torch.save({}, empty)
    torch.manual_seed(seed)
    model = _RandomInception("inception-v3-compat", ["2048"], str(empty))
    torch.save(model.state_dict(), path)
    return path
