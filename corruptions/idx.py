"""Reading IDX files, the format of MNIST, EMNIST and Fashion-MNIST."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from corruptions.registry import DataError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` through a temporary file, so readers never see half a cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        write(handle)
    partial.replace(path)


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Decode one IDX file (gzip-compressed when its name ends in `.gz`).

    Args:
        path: the file.
        expected_magic: 2051 for images, 2049 for labels.

    Returns:
        uint8 array `(N, H, W)` for images, `(N,)` for labels.

    Raises:
        DataError: if the file is missing, truncated, not gzip, or its header
            does not match its size or the expected kind.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"IDX file {str(path)!r} does not exist") from err
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"IDX file {str(path)!r} is truncated or not valid gzip ({err}); "
            "delete it and fetch it again"
        ) from err

    if len(raw) < 8:
        raise DataError(f"IDX file {str(path)!r} is too short ({len(raw)} bytes) to hold a header")
    magic = int.from_bytes(raw[0:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGE_MAGIC else "labels"
        raise DataError(
            f"IDX file {str(path)!r} has magic number {magic}, expected {expected_magic} "
            f"for uint8 {kind}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {str(path)!r} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) + header
    if len(raw) != expected:
        raise DataError(
            f"IDX file {str(path)!r} holds {len(raw)} bytes but its header {shape} "
            f"needs {expected}; the file is truncated or corrupt"
        )
    # a bytearray makes the array writable, as torch.from_numpy wants
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=header).reshape(shape)
