"""Shared fixtures: the real MNIST folder (skipping when absent) and a persistent cache."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
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


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """Write a uint8 array as an IDX file, gzip-compressed when the name ends in .gz."""
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw += array.astype("uint8").tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def emnist_upright(index: int) -> np.ndarray:
    """A 28x28 test image, upright (MNIST orientation): a horizontal bar at a row set by index."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2 + index % 24, 3:25] = 200
    image[0, 0] = index % 256  # makes every image distinct
    return image


@pytest.fixture(scope="session")
def emnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with small EMNIST-format files (bymerge and letters), stored transposed.

    bymerge labels cycle through 0..46, so labels 0-9 are digits; image i is
    `emnist_upright(i)` transposed, as EMNIST stores its images.
    """
    root = tmp_path_factory.mktemp("data")
    folder = root / "emnist"
    folder.mkdir()
    for split, count, labels in (
        ("bymerge", 94, np.arange(94) % 47),
        ("letters", 52, np.arange(52) % 26 + 1),
    ):
        stored = np.stack([emnist_upright(i).T for i in range(count)])
        write_idx(folder / f"emnist-{split}-train-images-idx3-ubyte.gz", stored, 2051)
        write_idx(folder / f"emnist-{split}-train-labels-idx1-ubyte.gz", labels, 2049)
    return root
