"""The `Corruption` base class that every corruption plugin subclasses, and its registry."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from corruptions.registry import PluginError, Registry


@dataclass(frozen=True)
class Corrupted:
    """A corrupted training set.

    Attributes:
        images: uint8 tensor `(M, 28, 28)` with values 0..255.
        mask: bool tensor `(M,)`, true where the image was corrupted or added.
        contaminant_indices: int64 tensor with, for each true entry of `mask`
            in order, the index of the contaminant image put there; None for
            corruptions that transform images in place.
    """

    images: torch.Tensor
    mask: torch.Tensor
    contaminant_indices: torch.Tensor | None = None


def check_severity(severity: float) -> float:
    """Return `severity` as a float, or raise `PluginError` when it is outside [0, 1]."""
    if isinstance(severity, bool) or not isinstance(severity, int | float):
        raise PluginError(f"severity must be a number in [0, 1], got {severity!r}")
    if not 0.0 <= severity <= 1.0 or math.isnan(severity):
        raise PluginError(f"severity must be in [0, 1], got {severity!r}")
    return float(severity)


def check_number(plugin: str, key: str, value: object, low: float, high: float) -> float:
    """A plugin parameter as a float; `PluginError` when it is not a number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        bounds = f">= {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}]"
        raise PluginError(f"{plugin} parameter {key} must be a number {bounds}, got {value!r}")
    return float(value)


class Corruption(ABC):
    """A way of corrupting part of a training set.

    `severity` always means the fraction of the training set that is corrupted,
    so thresholds are comparable across plugins; a plugin's own keyword-only
    `__init__` parameters set how strongly each affected image is corrupted.

    A plugin that can apply its process on the fly to generated batches sets
    `can_measure = True` and implements `measure`; the `ambient` GAN needs that.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    can_measure: ClassVar[bool] = False
    # set on a shorthand: the plugin it abbreviates, which `params()` must fit, so
    # that a cell is named and hashed the same whichever spelling a matrix uses
    canonical: ClassVar[str | None] = None

    def prepare(self, data_dir: Path | None, cache_dir: Path) -> None:  # noqa: B027
        """Load whatever outside data the plugin needs; the harness calls it before `corrupt`.

        Args:
            data_dir: the user's `--data-dir`, or None.
            cache_dir: a folder for downloads and decoded arrays.
        """

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

    def measure(
        self, batch: torch.Tensor, severity: float, generator: torch.Generator
    ) -> torch.Tensor:
        """Apply the corruption process to a batch on the fly, as AmbientGAN's measurement.

        Each image is corrupted with probability `severity` (the coin flip is
        part of the process), and the result is differentiable with respect to
        `batch` wherever the process is.

        Args:
            batch: float tensor `(B, 1, 28, 28)` in [-1, 1], on any device.
            severity: probability that an image is corrupted, in [0, 1].
            generator: RNG on the batch's device.

        Returns:
            A float tensor of the same shape, range and device.

        Raises:
            PluginError: if the plugin cannot simulate its process.
        """
        raise PluginError(f"corruption {self.name!r} cannot simulate its process on a batch")

    def params(self) -> dict[str, object]:
        """The plugin's parameters as given to `__init__`, for manifests and specs."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def manifest(self) -> dict[str, object]:
        """Extra facts for a cell's dataset manifest, such as a checksum of outside data."""
        return {}


class SubsetCorruption(Corruption):
    """A corruption that transforms a random severity-sized subset of the images.

    Subclasses implement `transform`; images outside the subset are returned
    bit-identical, and `measure` comes for free.
    """

    can_measure = True

    @abstractmethod
    def transform(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Corrupt every image of a float batch `(K, 1, 28, 28)` in [0, 1]; same shape and range.

        Must be differentiable with respect to `batch` where the process is, and
        draw all randomness from `generator` (on the batch's device).
        """

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

    def measure(
        self, batch: torch.Tensor, severity: float, generator: torch.Generator
    ) -> torch.Tensor:
        severity = check_severity(severity)
        hit = torch.rand(len(batch), generator=generator, device=batch.device) < severity
        corrupted = self.transform((batch + 1.0) / 2.0, generator) * 2.0 - 1.0
        return torch.where(hit.view(-1, 1, 1, 1), corrupted, batch)


CORRUPTIONS: Registry[Corruption] = Registry(
    "corruption", Corruption, entry_point_group="gan_robustness.corruptions"
)
