from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import data
from benchmark.data import IMAGE_MAGIC, LABEL_MAGIC, DataError, load_mnist, read_idx

TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_decodes_gzip_and_raw_files(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    (tmp_path / "images.idx.gz").write_bytes(gzip.compress(_idx_bytes(images, IMAGE_MAGIC)))
    (tmp_path / "labels.idx").write_bytes(_idx_bytes(np.array([1, 2, 3]), LABEL_MAGIC))
    np.testing.assert_array_equal(read_idx(tmp_path / "images.idx.gz", IMAGE_MAGIC), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.idx", LABEL_MAGIC), [1, 2, 3])


def test_read_idx_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    blob = gzip.compress(_idx_bytes(np.zeros((10, 28, 28)), IMAGE_MAGIC))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"IDX file '.*cut\.gz' is truncated or not valid gzip"):
        read_idx(path, IMAGE_MAGIC)


def test_read_idx_size_mismatch_is_reported(tmp_path: Path) -> None:
    raw = _idx_bytes(np.zeros((10, 28, 28)), IMAGE_MAGIC)
    path = tmp_path / "short.idx"
    path.write_bytes(raw[:-100])
    with pytest.raises(
        DataError, match=r"holds 7756 bytes but its header \(10, 28, 28\) needs 7856"
    ):
        read_idx(path, IMAGE_MAGIC)


def test_read_idx_wrong_magic_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "labels.idx"
    path.write_bytes(_idx_bytes(np.array([1, 2]), LABEL_MAGIC))
    with pytest.raises(DataError, match=r"has magic number 2049, expected 2051 for uint8 images"):
        read_idx(path, IMAGE_MAGIC)


def test_read_idx_missing_and_tiny_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist"):
        read_idx(tmp_path / "nope.gz", IMAGE_MAGIC)
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=r"too short \(2 bytes\)"):
        read_idx(tmp_path / "tiny", IMAGE_MAGIC)


def test_load_mnist_checksum_mismatch_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, _ in data.MNIST_FILES.values():
        (folder / name).write_bytes(gzip.compress(_idx_bytes(np.zeros((2, 28, 28)), IMAGE_MAGIC)))
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte\.gz' has md5 [0-9a-f]{32}, expected f68b3c2d"
    ):
        load_mnist("train", tmp_path, tmp_path / "cache")


def test_load_mnist_truncated_real_file_is_a_checksum_error(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "mnist"
    shutil.copytree(data_dir / "mnist", folder)
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte\.gz' has md5 .* truncated or corrupt"
    ):
        load_mnist("test", tmp_path, tmp_path / "cache")


def test_load_mnist_data_dir_without_mnist(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"--data-dir '.*' holds no MNIST; expected train-images-idx3-ubyte\.gz"
    ):
        load_mnist("train", tmp_path, tmp_path / "cache")


def test_load_mnist_offline_download_error_says_where_to_put_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(
        DataError,
        match=r"could not be downloaded \(RuntimeError: .*\); "
        r"put .* in DIR/mnist/ and pass --data-dir DIR",
    ):
        load_mnist("train", None, tmp_path)


def test_load_mnist_reads_real_mnist_then_serves_from_cache(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = load_mnist("train", data_dir, tmp_path)
    assert train.images.shape == (60000, 28, 28)
    assert train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == TRAIN_HISTOGRAM
    assert train.checksum == data.MNIST_FILES["train-images"][1]

    # a second load decodes nothing
    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(data, "read_idx", no_decoding)
    again = load_mnist("train", data_dir, tmp_path)
    assert torch.equal(again.images, train.images)


def test_load_mnist_rejects_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"MNIST split must be 'train' or 'test', got 'valid'"):
        load_mnist("valid", None, tmp_path)  # type: ignore[arg-type]
