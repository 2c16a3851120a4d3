"""Every registered corruption honours the `Corruption` contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from corruptions import CORRUPTIONS, Corruption

# plugins that need outside data get a small source here; the rest run on defaults
SETUP: dict[str, dict] = {
    "contamination": {"params": {"source": "NPZ"}},
    "emnist": {"params": {}, "data_dir": "EMNIST"},
}


@pytest.fixture
def make_plugin(tmp_path: Path, emnist_dir: Path):  # type: ignore[no-untyped-def]
    npz = tmp_path / "contaminant.npz"
    np.savez(npz, images=np.full((50, 28, 28), 77, dtype=np.uint8))

    def make(name: str) -> Corruption:
        setup = SETUP.get(name, {})
        params = {k: str(npz) if v == "NPZ" else v for k, v in setup.get("params", {}).items()}
        plugin = CORRUPTIONS.create(name, params)
        data_dir = emnist_dir if setup.get("data_dir") == "EMNIST" else None
        plugin.prepare(data_dir, tmp_path / "cache")
        return plugin

    return make


def _mnist_like(count: int = 120) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, 28, 28), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("name", CORRUPTIONS.names())
@pytest.mark.parametrize("severity", [0.0, 0.1, 0.5])
def test_corruption_conformance_corrupt(make_plugin, name: str, severity: float) -> None:  # type: ignore[no-untyped-def]
    plugin = make_plugin(name)
    images = _mnist_like()
    before = images.clone()
    result = plugin.corrupt(images, severity, torch.Generator().manual_seed(3))

    # shape, dtype and range preserved; the input untouched
    assert result.images.dtype == torch.uint8
    assert result.images.shape[1:] == (28, 28) and len(result.images) >= len(images)
    assert torch.equal(images, before)
    assert result.mask.shape == (len(result.images),) and result.mask.dtype == torch.bool

    # the corrupted fraction is the severity, to rounding
    assert abs(result.mask.float().mean().item() - severity) <= 1.0 / len(images)

    # deterministic under a seed
    again = plugin.corrupt(images, severity, torch.Generator().manual_seed(3))
    assert torch.equal(again.images, result.images) and torch.equal(again.mask, result.mask)


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_corruption_conformance_measure(make_plugin, name: str) -> None:  # type: ignore[no-untyped-def]
    plugin = make_plugin(name)
    if not plugin.can_measure:
        pytest.skip(f"{name} declares it cannot simulate itself")
    batch = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    batch.requires_grad_(True)
    out = plugin.measure(batch, 0.5, torch.Generator().manual_seed(1))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert out.min() >= -1.0 and out.max() <= 1.0

    # differentiable: gradients reach the input
    out.sum().backward()
    assert batch.grad is not None and batch.grad.abs().sum() > 0

    # severity 0 is the identity, severity 1 changes every image
    untouched = plugin.measure(batch.detach(), 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(untouched, batch.detach())
    changed = plugin.measure(batch.detach(), 1.0, torch.Generator().manual_seed(1))
    assert bool((changed != batch.detach()).flatten(1).any(1).all())
