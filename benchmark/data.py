"""MNIST from IDX files: a local directory first, torchvision's downloader otherwise.

Decoded arrays are cached as `.npy` files keyed by the source files' checksums,
so every load after the first is a memory map of the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from benchmark.errors import DataError
from corruptions.idx import IMAGE_MAGIC, LABEL_MAGIC, read_idx, write_atomic

logger = logging.getLogger(__name__)

Split = Literal["train", "test"]

# md5 of the original gzip files, the sums torchvision checks too
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train-images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test-images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test-labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_COUNTS = {"train": 60000, "test": 10000}


@dataclass(frozen=True)
class ImageSet:
    """Images with labels, and a checksum that identifies the source data.

    Attributes:
        images: uint8 tensor `(N, 28, 28)`, values 0..255.
        labels: int64 tensor `(N,)`.
        checksum: hex digest identifying the files the set was read from.
    """

    images: torch.Tensor
    labels: torch.Tensor
    checksum: str


def default_cache_dir() -> Path:
    """`$GAN_ROBUSTNESS_CACHE`, else `~/.cache/gan-robustness`."""
    env = os.environ.get("GAN_ROBUSTNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gan-robustness"


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _find_mnist_dir(data_dir: Path) -> Path | None:
    for candidate in (data_dir / "mnist", data_dir, data_dir / "MNIST" / "raw"):
        if (candidate / MNIST_FILES["train-images"][0]).exists():
            return candidate
    return None


def _download_mnist(cache_dir: Path) -> Path:
    """Fetch MNIST with torchvision into the cache; returns the folder of the gz files."""
    from torchvision.datasets import MNIST

    root = cache_dir / "torchvision"
    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
        names = ", ".join(name for name, _ in MNIST_FILES.values())
        raise DataError(
            f"MNIST is not on disk and could not be downloaded ({type(err).__name__}: {err}); "
            f"put {names} in DIR/mnist/ and pass --data-dir DIR"
        ) from err
    return root / "MNIST" / "raw"


def _verified(folder: Path, key: str) -> tuple[Path, str]:
    name, md5 = MNIST_FILES[key]
    path = folder / name
    if not path.exists():
        raise DataError(f"MNIST file {str(path)!r} is missing; expected all of {folder}/*.gz")
    actual = file_md5(path)
    if actual != md5:
        raise DataError(
            f"MNIST file {str(path)!r} has md5 {actual}, expected {md5}; "
            "it is truncated or corrupt: delete it and fetch it again"
        )
    return path, md5


def load_mnist(
    split: Split, data_dir: Path | None = None, cache_dir: Path | None = None
) -> ImageSet:
    """Load MNIST `split` ("train": 60,000 images, "test": 10,000).

    Args:
        split: "train" or "test".
        data_dir: folder holding the four IDX gz files, directly or in `mnist/`
            or `MNIST/raw/`; when None, torchvision downloads them into the cache.
        cache_dir: where decoded arrays and downloads are kept; default
            `default_cache_dir()`.

    Returns:
        The images and labels; `checksum` is the md5 of the gzip image file.

    Raises:
        DataError: if the files are missing, corrupt or cannot be downloaded.
    """
    if split not in MNIST_COUNTS:
        raise DataError(f"MNIST split must be 'train' or 'test', got {split!r}")
    cache_dir = cache_dir or default_cache_dir()

    # locate the gz files
    if data_dir is not None:
        folder = _find_mnist_dir(Path(data_dir))
        if folder is None:
            raise DataError(
                f"--data-dir {str(data_dir)!r} holds no MNIST; expected "
                f"{MNIST_FILES['train-images'][0]} and the three other IDX gz files "
                "in it or in its mnist/ folder"
            )
    else:
        folder = cache_dir / "torchvision" / "MNIST" / "raw"
        if not (folder / MNIST_FILES["train-images"][0]).exists():
            folder = _download_mnist(cache_dir)

    # decode once, then serve from the .npy cache
    image_path, image_md5 = _verified(folder, f"{split}-images")
    label_path, label_md5 = _verified(folder, f"{split}-labels")
    arrays = cache_dir / "arrays"
    images_npy = arrays / f"mnist-{split}-{image_md5}.npy"
    labels_npy = arrays / f"mnist-{split}-{label_md5}.npy"
    if not (images_npy.exists() and labels_npy.exists()):
        images = read_idx(image_path, IMAGE_MAGIC)
        labels = read_idx(label_path, LABEL_MAGIC)
        if images.shape != (MNIST_COUNTS[split], 28, 28) or len(labels) != len(images):
            raise DataError(
                f"MNIST {split} has images {images.shape} and {len(labels)} labels, "
                f"expected ({MNIST_COUNTS[split]}, 28, 28)"
            )
        write_atomic(images_npy, lambda handle: np.save(handle, images))
        write_atomic(labels_npy, lambda handle: np.save(handle, labels))
        logger.info("decoded mnist split=%s images=%d cache=%s", split, len(images), arrays)

    images = np.load(images_npy)
    labels = np.load(labels_npy).astype(np.int64)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), image_md5)
