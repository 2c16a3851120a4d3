"""Contaminant image sources: EMNIST, Fashion-MNIST, a folder of IDX files, or an `.npz`.

Every source returns uint8 images `(M, 28, 28)` in MNIST's orientation and
scale, decoded once and cached as `.npy` under the cache folder.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from corruptions.idx import IMAGE_MAGIC, LABEL_MAGIC, read_idx, write_atomic
from corruptions.registry import DataError

logger = logging.getLogger(__name__)

EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
# splits whose labels 0..9 are the digits; letters has no digits, digits/mnist only digits
EMNIST_WITH_DIGITS = ("byclass", "bymerge", "balanced")
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def _file_key(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(
        f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()[:16]


def _cached(
    cache_dir: Path, name: str, sources: list[Path], build: Callable[[], np.ndarray]
) -> np.ndarray:
    """`build()`'s array, cached as .npy under a key of the source files' paths, sizes and times."""
    key = hashlib.sha256("|".join(_file_key(p) for p in sources).encode()).hexdigest()[:16]
    path = cache_dir / "arrays" / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    array = build()
    write_atomic(path, lambda handle: np.save(handle, array))
    return array


def _find(folders: list[Path], stem: str) -> Path | None:
    """The first `stem` or `stem.gz` in `folders`."""
    for folder in folders:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.exists():
                return candidate
    return None


def _check_images(images: np.ndarray, where: str) -> np.ndarray:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(
            f"contaminant images in {where} must be uint8 (M, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if len(images) == 0:
        raise DataError(f"contaminant source {where} holds no images")
    return images


def load_emnist(
    split: str, exclude_digits: bool, data_dir: Path | None, cache_dir: Path
) -> np.ndarray:
    """EMNIST `split` (training part), turned to MNIST's orientation.

    EMNIST stores each image transposed relative to MNIST, so every image is
    transposed back. Its pixels are uint8 0..255 like MNIST's and are kept as
    they are, so both datasets are scaled identically.

    With `exclude_digits`, the digit classes (labels 0-9 of byclass, bymerge
    and balanced) are dropped: a contaminant that contains digits would partly
    be more MNIST, not contamination, and would dilute the severity.

    Looks for `emnist-<split>-train-{images-idx3,labels-idx1}-ubyte[.gz]` in
    `data_dir/emnist`, `data_dir/emnist/gzip`, `data_dir/EMNIST/raw` and
    `data_dir`, else downloads
    EMNIST with torchvision into `cache_dir`.

    Raises:
        DataError: if the files cannot be found or downloaded, or the split
            holds no image once digits are excluded.
    """
    if split not in EMNIST_SPLITS:
        raise DataError(f"EMNIST split must be one of {', '.join(EMNIST_SPLITS)}, got {split!r}")
    if exclude_digits and split in ("digits", "mnist"):
        raise DataError(
            f"EMNIST split {split!r} holds only digits; with exclude_digits = true nothing "
            "is left (use a letters split, or set exclude_digits = false)"
        )
    folders = []
    if data_dir is not None:
        # gzip/ is where EMNIST's gzip.zip unpacks; EMNIST/raw is torchvision's layout
        folders = [data_dir / "emnist", data_dir / "emnist" / "gzip", data_dir / "EMNIST" / "raw"]
        folders.append(data_dir)
    folders.append(cache_dir / "torchvision" / "EMNIST" / "raw")
    images_path = _find(folders, f"emnist-{split}-train-images-idx3-ubyte")
    labels_path = _find(folders, f"emnist-{split}-train-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        _download_emnist(split, cache_dir, folders)
        images_path = _find(folders, f"emnist-{split}-train-images-idx3-ubyte")
        labels_path = _find(folders, f"emnist-{split}-train-labels-idx1-ubyte")
        assert images_path is not None and labels_path is not None

    def build() -> np.ndarray:
        images = read_idx(images_path, IMAGE_MAGIC)
        labels = read_idx(labels_path, LABEL_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
            )
        if exclude_digits and split in EMNIST_WITH_DIGITS:
            images = images[labels >= 10]
        logger.info("decoded emnist split=%s images=%d", split, len(images))
        return np.ascontiguousarray(images.transpose(0, 2, 1))

    name = f"emnist-{split}-{'letters' if exclude_digits else 'all'}"
    return _check_images(
        _cached(cache_dir, name, [images_path, labels_path], build), str(images_path)
    )


def _download_emnist(split: str, cache_dir: Path, folders: list[Path]) -> None:
    from torchvision.datasets import EMNIST

    try:
        EMNIST(str(cache_dir / "torchvision"), split=split, train=True, download=True)
    except Exception as err:  # torchvision raises RuntimeError, URLError, OSError...
        looked = ", ".join(str(f) for f in folders)
        raise DataError(
            f"EMNIST split {split!r} is not on disk and could not be downloaded "
            f"({type(err).__name__}: {err}); put emnist-{split}-train-images-idx3-ubyte.gz and "
            f"emnist-{split}-train-labels-idx1-ubyte.gz (from EMNIST's gzip.zip) in DIR/emnist/ "
            f"and pass --data-dir DIR (looked in {looked})"
        ) from err


def load_fashion_mnist(data_dir: Path | None, cache_dir: Path) -> np.ndarray:
    """Fashion-MNIST's 60,000 training images.

    Looks in `data_dir/fashion-mnist`, `data_dir/fashion_mnist`,
    `data_dir/FashionMNIST/raw`, then /usr/share/datasets/fashion-mnist (Debian's
    dataset-fashion-mnist), else downloads with torchvision into `cache_dir`.

    Raises:
        DataError: if the files cannot be found or downloaded.
    """
    folders = []
    if data_dir is not None:
        folders = [
            data_dir / "fashion-mnist",
            data_dir / "fashion_mnist",
            data_dir / "FashionMNIST" / "raw",
        ]
    folders += [FASHION_SYSTEM_DIR, cache_dir / "torchvision" / "FashionMNIST" / "raw"]
    path = _find(folders, "train-images-idx3-ubyte")
    if path is None:
        from torchvision.datasets import FashionMNIST

        try:
            FashionMNIST(str(cache_dir / "torchvision"), train=True, download=True)
        except Exception as err:
            raise DataError(
                f"Fashion-MNIST is not on disk and could not be downloaded "
                f"({type(err).__name__}: {err}); install Debian's dataset-fashion-mnist, "
                "or put train-images-idx3-ubyte.gz in DIR/fashion-mnist/ and pass --data-dir DIR"
            ) from err
        path = _find(folders, "train-images-idx3-ubyte")
        assert path is not None
    images = _cached(cache_dir, "fashion-mnist", [path], lambda: read_idx(path, IMAGE_MAGIC))
    return _check_images(images, str(path))


def load_path(source: str, cache_dir: Path) -> np.ndarray:
    """Images from an `.npz` with an `images` array, or a folder of IDX image files.

    A folder's `*train-images-idx3-ubyte[.gz]` is taken, else its only
    `*images-idx3-ubyte[.gz]` file.

    Raises:
        DataError: if the path does not exist or holds no usable images.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"contamination source {source!r} is neither emnist, fashion_mnist nor an existing "
            ".npz file or folder of IDX files"
        )
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(
                f"contamination source file {source!r} must be an .npz with an 'images' array"
            )
        with np.load(path) as archive:
            if "images" not in archive:
                raise DataError(
                    f"{source!r} has no 'images' array; it has {', '.join(archive.files)}"
                )
            return _check_images(archive["images"], source)

    candidates = sorted(path.glob("*train-images-idx3-ubyte*")) or sorted(
        path.glob("*images-idx3-ubyte*")
    )
    if len(candidates) != 1:
        raise DataError(
            f"contamination source folder {source!r} must hold one *train-images-idx3-ubyte[.gz] "
            f"file (or one *images-idx3-ubyte[.gz]), found {len(candidates)}"
        )
    (idx,) = candidates
    return _check_images(
        _cached(cache_dir, "idx", [idx], lambda: read_idx(idx, IMAGE_MAGIC)), str(idx)
    )
