from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from corruptions import CORRUPTIONS, DataError, PluginError
from corruptions.contamination import Contamination
from corruptions.sources import FASHION_SYSTEM_DIR, load_emnist, load_fashion_mnist
from tests.conftest import emnist_upright


def _npz(tmp_path: Path, count: int = 500, value: int = 77) -> str:
    path = tmp_path / "c.npz"
    np.savez(path, images=np.full((count, 28, 28), value, dtype=np.uint8))
    return str(path)


def _mnist(count: int) -> torch.Tensor:
    return torch.zeros(count, 28, 28, dtype=torch.uint8)


def test_contamination_add_mode_reproduces_the_reference_study_ratio(tmp_path: Path) -> None:
    plugin = Contamination(source=_npz(tmp_path, count=20000))
    plugin.prepare(None, tmp_path)
    # 60000 MNIST + 10000 contaminants is severity 1/7 = 0.143
    assert plugin.contaminant_count(60000, 10000 / 70000) == 10000
    assert plugin.contaminant_count(60000, 2000 / 62000) == 2000
    result = plugin.corrupt(_mnist(600), 1 / 7, torch.Generator().manual_seed(0))
    assert len(result.images) == 700 and int(result.mask.sum()) == 100
    assert bool((result.images[result.mask] == 77).all()) and bool((result.images[:600] == 0).all())
    assert result.contaminant_indices is not None and len(result.contaminant_indices) == 100


def test_contamination_replace_mode_keeps_the_size(tmp_path: Path) -> None:
    plugin = Contamination(source=_npz(tmp_path), mode="replace")
    plugin.prepare(None, tmp_path)
    result = plugin.corrupt(_mnist(400), 0.25, torch.Generator().manual_seed(0))
    assert len(result.images) == 400 and int(result.mask.sum()) == 100
    assert bool((result.images[result.mask] == 77).all()) and bool(
        (result.images[~result.mask] == 0).all()
    )


def test_contamination_add_mode_rejects_severity_one(tmp_path: Path) -> None:
    plugin = Contamination(source=_npz(tmp_path))
    plugin.prepare(None, tmp_path)
    with pytest.raises(
        PluginError, match=r"mode 'add' needs severity < 1, got 1\.0; use mode 'replace'"
    ):
        plugin.corrupt(_mnist(10), 1.0, torch.Generator())


def test_contamination_params_keep_only_what_the_source_uses() -> None:
    fashion = CORRUPTIONS.create("contamination", {"source": "fashion_mnist", "split": "letters"})
    assert fashion.params() == {"source": "fashion_mnist", "mode": "add"}
    emnist = CORRUPTIONS.create("contamination", {})
    assert emnist.params() == {
        "source": "emnist", "split": "bymerge", "mode": "add", "exclude_digits": True
    }  # fmt: skip


def test_contamination_used_before_prepare_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"was used before prepare\(\) loaded its source"):
        Contamination(source="x.npz").corrupt(_mnist(10), 0.5, torch.Generator())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "mix"}, r"contamination parameter mode must be 'add' or 'replace', got 'mix'"),
        ({"split": "bymerged"}, r"contamination parameter split must be one of byclass, bymerge"),
        ({"exclude_digits": "yes"}, r"exclude_digits must be true or false, got 'yes'"),
        ({"source": ""}, r"source must be 'emnist', 'fashion_mnist' or a path, got ''"),
    ],
)
def test_contamination_rejects_bad_parameters(params: dict, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        CORRUPTIONS.create("contamination", params)


def test_emnist_is_turned_upright_and_letters_only(emnist_dir: Path, tmp_path: Path) -> None:
    images = load_emnist("bymerge", True, emnist_dir, tmp_path)
    # bymerge labels cycle 0..46 over 94 images: 2 x 37 letters remain
    kept = [i for i in range(94) if i % 47 >= 10]
    assert images.shape == (74, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.stack([emnist_upright(i) for i in kept]))


def test_emnist_with_digits_and_letters_split(emnist_dir: Path, tmp_path: Path) -> None:
    assert load_emnist("bymerge", False, emnist_dir, tmp_path).shape == (94, 28, 28)
    letters = load_emnist("letters", True, emnist_dir, tmp_path)
    np.testing.assert_array_equal(letters[5], emnist_upright(5))
    assert len(letters) == 52


def test_emnist_shorthand_is_contamination_with_emnist(emnist_dir: Path, tmp_path: Path) -> None:
    plugin = CORRUPTIONS.create("emnist", {})
    assert plugin.canonical == "contamination"
    assert plugin.params() == CORRUPTIONS.create("contamination", {}).params()
    plugin.prepare(emnist_dir, tmp_path)
    result = plugin.corrupt(_mnist(70), 0.125, torch.Generator().manual_seed(0))
    assert int(result.mask.sum()) == 10


def test_emnist_digit_split_with_exclude_digits_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"EMNIST split 'digits' holds only digits"):
        load_emnist("digits", True, None, tmp_path)


def test_emnist_offline_error_says_where_to_put_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "EMNIST", offline)
    with pytest.raises(
        DataError,
        match=r"EMNIST split 'bymerge' is not on disk and could not be downloaded "
        r"\(RuntimeError: network unreachable\); put emnist-bymerge-train-images-idx3-ubyte\.gz",
    ):
        load_emnist("bymerge", True, tmp_path, tmp_path / "cache")


@pytest.mark.skipif(
    not FASHION_SYSTEM_DIR.exists(), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_fashion_mnist_from_the_debian_package(tmp_path: Path) -> None:
    images = load_fashion_mnist(None, tmp_path)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert images.mean() > 50  # garments fill more of the frame than digits (MNIST: ~33)


def test_path_sources_npz_and_idx_folder(tmp_path: Path) -> None:
    from tests.conftest import write_idx

    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte.gz", np.full((3, 28, 28), 9), 2051)
    plugin = Contamination(source=str(folder))
    plugin.prepare(None, tmp_path)
    assert plugin.pool.shape == (3, 28, 28)

    bad = tmp_path / "bad.npz"
    np.savez(bad, pixels=np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(DataError, match=r"has no 'images' array; it has pixels"):
        Contamination(source=str(bad)).prepare(None, tmp_path)
    np.savez(bad, images=np.zeros((3, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"must be uint8 \(M, 28, 28\), got uint8 \(3, 32, 32\)"):
        Contamination(source=str(bad)).prepare(None, tmp_path)
    with pytest.raises(DataError, match=r"is neither emnist, fashion_mnist nor an existing"):
        Contamination(source=str(tmp_path / "missing")).prepare(None, tmp_path)


def test_contamination_measure_swaps_a_severity_share_for_contaminants(tmp_path: Path) -> None:
    plugin = Contamination(source=_npz(tmp_path, value=255))
    plugin.prepare(None, tmp_path)
    batch = torch.full((2000, 1, 28, 28), -1.0)
    out = plugin.measure(batch, 0.3, torch.Generator().manual_seed(0))
    swapped = (out == 1.0).flatten(1).all(1).float().mean().item()
    assert swapped == pytest.approx(0.3, abs=0.04)


def test_block_pixels_zeroes_a_p_share_of_pixels() -> None:
    plugin = CORRUPTIONS.create("block_pixels", {"p": 0.8})
    white = torch.full((20, 28, 28), 255, dtype=torch.uint8)
    result = plugin.corrupt(white, 1.0, torch.Generator().manual_seed(0))
    assert (result.images == 0).float().mean().item() == pytest.approx(0.8, abs=0.02)
    with pytest.raises(
        PluginError, match=r"block_pixels parameter p must be a number in \[0, 1\], got 1\.5"
    ):
        CORRUPTIONS.create("block_pixels", {"p": 1.5})


def test_fashion_mnist_offline_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets

    import corruptions.sources as sources

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(sources, "FASHION_SYSTEM_DIR", tmp_path / "absent")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(
        DataError,
        match=r"Fashion-MNIST is not on disk and could not be downloaded \(RuntimeError: "
        r"network unreachable\); install Debian's dataset-fashion-mnist",
    ):
        load_fashion_mnist(None, tmp_path / "cache")


def test_idx_folder_source_without_images_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"must hold one \*train-images-idx3-ubyte\[\.gz\] file .* found 0"
    ):
        Contamination(source=str(tmp_path)).prepare(None, tmp_path)


def test_corruption_without_measure_says_so() -> None:
    from corruptions import Corrupted, Corruption

    class Opaque(Corruption):
        name = "opaque"

        def corrupt(
            self, images: torch.Tensor, severity: float, generator: torch.Generator
        ) -> Corrupted:
            return Corrupted(images, torch.zeros(len(images), dtype=torch.bool))

    with pytest.raises(
        PluginError, match=r"corruption 'opaque' cannot simulate its process on a batch"
    ):
        Opaque().measure(torch.zeros(1, 1, 28, 28), 0.5, torch.Generator())


def test_empty_npz_source_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.npz"
    np.savez(empty, images=np.zeros((0, 28, 28), dtype=np.uint8))
    with pytest.raises(DataError, match=r"contaminant source .*empty\.npz holds no images"):
        Contamination(source=str(empty)).prepare(None, tmp_path)


def test_emnist_images_and_labels_of_different_lengths(tmp_path: Path) -> None:
    from tests.conftest import write_idx

    folder = tmp_path / "emnist"
    folder.mkdir()
    write_idx(folder / "emnist-letters-train-images-idx3-ubyte.gz", np.zeros((4, 28, 28)), 2051)
    write_idx(folder / "emnist-letters-train-labels-idx1-ubyte.gz", np.ones(3), 2049)
    with pytest.raises(DataError, match=r"has 4 images but .* has 3 labels"):
        load_emnist("letters", True, tmp_path, tmp_path / "cache")
