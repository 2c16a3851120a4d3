from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.errors import ConfigError
from benchmark.matrix import parse_matrix
from corruptions import CORRUPTIONS, Corrupted, Corruption, PluginError
from gans import GANS


def _matrix(corruption: str, severities: list[float], gans: list[str]) -> dict:
    return {
        "matrix": {"name": "t"},
        "corruptions": [{"name": corruption, "severities": severities}],
        "gans": [{"name": gan} for gan in gans],
    }


def test_ambient_on_clean_data_is_the_vanilla_cell() -> None:
    matrix = parse_matrix(_matrix("gaussian", [0.0, 0.3], ["vanilla", "ambient"]))
    cells = matrix.cells()
    assert [(c.severity, c.gan) for c in cells] == [
        (0.0, "vanilla"),
        (0.3, "vanilla"),
        (0.3, "ambient"),
    ]
    by_gan = {(r.gan, r.cell.severity): r.cell.id for r in matrix.roles()}
    assert by_gan[("ambient", 0.0)] == by_gan[("vanilla", 0.0)]


class _Opaque(Corruption):
    """A corruption that cannot simulate itself."""

    def corrupt(
        self, images: torch.Tensor, severity: float, generator: torch.Generator
    ) -> Corrupted:
        return Corrupted(images.clone(), torch.zeros(len(images), dtype=torch.bool))


@pytest.fixture
def opaque() -> str:
    CORRUPTIONS.add("opaque_test", _Opaque)
    yield "opaque_test"
    CORRUPTIONS._entries.pop("opaque_test")


def test_ambient_refuses_a_corruption_that_cannot_measure(opaque: str) -> None:
    with pytest.raises(
        ConfigError,
        match=r"gan 'ambient' needs a corruption that can simulate itself on a batch; "
        r"corruption 'opaque_test' cannot",
    ):
        parse_matrix(_matrix(opaque, [0.0, 0.2], ["ambient"]))
    # vanilla is fine with it
    assert len(parse_matrix(_matrix(opaque, [0.0, 0.2], ["vanilla"])).cells()) == 2


def test_ambient_attach_refuses_and_unattached_ambient_errors() -> None:
    gan = GANS.create("ambient", {"latent_dim": 4})
    with pytest.raises(PluginError, match=r"corruption 'opaque_direct' cannot"):
        opaque = _Opaque()
        opaque.name = "opaque_direct"
        gan.attach_measurement(opaque, 0.5)
    gan.setup(torch.device("cpu"))
    with pytest.raises(
        PluginError, match=r"gan 'ambient' was trained without a corruption attached"
    ):
        gan.train_step(torch.zeros(4, 1, 28, 28), torch.Generator())


class _Recording(Corruption):
    can_measure = True
    name = "recording"

    def __init__(self) -> None:
        self.seen: list[float] = []

    def corrupt(
        self, images: torch.Tensor, severity: float, generator: torch.Generator
    ) -> Corrupted:
        raise AssertionError("not used")

    def measure(
        self, batch: torch.Tensor, severity: float, generator: torch.Generator
    ) -> torch.Tensor:
        self.seen.append(severity)
        return batch * 0.5


def test_ambient_discriminator_sees_measured_fakes_and_gradients_flow() -> None:
    torch.manual_seed(0)
    gan = GANS.create("ambient", {"latent_dim": 8})
    recording = _Recording()
    gan.attach_measurement(recording, 0.3)
    gan.setup(torch.device("cpu"))
    before = [p.clone() for p in gan.generator_network().parameters()]
    losses = gan.train_step(torch.rand(16, 1, 28, 28) * 2 - 1, torch.Generator().manual_seed(0))
    assert recording.seen == [0.3, 0.3]  # once for the discriminator, once for the generator step
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    after = list(gan.generator_network().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize("corruption", ["gaussian", "block_pixels"])
def test_ambient_trains_through_builtin_measurements(corruption: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    gan = GANS.create("ambient", {"network": "dcgan", "latent_dim": 8})
    plugin = CORRUPTIONS.create(corruption, {})
    gan.attach_measurement(plugin, 0.5)
    gan.setup(torch.device("cpu"))
    losses = gan.train_step(torch.rand(8, 1, 28, 28) * 2 - 1, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
