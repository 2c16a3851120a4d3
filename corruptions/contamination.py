"""The `contamination` corruption: another dataset's images mixed into the training set.

`emnist` is its shorthand with EMNIST letters as the contaminant, the
reference study's setting (60,000 MNIST + 10,000 EMNIST is severity 0.143).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from corruptions.base import CORRUPTIONS, Corrupted, Corruption, check_severity
from corruptions.registry import PluginError
from corruptions.sources import EMNIST_SPLITS, load_emnist, load_fashion_mnist, load_path

MODES = ("add", "replace")


@CORRUPTIONS.register("contamination")
class Contamination(Corruption):
    """Mix contaminant images in so that they make up `severity` of the training set.

    Args:
        source: "emnist", "fashion_mnist", or a path to an `.npz` holding an
            `images` array or to a folder of IDX files.
        split: the EMNIST split (ignored by other sources).
        mode: "add" keeps all N images and adds round(N * s / (1 - s))
            contaminants; "replace" keeps N, replacing round(N * s) of them.
        exclude_digits: drop EMNIST's digit classes so the contaminant is letters only.
    """

    description = "images of another dataset (EMNIST letters, Fashion-MNIST, ...) mixed in"
    can_measure = True

    def __init__(
        self,
        *,
        source: str = "emnist",
        split: str = "bymerge",
        mode: str = "add",
        exclude_digits: bool = True,
    ) -> None:
        if not isinstance(source, str) or not source:
            raise PluginError(
                f"{self.name} parameter source must be 'emnist', 'fashion_mnist' or a path, "
                f"got {source!r}"
            )
        if split not in EMNIST_SPLITS:
            raise PluginError(
                f"{self.name} parameter split must be one of {', '.join(EMNIST_SPLITS)}, "
                f"got {split!r}"
            )
        if mode not in MODES:
            raise PluginError(
                f"{self.name} parameter mode must be 'add' or 'replace', got {mode!r}"
            )
        if not isinstance(exclude_digits, bool):
            raise PluginError(
                f"{self.name} parameter exclude_digits must be true or false, "
                f"got {exclude_digits!r}"
            )
        self.source = source
        self.split = split
        self.mode = mode
        self.exclude_digits = exclude_digits
        self._pool: torch.Tensor | None = None
        self._pool_device: torch.Tensor | None = None  # the pool on the device `measure` runs on
        self._pool_sha256: str | None = None

    def prepare(self, data_dir: Path | None, cache_dir: Path) -> None:
        if self.source == "emnist":
            images = load_emnist(self.split, self.exclude_digits, data_dir, cache_dir)
        elif self.source == "fashion_mnist":
            images = load_fashion_mnist(data_dir, cache_dir)
        else:
            images = load_path(self.source, cache_dir)
        self._pool = torch.from_numpy(np.ascontiguousarray(images))
        self._pool_device = self._pool_sha256 = None

    def params(self) -> dict[str, object]:
        # split and exclude_digits mean something for EMNIST only; leaving them out
        # elsewhere gives equal computations equal cell ids
        params = super().params()
        if self.source != "emnist":
            del params["split"], params["exclude_digits"]
        return params

    def manifest(self) -> dict[str, object]:
        if self._pool_sha256 is None:
            self._pool_sha256 = hashlib.sha256(self.pool.numpy().tobytes()).hexdigest()
        return {
            "contaminant_pool_size": len(self.pool),
            "contaminant_pool_sha256": self._pool_sha256,
        }

    @property
    def pool(self) -> torch.Tensor:
        """The contaminant images, uint8 `(M, 28, 28)`; loaded by `prepare`."""
        if self._pool is None:
            raise PluginError(
                f"corruption {self.name!r} was used before prepare() loaded its source"
            )
        return self._pool

    def contaminant_count(self, size: int, severity: float) -> int:
        """How many contaminant images a training set of `size` MNIST images gets."""
        if self.mode == "replace":
            return round(size * severity)
        if severity >= 1.0:
            raise PluginError(
                f"{self.name} mode 'add' needs severity < 1, got {severity!r}; use mode 'replace'"
            )
        return round(size * severity / (1.0 - severity))

    def corrupt(
        self, images: torch.Tensor, severity: float, generator: torch.Generator
    ) -> Corrupted:
        severity = check_severity(severity)
        count = self.contaminant_count(len(images), severity)
        pool = self.pool
        # without replacement while the pool is large enough
        if count <= len(pool):
            picked = torch.randperm(len(pool), generator=generator)[:count]
        else:
            picked = torch.randint(len(pool), (count,), generator=generator)

        if self.mode == "add":
            result = torch.cat([images, pool[picked]])
            mask = torch.zeros(len(result), dtype=torch.bool)
            mask[len(images) :] = True
        else:
            replaced = torch.randperm(len(images), generator=generator)[:count].sort().values
            result = images.clone()
            result[replaced] = pool[picked]
            mask = torch.zeros(len(images), dtype=torch.bool)
            mask[replaced] = True
        return Corrupted(images=result, mask=mask, contaminant_indices=picked)

    def measure(
        self, batch: torch.Tensor, severity: float, generator: torch.Generator
    ) -> torch.Tensor:
        severity = check_severity(severity)
        pool = self.pool
        if self._pool_device is None or self._pool_device.device != batch.device:
            self._pool_device = pool.to(batch.device)
        swap = torch.rand(len(batch), generator=generator, device=batch.device) < severity
        picked = torch.randint(len(pool), (len(batch),), generator=generator, device=batch.device)
        contaminants = self._pool_device[picked].unsqueeze(1).to(batch.dtype) / 127.5 - 1.0
        return torch.where(swap.view(-1, 1, 1, 1), contaminants, batch)


@CORRUPTIONS.register("emnist")
class EmnistContamination(Contamination):
    """`contamination` with EMNIST as the source: letters only by default.

    Args:
        split: the EMNIST split, "bymerge" by default.
        mode: "add" or "replace", as for `contamination`.
        exclude_digits: drop EMNIST's digit classes (default true).
    """

    description = "contamination with EMNIST letters (shorthand for contamination, source emnist)"
    canonical = "contamination"

    def __init__(
        self, *, split: str = "bymerge", mode: str = "add", exclude_digits: bool = True
    ) -> None:
        super().__init__(source="emnist", split=split, mode=mode, exclude_digits=exclude_digits)
