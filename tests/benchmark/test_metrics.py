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
    assert set(scores) == {
        "fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "isc", "isc_std"
    }  # fmt: skip
    assert scores["isc"] > 9.0  # 10 well-separated classes in equal shares: at most 10
    assert scores["fid"] < 2.0
    assert abs(scores["kid"]) < 0.01
    assert scores["precision"] > 0.7 and scores["recall"] > 0.7


def _numpy_kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1) ** 3, written out in numpy."""
    d, m, n = a.shape[1], len(a), len(b)
    k_aa = (a @ a.T / d + 1) ** 3
    k_bb = (b @ b.T / d + 1) ** 3
    k_ab = (a @ b.T / d + 1) ** 3
    same_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    same_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(same_a + same_b - 2 * k_ab.mean())


def _brute_force_manifold(fake: np.ndarray, real: np.ndarray, k_prc: int, k_dc: int) -> dict:
    """Precision, recall, density and coverage by explicit k-NN in numpy (float64)."""

    def radii(x: np.ndarray, k: int) -> np.ndarray:
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    cross = np.sqrt(((fake[:, None, :] - real[None, :, :]) ** 2).sum(-1))  # (fake, real)
    real_prc, real_dc, fake_prc = radii(real, k_prc), radii(real, k_dc), radii(fake, k_prc)
    return {
        "precision": float((cross <= real_prc[None, :]).any(1).mean()),
        "recall": float((cross <= fake_prc[:, None]).any(0).mean()),
        "density": float((cross < real_dc[None, :]).sum(1).mean() / k_dc),
        "coverage": float((cross.min(0) < real_dc).mean()),
    }


def _random_features(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(300, 16, generator=generator, dtype=torch.float64)
    fake = torch.randn(250, 16, generator=generator, dtype=torch.float64) * 1.2 + 0.3
    return fake, real


@pytest.mark.parametrize("seed", [0, 1])
def test_manifold_metrics_match_brute_force_knn(seed: int) -> None:
    from benchmark.metrics import manifold_metrics

    fake, real = _random_features(seed)
    ours = manifold_metrics(fake, real, k_prc=3, k_dc=5, chunk=64)
    expected = _brute_force_manifold(fake.numpy(), real.numpy(), 3, 5)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name


def test_manifold_metrics_agree_with_torch_fidelity_and_prdc() -> None:
    import prdc
    from torch_fidelity.metric_prc import prc_features_to_metric

    from benchmark.metrics import manifold_metrics

    fake, real = (t.float() for t in _random_features(2))
    ours = manifold_metrics(fake, real)
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, verbose=False)
    assert ours["precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert ours["recall"] == pytest.approx(theirs["recall"], abs=1e-6)
    reference = prdc.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    assert ours["density"] == pytest.approx(reference["density"], abs=1e-6)
    assert ours["coverage"] == pytest.approx(reference["coverage"], abs=1e-6)


def test_kid_matches_unbiased_numpy_mmd() -> None:
    from benchmark.metrics import Features, score_features

    fake, real = (t.float() for t in _random_features(3))
    real = real[:250]  # equal sizes: KID's one subset is then the whole of each set
    logits = torch.zeros(250, 10)
    scores = score_features(Features(fake, logits), Features(real, logits))
    expected = _numpy_kid(fake.double().numpy(), real.double().numpy())
    assert scores["kid"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["gaussian", "block_pixels", "contamination"])
def test_data_fid_and_artifact_rate_grow_with_severity_on_real_mnist(
    mnist: tuple, cache_dir: Path, name: str
) -> None:
    """The metric must see each built-in corruption: a perfect imitator's FID grows with severity.

    `emnist` is `contamination` with EMNIST, which cannot be had offline; the
    contamination case uses real Fashion-MNIST from Debian's package instead.
    """
    from benchmark.artifacts import artifact_rate, load_or_train_detector
    from corruptions import CORRUPTIONS
    from corruptions.sources import FASHION_SYSTEM_DIR

    params = {"source": "fashion_mnist"} if name == "contamination" else {}
    if name == "contamination" and not FASHION_SYSTEM_DIR.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    train, test, extractor = mnist
    corruption = CORRUPTIONS.create(name, params)
    corruption.prepare(None, cache_dir)

    detector = load_or_train_detector(corruption, train, test, cache_dir, torch.device("cpu"))
    assert detector.accuracy > 0.95

    fids, rates = [], []
    for severity in (0.0, 0.25, 0.5):
        data = corruption.corrupt(train.images[:3000], severity, torch.Generator().manual_seed(0))
        chosen = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(1))
        subset = data.images[chosen[:2000]]
        fids.append(score_samples(subset, test, extractor, cache_dir, torch.device("cpu"))["fid"])
        rates.append(artifact_rate(subset, detector, torch.device("cpu")))
    assert fids[0] < fids[1] < fids[2], fids
    assert rates[0] < rates[1] < rates[2], rates
    # a perfect imitator of the corrupted set is flagged at about the severity,
    # give or take the detector's own held-out error
    assert rates == pytest.approx([0.0, 0.25, 0.5], abs=max(0.03, 2 * (1 - detector.accuracy)))


def test_kid_uses_torch_fidelity_subsets_and_matches_its_value() -> None:
    from torch_fidelity.metric_kid import kid_features_to_metric

    from benchmark.metrics import KID_SEED, Features, Reference

    generator = torch.Generator().manual_seed(4)
    fake = torch.randn(600, 24, generator=generator) * 1.1 + 0.1
    real = torch.randn(500, 24, generator=generator)
    plan = Reference(Features(real, torch.zeros(500, 10))).kid_plan(600, 100, 20, KID_SEED)
    ours = plan.kid(fake, real)
    theirs = kid_features_to_metric(
        fake, real, kid_subsets=20, kid_subset_size=100, rng_seed=KID_SEED, verbose=False
    )
    assert ours[0] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-4)
    assert ours[1] == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-4)

    # and each subset's estimate is the float64 numpy MMD of those rows
    expected = [
        _numpy_kid(fake.double().numpy()[i], real.double().numpy()[j])
        for i, j in zip(plan.fake_indices, plan.real_indices, strict=True)
    ]
    assert ours[0] == pytest.approx(np.mean(expected), rel=1e-6)
    assert ours[1] == pytest.approx(np.std(expected), rel=1e-5)


def test_score_features_with_a_reference_equals_with_raw_features() -> None:
    from benchmark.metrics import Features, Reference, score_features

    fake, real = (t.float() for t in _random_features(5))
    logits = torch.randn(300, 10, generator=torch.Generator().manual_seed(0))
    fake_set, real_set = Features(fake, logits[:250]), Features(real, logits)
    reference = Reference(real_set)
    first = score_features(fake_set, reference)
    assert score_features(fake_set, reference) == first  # the kept KID plan changes nothing
    assert score_features(fake_set, real_set) == first


def test_manifold_metrics_count_duplicate_points_as_neighbours() -> None:
    from benchmark.metrics import manifold_metrics

    real = torch.randn(40, 8, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    real = torch.cat([real, real[:10]])  # ten points twice: their 1st neighbour is at 0
    fake = real[:30] + 0.01
    ours = manifold_metrics(fake, real, k_prc=3, k_dc=5, chunk=16)
    expected = _brute_force_manifold(fake.numpy(), real.numpy(), 3, 5)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
