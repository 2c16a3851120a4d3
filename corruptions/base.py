"""The `Corruption` base class that every corruption plugin subclasses."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from corruptions.registry import PluginError, Registry


@dataclass(frozen=True)
class Corrupted:
    """A corrupted training set.

    Attributes:
        images: uint8 tensor `(M, 28, 28)` with values 0..255.
        mask: bool tensor `(M,)`, true where the image was corrupted or added.
    """

    images: torch.Tensor
    mask: torch.Tensor


def check_severity(severity: float) -> float:
    """Return `severity` as a float, or raise `PluginError` when it is outside [0, 1]."""
    if isinstance(severity, bool) or not isinstance(severity, int | float):
        raise PluginError(f"severity must be a number in [0, 1], got {severity!r}")
    if not 0.0 <= severity <= 1.0 or math.isnan(severity):
        raise PluginError(f"severity must be in [0, 1], got {severity!r}")
    return float(severity)


class Corruption(ABC):
    """A way of corrupting part of a training set.

    `severity` always means the fraction of the training set that is corrupted,
    so thresholds are comparable across plugins; a plugin's own keyword-only
    `__init__` parameters set how strongly each affected image is corrupted.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @abstractmethod
    def corrupt(
        self, images: torch.Tensor, severity: float, generator: torch.Generator
    ) -> Corrupted:
        """Corrupt a `severity` fraction of a training set.

        Args:
            images: uint8 tensor `(N, 28, 28)`, values 0..255; not modified.
            severity: fraction of the result that is corrupted, in [0, 1].
            generator: CPU generator that makes the result deterministic.

        Returns:
            The corrupted set and the mask of corrupted images.

        Raises:
            PluginError: if `severity` is outside [0, 1].
        """

    def params(self) -> dict[str, object]:
        """The plugin's parameters as given to `__init__`, for manifests and specs."""
        return dict(vars(self))


class SubsetCorruption(Corruption):
    """A corruption that transforms a random severity-sized subset of the images.

    Subclasses implement `transform`; images outside the subset are returned
    bit-identical.
    """

    @abstractmethod
    def transform(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Corrupt every image of a float batch `(K, 1, 28, 28)` in [0, 1]; same shape and range."""

    def corrupt(
        self, images: torch.Tensor, severity: float, generator: torch.Generator
    ) -> Corrupted:
        severity = check_severity(severity)
        count = round(severity * len(images))
        chosen = torch.randperm(len(images), generator=generator)[:count]
        mask = torch.zeros(len(images), dtype=torch.bool)
        mask[chosen] = True

        result = images.clone()
        if count:
            batch = images[mask].unsqueeze(1).float() / 255.0
            batch = self.transform(batch, generator).clamp(0.0, 1.0)
            result[mask] = (batch.squeeze(1) * 255.0).round().to(torch.uint8)
        return Corrupted(images=result, mask=mask)


CORRUPTIONS: Registry[Corruption] = Registry("corruption", Corruption)
