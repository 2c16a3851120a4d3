from __future__ import annotations

import pytest
import torch

from corruptions import PluginError
from gans import GANS
from gans.networks import MLPDiscriminator, MLPGenerator


def test_mlp_networks_have_the_reference_architecture() -> None:
    generator, discriminator = MLPGenerator(100), MLPDiscriminator()
    widths = [m.out_features for m in generator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    widths = [m.out_features for m in discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 512, 256, 1]
    assert generator(torch.zeros(3, 100)).shape == (3, 1, 28, 28)
    assert discriminator(torch.zeros(3, 1, 28, 28)).shape == (3,)


def test_vanilla_train_step_returns_finite_losses_and_updates_weights() -> None:
    torch.manual_seed(0)
    gan = GANS.create("vanilla", {"latent_dim": 8})
    gan.setup(torch.device("cpu"))
    before = [p.clone() for p in gan.generator_network().parameters()]
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    losses = gan.train_step(real, torch.Generator().manual_seed(0))
    assert set(losses) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    after = list(gan.generator_network().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_vanilla_sample_shape_and_range() -> None:
    torch.manual_seed(0)
    gan = GANS.create("vanilla", {})
    gan.setup(torch.device("cpu"))
    images = gan.sample(5, torch.Generator().manual_seed(0))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert not images.requires_grad


def test_vanilla_params_round_trip() -> None:
    assert GANS.create("vanilla", {}).params() == {
        "network": "mlp",
        "latent_dim": 100,
        "lr": 2e-4,
        "beta1": 0.5,
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"network": "mpl"},
            r"network='mpl' is unknown \(did you mean 'mlp'\?\); accepted: dcgan, mlp",
        ),
        ({"latent_dim": 0}, r"latent_dim must be an integer >= 1, got 0"),
        ({"lr": -1}, r"lr must be a number >= 0, got -1"),
    ],
)
def test_vanilla_rejects_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        GANS.create("vanilla", params)


def test_dcgan_networks_map_latents_to_images_and_images_to_logits() -> None:
    torch.manual_seed(0)
    gan = GANS.create("vanilla", {"network": "dcgan", "latent_dim": 10})
    gan.setup(torch.device("cpu"))
    losses = gan.train_step(torch.rand(8, 1, 28, 28) * 2 - 1, torch.Generator().manual_seed(0))
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert gan.sample(4, torch.Generator().manual_seed(0)).shape == (4, 1, 28, 28)
