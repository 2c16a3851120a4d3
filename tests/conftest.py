"""Shared fixtures: the real MNIST folder (skipping when absent) and a persistent cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST_FILE = "mnist/train-images-idx3-ubyte.gz"


def _data_dir() -> Path:
    return Path(os.environ.get("GAN_ROBUSTNESS_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding real MNIST (`../shared/data` beside the checkout)."""
    folder = _data_dir()
    if not (folder / MNIST_FILE).exists():
        pytest.skip(f"real MNIST not found at {folder / MNIST_FILE}; set GAN_ROBUSTNESS_DATA")
    return folder


@pytest.fixture(scope="session")
def cache_dir(request: pytest.FixtureRequest) -> Path:
    """A cache kept across test sessions in pytest's cache folder.

    Everything in it is keyed by content hashes, so reuse is safe; it spares
    each session the minute and a half the MNIST classifier takes to train.
    """
    return Path(request.config.cache.mkdir("gan-robustness"))
