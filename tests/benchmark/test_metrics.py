from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from benchmark.data import load_mnist
from benchmark.metrics import (
    Extractor,
    MnistFeatureExtractor,
    load_or_train_extractor,
    score_samples,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mnist(data_dir: Path, cache_dir: Path) -> tuple:
    train = load_mnist("train", data_dir, cache_dir)
    test = load_mnist("test", data_dir, cache_dir)
    extractor = load_or_train_extractor(train, test, cache_dir, torch.device("cpu"))
    return train, test, extractor


def _features(extractor: Extractor, images: torch.Tensor) -> np.ndarray:
    model = MnistFeatureExtractor(
        "mnist-cnn", ["features"], feature_extractor_weights_path=str(extractor.path)
    )
    with torch.no_grad():
        (features,) = model(images.reshape(-1, 1, 28, 28))
    return features.double().numpy()


def _numpy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance of two Gaussians fitted to feature rows, via scipy's sqrtm."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_extractor_classifier_reaches_99_percent(mnist: tuple) -> None:
    _, _, extractor = mnist
    assert extractor.test_accuracy >= 0.99
    assert len(extractor.hash) == 12


def test_extractor_is_cached_by_recipe_and_data(
    mnist: tuple, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, test, extractor = mnist
    import benchmark.metrics as metrics

    def no_training(*args: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(metrics, "train_classifier", no_training)
    assert load_or_train_extractor(train, test, cache_dir, torch.device("cpu")) == extractor


def test_fid_matches_independent_numpy_scipy(mnist: tuple, cache_dir: Path) -> None:
    train, test, extractor = mnist
    # a visibly different sample: inverted digits
    samples = 255 - train.images[:2000]
    scores = score_samples(samples, test, extractor, cache_dir, torch.device("cpu"))
    expected = _numpy_fid(_features(extractor, samples), _features(extractor, test.images))
    assert scores["fid"] == pytest.approx(expected, rel=1e-6)
    assert (
        expected
        > 10
        * score_samples(train.images[:2000], test, extractor, cache_dir, torch.device("cpu"))["fid"]
    )


def test_scores_of_real_images_are_near_perfect(mnist: tuple, cache_dir: Path) -> None:
    train, test, extractor = mnist
    scores = score_samples(train.images[:5000], test, extractor, cache_dir, torch.device("cpu"))
    assert set(scores) == {"fid", "kid", "kid_std", "precision", "recall"}
    assert scores["fid"] < 2.0
    assert abs(scores["kid"]) < 0.01
    assert scores["precision"] > 0.7 and scores["recall"] > 0.7
