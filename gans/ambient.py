"""The `ambient` GAN: AmbientGAN (Bora et al., 2018, https://openreview.net/forum?id=Hy7fDog0b).

The discriminator never sees a clean fake: generated images pass through the
same corruption process as the training data, so the generator is pushed
towards clean images whose corrupted versions match the corrupted data.
"""

from __future__ import annotations

import torch

from corruptions.base import Corruption
from corruptions.registry import PluginError
from gans.base import GANS
from gans.vanilla import VanillaGAN


@GANS.register("ambient")
class AmbientGAN(VanillaGAN):
    """The vanilla GAN's networks and losses, with the corruption's `measure` on every fake.

    Takes the same parameters as `vanilla`. On clean data (severity 0) it is
    the vanilla GAN, and the harness computes that cell once for both.
    """

    description = "vanilla GAN whose discriminator sees fakes through the corruption (AmbientGAN)"
    needs_measurement = True
    clean_equivalent = "vanilla"

    def attach_measurement(self, corruption: Corruption, severity: float) -> None:
        if not corruption.can_measure:
            raise PluginError(
                f"gan 'ambient' needs a corruption that can simulate itself on a batch; "
                f"corruption {corruption.name!r} cannot"
            )
        self._corruption = corruption
        self._severity = severity

    def discriminator_input(self, fake: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        corruption = getattr(self, "_corruption", None)
        if corruption is None:
            raise PluginError("gan 'ambient' was trained without a corruption attached")
        return corruption.measure(fake, self._severity, generator)
