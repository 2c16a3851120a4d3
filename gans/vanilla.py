"""The `vanilla` GAN: the classic non-saturating GAN of Goodfellow et al. (2014)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from corruptions.registry import PluginError, did_you_mean
from gans.base import GAN, GANS
from gans.networks import NETWORKS


@GANS.register("vanilla")
class VanillaGAN(GAN):
    """Non-saturating GAN trained with Adam on both networks.

    Args:
        network: architecture pair; "mlp" is the reference study's fully connected pair.
        latent_dim: size of the generator's standard normal input.
        lr: Adam learning rate of both networks.
        beta1: Adam's first-moment decay (0.5 as in DCGAN, Radford et al. 2016).
    """

    description = "non-saturating GAN; the reference study's baseline"

    def __init__(
        self,
        *,
        network: str = "mlp",
        latent_dim: int = 100,
        lr: float = 2e-4,
        beta1: float = 0.5,
    ) -> None:
        if network not in NETWORKS:
            known = sorted(NETWORKS)
            raise PluginError(
                f"gan parameter network={network!r} is unknown{did_you_mean(str(network), known)};"
                f" accepted: {', '.join(known)}"
            )
        if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
            raise PluginError(
                f"gan parameter latent_dim must be an integer >= 1, got {latent_dim!r}"
            )
        for key, value in (("lr", lr), ("beta1", beta1)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PluginError(f"gan parameter {key} must be a number >= 0, got {value!r}")
        self.network = network
        self.latent_dim = latent_dim
        self.lr = float(lr)
        self.beta1 = float(beta1)

    def setup(self, device: torch.device) -> None:
        generator_cls, discriminator_cls = NETWORKS[self.network]
        self._device = device
        self._g = generator_cls(self.latent_dim).to(device)
        self._d = discriminator_cls().to(device)
        betas = (self.beta1, 0.999)
        self._g_opt = torch.optim.Adam(self._g.parameters(), lr=self.lr, betas=betas)
        self._d_opt = torch.optim.Adam(self._d.parameters(), lr=self.lr, betas=betas)

    def discriminator_input(self, fake: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """What the discriminator sees of generated images; corruption-aware GANs override it."""
        return fake

    def train_step(self, real: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        batch = len(real)
        z = torch.randn(batch, self.latent_dim, generator=generator, device=self._device)
        fake = self._g(z)

        # discriminator: real -> 1, fake -> 0
        real_logits = self._d(real)
        fake_logits = self._d(self.discriminator_input(fake.detach(), generator))
        d_loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        self._d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self._d_opt.step()

        # generator, non-saturating: maximise log D(G(z))
        fake_logits = self._d(self.discriminator_input(fake, generator))
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        self._g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self._g_opt.step()

        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item(),
        }

    @torch.no_grad()
    def sample(self, count: int, generator: torch.Generator) -> torch.Tensor:
        self._g.eval()
        z = torch.randn(count, self.latent_dim, generator=generator, device=self._device)
        images = self._g(z)
        self._g.train()
        return images

    def generator_network(self) -> nn.Module:
        return self._g
