"""InceptionV3 features: local weights, torch hub's cache, and the offline error.

No test downloads anything: the weights are random (timing and plumbing do
not depend on them) and the download is replaced by one that fails as it
does offline.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.data import ImageSet
from benchmark.errors import DataError
from benchmark.inception import default_weights_path, inception_url, load_inception
from benchmark.metrics import extract_features, score_samples
from tests.random_inception import write_random_inception_weights

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_inception_weights(tmp_path_factory.mktemp("inception") / "random.pth")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub folder and a download that fails as it does without a network."""

    def no_network(url: str, dst: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "hub"


def test_load_inception_hashes_the_local_weights_file(random_weights: Path) -> None:
    extractor = load_inception(random_weights)
    assert extractor.name == "inception-v3-compat"
    assert extractor.hash == hashlib.sha256(random_weights.read_bytes()).hexdigest()[:12]
    assert (extractor.channels, extractor.feature_layer) == (3, "2048")
    assert extractor.test_accuracy is None


def test_inception_features_of_grey_digits(random_weights: Path) -> None:
    extractor = load_inception(random_weights)
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    features = extract_features(images, extractor, torch.device("cpu"))
    assert features.features.shape == (5, 2048)
    assert features.logits.shape == (5, 1008)
    again = extract_features(images, extractor, torch.device("cpu"))
    assert torch.equal(features.features, again.features)


def test_score_samples_on_inception_features(random_weights: Path, tmp_path: Path) -> None:
    extractor = load_inception(random_weights)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 28, 28), dtype=torch.uint8, generator=generator)
    reference = ImageSet(images, torch.zeros(12, dtype=torch.int64), "tiny")
    scores = score_samples(images, reference, extractor, tmp_path, torch.device("cpu"))
    assert all(math.isfinite(value) for value in scores.values())
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0
    assert (tmp_path / "features" / f"mnist-ref-tiny-{extractor.hash}.pt").exists()


def test_load_inception_offline_without_weights_says_how_to_provide_them(offline: Path) -> None:
    target = default_weights_path()
    assert target.parent == offline / "checkpoints"
    assert target.name == Path(inception_url()).name
    message = (
        r"feature_extractor 'inception' needs InceptionV3 weights, and downloading "
        r"https://\S+\.pth failed \(.*Temporary failure in name resolution.*\); on a machine "
        r"that is online, download that file and pass it with --inception-weights PATH, "
        r"or put it at \S+checkpoints/\S+\.pth"
    )
    with pytest.raises(DataError, match=message):
        load_inception()
    assert not target.exists()


def test_load_inception_takes_torch_hubs_cached_copy_offline(
    offline: Path, random_weights: Path
) -> None:
    target = default_weights_path()
    target.parent.mkdir(parents=True)
    shutil.copy(random_weights, target)
    assert load_inception().path == target


def test_load_inception_missing_local_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"--inception-weights '\S+nope\.pth' is not a file"):
        load_inception(tmp_path / "nope.pth")


def test_run_with_inception_offline_exits_2_before_training(
    offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    matrix = tmp_path / "inception.toml"
    matrix.write_text(
        '[matrix]\nname = "inc"\n'
        '[[corruptions]]\nname = "gaussian"\nseverities = [0.5]\n'
        '[[gans]]\nname = "vanilla"\n'
        "[training]\nepochs = 1\ntrain_subset = 64\n"
        '[evaluation]\nsamples = 100\nfeature_extractor = "inception"\n'
    )
    out = tmp_path / "run"
    code = main(["run", "--matrix", str(matrix), "--out", str(out), "--cache-dir", str(tmp_path)])
    assert code == 2
    assert "error: feature_extractor 'inception' needs InceptionV3 weights" in (
        capsys.readouterr().err
    )
    assert not (out / "cells").exists()
