"""The `GAN` base class that every GAN plugin subclasses, and its registry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from corruptions.base import Corruption
from corruptions.registry import Registry


class GAN(ABC):
    """A generative adversarial network that the harness trains step by step.

    The harness owns the loop (batches, epochs, checkpoints, divergence); a GAN
    owns its networks, optimisers and losses. Images cross this interface as
    float tensors `(B, 1, 28, 28)` scaled to [-1, 1].
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # a GAN that shows its discriminator measured fakes sets this; the harness
    # then calls `attach_measurement` with the cell's corruption and severity
    needs_measurement: ClassVar[bool] = False
    # the GAN this one equals on clean data, so both share the clean cell
    clean_equivalent: ClassVar[str | None] = None

    def attach_measurement(self, corruption: Corruption, severity: float) -> None:  # noqa: B027
        """Receive the corruption process to simulate; only GANs with `needs_measurement`."""

    @abstractmethod
    def setup(self, device: torch.device) -> None:
        """Build networks and optimisers on `device`; weights come from torch's global RNG."""

    @abstractmethod
    def train_step(self, real: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Update discriminator and generator once on a batch of real images.

        Args:
            real: float tensor `(B, 1, 28, 28)` in [-1, 1], on the GAN's device.
            generator: RNG on the same device for latents and any other noise.

        Returns:
            The step's losses by name, as Python floats (may be non-finite).
        """

    @abstractmethod
    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Draw `count` images, float tensor `(count, 1, 28, 28)` in [-1, 1], no gradient."""

    @abstractmethod
    def generator_network(self) -> nn.Module:
        """The generator network, whose weights the harness saves."""

    def params(self) -> dict[str, object]:
        """The GAN's parameters as given to `__init__`, for cell specs."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


GANS: Registry[GAN] = Registry("gan", GAN, entry_point_group="gan_robustness.gans")
