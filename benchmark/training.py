"""The training loop shared by every GAN: batches sliced from one in-memory uint8 tensor."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmark.matrix import TrainingConfig
from gans import GAN

logger = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    """What happened in training: per-step history, epochs completed, and divergence."""

    history: list[tuple[int, int, str, float]] = field(default_factory=list)
    epochs_done: int = 0
    diverged: str | None = None  # the reason, when training stopped early


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 `(B, 28, 28)` -> float `(B, 1, 28, 28)` in [-1, 1]."""
    return images.unsqueeze(1).float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float `(B, 1, 28, 28)` in [-1, 1] -> uint8 `(B, 1, 28, 28)` on the CPU."""
    return ((images.detach().cpu() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def train_gan(
    gan: GAN,
    images: torch.Tensor,
    config: TrainingConfig,
    device: torch.device,
    generator: torch.Generator,
    on_epoch_end: Callable[[int], None] | None = None,
) -> TrainOutcome:
    """Train `gan` for `config.epochs` epochs over `images`.

    Args:
        gan: a GAN whose `setup` has run.
        images: uint8 tensor `(N, 28, 28)`, the (possibly corrupted) training set.
        config: epochs and batch size.
        device: where batches go.
        generator: RNG on `device` for the GAN's noise; shuffling uses a CPU
            generator seeded from it, so a cell is deterministic.
        on_epoch_end: called with the 1-based epoch number after each epoch.

    Returns:
        The history of every step's losses; `diverged` is set, and training
        stopped, at the first non-finite loss.
    """
    outcome = TrainOutcome()
    data = images.to(device)
    shuffle = torch.Generator().manual_seed(
        int(torch.randint(2**62, (1,), generator=generator, device=device))
    )
    step = 0

    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(data), generator=shuffle).to(device)
        for start in range(0, len(data), config.batch_size):
            # fetch the batch
            real = to_unit_range(data[order[start : start + config.batch_size]])

            # update both networks
            losses = gan.train_step(real, generator)
            step += 1
            outcome.history.extend((step, epoch, name, value) for name, value in losses.items())

            # stop a diverged cell instead of training on NaNs
            bad = [name for name, value in losses.items() if not math.isfinite(value)]
            if bad:
                outcome.diverged = f"non-finite {', '.join(bad)} at step {step} (epoch {epoch})"
                logger.warning("diverged %s", outcome.diverged)
                return outcome

        outcome.epochs_done = epoch
        logger.debug(
            "epoch=%d step=%d %s", epoch, step, " ".join(f"{k}={v:.4f}" for k, v in losses.items())
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return outcome
