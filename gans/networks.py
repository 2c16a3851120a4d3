"""Generator and discriminator networks for 28x28 single-channel images."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

IMAGE_PIXELS = 28 * 28


class MLPGenerator(nn.Module):
    """The reference study's fully connected generator: latent -> 256 -> 512 -> 1024 -> 784."""

    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        widths = [latent_dim, 256, 512, 1024]
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
        layers += [nn.Linear(widths[-1], IMAGE_PIXELS), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # (B, latent_dim) -> (B, 1, 28, 28)
        return self.net(z).view(-1, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """The reference study's fully connected discriminator: 784 -> 1024 -> 512 -> 256 -> 1 logit."""

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        widths = [IMAGE_PIXELS, 1024, 512, 256]
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        layers += [nn.Linear(widths[-1], 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # (B, 1, 28, 28) -> (B,) logits
        return self.net(images.flatten(1)).squeeze(1)


class DCGANGenerator(nn.Module):
    """A small DCGAN generator for 28x28 (Radford et al. 2016): latent -> 7x7 -> 14x14 -> 28x28."""

    def __init__(self, latent_dim: int = 100, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(2 * width * 7 * 7),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # 14x14
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),  # 28x28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # (B, latent_dim) -> (B, 2w, 7, 7) -> (B, 1, 28, 28)
        return self.upsample(self.project(z).view(-1, 2 * self.width, 7, 7))


class DCGANDiscriminator(nn.Module):
    """A small DCGAN discriminator for 28x28: 28x28 -> 14x14 -> 7x7 -> 1 logit."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1),  # 14x14
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),  # 7x7
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # (B, 1, 28, 28) -> (B,) logits
        return self.net(images).squeeze(1)


NETWORKS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan": (DCGANGenerator, DCGANDiscriminator),
}
