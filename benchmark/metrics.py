"""Sample-quality metrics on features of a small MNIST classifier.

The classifier is trained once on clean MNIST train, cached on disk under the
hash of its recipe and data, and registered with torch-fidelity as the feature
extractor `mnist-cnn`; torch-fidelity then computes FID, KID and
precision/recall of generated samples against clean MNIST test.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn

from benchmark.data import ImageSet
from corruptions.idx import write_atomic

logger = logging.getLogger(__name__)

EXTRACTOR_NAME = "mnist-cnn"
# NOTE: MnistCNN inference runs in batches of this many images: ~1.5x faster than
# 1000 on 2 cores (the activations stay in cache), with bit-identical outputs.
INFERENCE_BATCH = 250
FEATURE_LAYER = "features"
LOGITS_LAYER = "logits"


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that determines the classifier's weights; its hash names the cache entry."""

    architecture: str = "cnn-s2-32-64-bn128"
    epochs: int = 4
    batch_size: int = 256
    lr: float = 2e-3  # peak; cosine decay to zero over the run
    seed: int = 0


class MnistCNN(nn.Module):
    """Two strided convolutions and a 128-unit feature layer: 128 features and 10 logits.

    The features are batch-normalised and taken before the ReLU, so they are
    roughly unit-scale: KID's cubic kernel `(x.y / d + 1) ** 3` assumes features
    of that order, as InceptionV3's are.
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(),   # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128),
        )  # fmt: skip
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(128, classes))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features `(B, 128)` and logits `(B, classes)` of images `(B, 1, 28, 28)` in [0, 1]."""
        features = self.body((images - 0.1307) / 0.3081)
        return features, self.head(features)


@dataclass(frozen=True)
class Extractor:
    """A feature network registered with torch-fidelity, its weights and what identifies them.

    Attributes:
        name: torch-fidelity's registry name (`mnist-cnn`, `inception-v3-compat`).
        path: the weights file.
        hash: 12 hex digits naming these weights; stored beside every number.
        test_accuracy: MNIST test accuracy of the digit classifier; None for others.
        feature_layer: the layer of FID, KID, precision/recall and density/coverage.
        logits_layer: the layer of the inception score.
        channels: 3 where the network wants RGB; grey images are repeated.
        batch_size: images per forward pass.
    """

    name: str
    path: Path
    hash: str
    test_accuracy: float | None = None
    feature_layer: str = FEATURE_LAYER
    logits_layer: str = LOGITS_LAYER
    channels: int = 1
    batch_size: int = INFERENCE_BATCH


class MnistFeatureExtractor(torch_fidelity.FeatureExtractorBase):
    """torch-fidelity's view of `MnistCNN`: uint8 batches (B, 1, 28, 28) in, features out."""

    def __init__(self, name: str, features_list: list[str], **kwargs: Any) -> None:
        super().__init__(name, features_list)
        path = kwargs.get("feature_extractor_weights_path")
        if path is None:
            raise ValueError(f"{EXTRACTOR_NAME} needs feature_extractor_weights_path")
        self.model = MnistCNN()
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.eval()

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (FEATURE_LAYER, LOGITS_LAYER)

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return LOGITS_LAYER if metric == "isc" else FEATURE_LAYER

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, logits = self.model(images.float() / 255.0)
        by_name = {FEATURE_LAYER: features, LOGITS_LAYER: logits}
        return tuple(by_name[name] for name in self.features_list)


if EXTRACTOR_NAME not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor(EXTRACTOR_NAME, MnistFeatureExtractor)


def train_classifier(
    train: ImageSet,
    test: ImageSet,
    recipe: ClassifierRecipe,
    device: torch.device,
    classes: int = 10,
) -> tuple[MnistCNN, float]:
    """Train `MnistCNN` on `train` by `recipe`; returns the model and its accuracy on `test`."""
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = MnistCNN(classes).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    steps = recipe.epochs * -(-len(train.images) // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    images = train.images.to(device)
    labels = train.labels.to(device)

    model.train()
    for epoch in range(recipe.epochs):
        order = torch.randperm(len(images), generator=generator).to(device)
        for start in range(0, len(images), recipe.batch_size):
            batch = order[start : start + recipe.batch_size]
            _, logits = model(images[batch].unsqueeze(1).float() / 255.0)
            loss = F.cross_entropy(logits, labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
        logger.debug("classifier epoch=%d loss=%.4f", epoch + 1, loss.item())

    accuracy = classifier_accuracy(model, test, device)
    return model.cpu(), accuracy


@torch.no_grad()
def classifier_accuracy(model: MnistCNN, test: ImageSet, device: torch.device) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(test.images), INFERENCE_BATCH):
        stop = start + INFERENCE_BATCH
        batch = test.images[start:stop].unsqueeze(1).float().to(device) / 255.0
        _, logits = model(batch)
        correct += (logits.argmax(1).cpu() == test.labels[start:stop]).sum().item()
    return correct / len(test.images)


def extractor_hash(train: ImageSet, test: ImageSet, recipe: ClassifierRecipe | None = None) -> str:
    """The 12-hex-digit hash of the classifier's recipe and data, known before any training."""
    key = json.dumps(
        {
            "recipe": asdict(recipe or ClassifierRecipe()),
            "train": train.checksum,
            "test": test.checksum,
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def load_or_train_extractor(
    train: ImageSet,
    test: ImageSet,
    cache_dir: Path,
    device: torch.device,
    recipe: ClassifierRecipe | None = None,
) -> Extractor:
    """The cached classifier for `recipe` and this data, training it on a cache miss.

    Returns:
        The extractor's weights path, hash and MNIST test accuracy.
    """
    recipe = recipe or ClassifierRecipe()
    digest = extractor_hash(train, test, recipe)
    folder = cache_dir / "extractors"
    weights = folder / f"{EXTRACTOR_NAME}-{digest}.pt"
    info = folder / f"{EXTRACTOR_NAME}-{digest}.json"
    if weights.exists() and info.exists():
        accuracy = json.loads(info.read_text())["test_accuracy"]
        return Extractor(EXTRACTOR_NAME, weights, digest, accuracy)

    logger.info("training feature extractor name=%s hash=%s", EXTRACTOR_NAME, digest)
    model, accuracy = train_classifier(train, test, recipe, device)
    write_atomic(weights, lambda handle: torch.save(model.state_dict(), handle))
    info.write_text(json.dumps({"recipe": asdict(recipe), "test_accuracy": accuracy}, indent=2))
    logger.info("feature extractor hash=%s test_accuracy=%.4f", digest, accuracy)
    return Extractor(EXTRACTOR_NAME, weights, digest, accuracy)


@dataclass(frozen=True)
class Features:
    """What the extractor sees of a set of images.

    Attributes:
        features: float32 `(N, 128)`, the layer FID, KID, precision/recall and
            density/coverage use.
        logits: float32 `(N, 10)`, the layer of the classifier-based inception score.
    """

    features: torch.Tensor
    logits: torch.Tensor


@torch.no_grad()
def extract_features(images: torch.Tensor, extractor: Extractor, device: torch.device) -> Features:
    """Features and logits of uint8 images `(N, 28, 28)` or `(N, 1, 28, 28)`, on the CPU."""
    model = _feature_network(extractor, device)
    images = images.reshape(-1, 1, 28, 28)
    parts = []
    for chunk in images.split(extractor.batch_size):
        chunk = chunk.to(device).expand(-1, extractor.channels, -1, -1)
        parts.append(model(chunk))
    features = torch.cat([p[0] for p in parts]).float().cpu()
    logits = torch.cat([p[1] for p in parts]).float().cpu()
    return Features(features, logits)


@functools.lru_cache(maxsize=2)
def _feature_network(extractor: Extractor, device: torch.device) -> torch.nn.Module:
    return torch_fidelity.utils.create_feature_extractor(
        extractor.name,
        [extractor.feature_layer, extractor.logits_layer],
        cuda=device.type == "cuda",
        feature_extractor_weights_path=str(extractor.path),
        verbose=False,
    )


def cached_features(
    images: torch.Tensor, name: str, extractor: Extractor, cache_dir: Path, device: torch.device
) -> Features:
    """`extract_features` of a fixed image set, cached under `name` and the extractor's hash."""
    path = cache_dir / "features" / f"{name}-{extractor.hash}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=True)
        return Features(saved["features"], saved["logits"])
    result = extract_features(images, extractor, device)
    saved = {"features": result.features, "logits": result.logits}
    write_atomic(path, lambda handle: torch.save(saved, handle))
    return result


def score_samples(
    samples: torch.Tensor,
    reference: ImageSet,
    extractor: Extractor,
    cache_dir: Path,
    device: torch.device,
    samples_cache_name: str | None = None,
) -> dict[str, float]:
    """Every sample metric of `samples` against `reference`, on the extractor's features.

    Args:
        samples: uint8 tensor `(N, 28, 28)` or `(N, 1, 28, 28)`, N >= 2.
        reference: the images to compare with (clean MNIST test); their
            features are cached under `cache_dir`, and what the metrics need
            of them (FID statistics, k-NN radii, KID's real-real terms) is kept
            for the rest of the process.
        extractor: the classifier from `load_or_train_extractor`.
        cache_dir: the benchmark's cache folder.
        device: where features are computed.
        samples_cache_name: cache the samples' features under this name too
            (for fixed sets such as MNIST train); None computes them afresh.

    Returns:
        See `score_features`.
    """
    name = f"mnist-ref-{reference.checksum}"
    key = (name, extractor.hash)
    if key not in _REFERENCES:
        real = cached_features(reference.images, name, extractor, cache_dir, device)
        _REFERENCES.clear()  # one reference at a time: its k-NN radii and KID terms
        _REFERENCES[key] = Reference(real)
    if samples_cache_name is None:
        fake = extract_features(samples, extractor, device)
    else:
        fake = cached_features(samples, samples_cache_name, extractor, cache_dir, device)
    return score_features(fake, _REFERENCES[key])


class Reference:
    """The real side of every metric, computed once and reused for every set scored against it.

    Holds the real features, their FID statistics, their k-NN radii, and KID's
    real-real kernel sums per subset plan.
    """

    def __init__(self, real: Features, k_prc: int = 3, k_dc: int = 5) -> None:
        from torch_fidelity import metric_fid

        self.features = real
        self.k_prc, self.k_dc = k_prc, k_dc
        self.fid_statistics = metric_fid.fid_features_to_statistics(real.features)
        points = real.features.float()
        self.squared_norms = points.square().sum(1)
        self.squared_radii = _knn_squared_radii(points, (k_prc, k_dc))
        self._kid_plans: dict[tuple[int, int, int, int], KidPlan] = {}

    def kid_plan(self, fakes: int, subset: int, subsets: int, seed: int) -> KidPlan:
        """Subset indices for `fakes` generated features, with the real-real term of each."""
        key = (fakes, subset, subsets, seed)
        if key not in self._kid_plans:
            self._kid_plans[key] = KidPlan.draw(
                self.features.features, fakes, subset, subsets, seed
            )
        return self._kid_plans[key]


def score_features(
    fake: Features, real: Features | Reference, kid_subsets: int = 100, kid_subset_size: int = 1000
) -> dict[str, float]:
    """Metrics of generated against real features.

    FID and the inception score are torch-fidelity's own functions (IS: 10
    splits on the classifier's logits). KID is torch-fidelity's estimator
    (unbiased MMD^2, kernel `(x.y / d + 1) ** 3`, `kid_subsets` subsets of
    min(`kid_subset_size`, N) drawn as torch-fidelity draws them) computed in
    torch, with the real-real terms kept in the `Reference`. Precision/recall
    (k = 3, torch-fidelity's convention) and density/coverage (k = 5, Naeem et
    al. 2020) share one pass over the pairwise distances in `manifold_metrics`.

    Args:
        fake: the generated set's features and logits, N >= 2 rows.
        real: the reference's features, or a `Reference` made of them (reused
            across calls, which saves most of the work).

    Returns:
        `fid`, `kid`, `kid_std`, `precision`, `recall`, `density`, `coverage`,
        `isc`, `isc_std`.
    """
    from torch_fidelity import metric_fid, metric_isc

    reference = real if isinstance(real, Reference) else Reference(real)
    values: dict[str, float] = {}
    statistics = metric_fid.fid_features_to_statistics(fake.features)
    fid = metric_fid.fid_statistics_to_metric(statistics, reference.fid_statistics, verbose=False)
    values["fid"] = fid[metric_fid.KEY_METRIC_FID]

    subset = min(kid_subset_size, len(fake.features), len(reference.features.features))
    plan = reference.kid_plan(len(fake.features), subset, kid_subsets, KID_SEED)
    values["kid"], values["kid_std"] = plan.kid(fake.features, reference.features.features)

    values.update(manifold_metrics(fake.features, reference))

    isc = metric_isc.isc_features_to_metric(fake.logits)
    values["isc"] = isc[metric_isc.KEY_METRIC_ISC_MEAN]
    values["isc_std"] = isc[metric_isc.KEY_METRIC_ISC_STD]
    return {name: float(value) for name, value in values.items()}


KID_SEED = 2020  # torch-fidelity's default rng_seed: the same subsets as its own KID


def _poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KID's kernel `(a.b / d + 1) ** 3` between rows of `a` and `b`."""
    return torch.addmm(torch.ones(()), a, b.T, alpha=1.0 / a.shape[1]).pow_(3)


def _off_diagonal_mean(kernel: torch.Tensor) -> torch.Tensor:
    count = len(kernel)
    total = kernel.sum(dtype=torch.float64) - kernel.diagonal().sum(dtype=torch.float64)
    return total / (count * (count - 1))


@dataclass(frozen=True)
class KidPlan:
    """KID's subsets for one (N fakes, M reals) pair of sizes, and each subset's real-real term.

    The indices are those of torch-fidelity's `kid_features_to_metric` (a numpy
    `RandomState(seed)` choosing fake then real rows, without replacement,
    per subset), so both give the same KID up to float rounding.
    """

    fake_indices: tuple[np.ndarray, ...]
    real_indices: tuple[np.ndarray, ...]
    real_terms: torch.Tensor  # float64 (subsets,): off-diagonal mean of each real-real kernel

    @classmethod
    def draw(cls, real: torch.Tensor, fakes: int, subset: int, subsets: int, seed: int) -> KidPlan:
        if subset < 2:
            raise ValueError(f"KID needs at least 2 samples per set, got {subset}")
        rng = np.random.RandomState(seed)
        fake_indices, real_indices = [], []
        for _ in range(subsets):
            fake_indices.append(rng.choice(fakes, subset, replace=False))
            real_indices.append(rng.choice(len(real), subset, replace=False))
        real = real.float()
        terms = [_off_diagonal_mean(_poly_kernel(real[i], real[i])) for i in real_indices]
        return cls(tuple(fake_indices), tuple(real_indices), torch.stack(terms))

    def kid(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[float, float]:
        """Mean and standard deviation over subsets of the unbiased MMD^2 estimate."""
        fake, real = fake.float(), real.float()
        estimates = []
        for fake_rows, real_rows, real_term in zip(
            self.fake_indices, self.real_indices, self.real_terms, strict=True
        ):
            x, y = fake[fake_rows], real[real_rows]
            cross = _poly_kernel(x, y).mean(dtype=torch.float64)
            estimates.append(_off_diagonal_mean(_poly_kernel(x, x)) + real_term - 2 * cross)
        values = torch.stack(estimates)
        return values.mean().item(), values.std(unbiased=False).item()


def _squared_distances(
    rows: torch.Tensor, points: torch.Tensor, point_norms: torch.Tensor
) -> torch.Tensor:
    """`(len(rows), len(points))` squared Euclidean distances, via one matrix product."""
    distances = torch.addmm(point_norms[None, :], rows, points.T, alpha=-2.0)
    return distances.add_(rows.square().sum(1)[:, None]).clamp_min_(0.0)


def _knn_squared_radii(
    points: torch.Tensor, ks: tuple[int, ...], chunk: int = 512
) -> list[torch.Tensor]:
    """Squared distance from each point to its k-th nearest other point, for each k."""
    norms = points.square().sum(1)
    radii: list[list[torch.Tensor]] = [[] for _ in ks]
    for start in range(0, len(points), chunk):
        rows = points[start : start + chunk]
        distances = _squared_distances(rows, points, norms)
        # each row's own point is at distance 0: its nearest "neighbour"
        index = torch.arange(len(rows))
        distances[index, index + start] = -1.0
        nearest = distances.topk(max(ks) + 1, dim=1, largest=False).values
        for out, k in zip(radii, ks, strict=True):
            out.append(nearest[:, k])
    return [torch.cat(r) for r in radii]


def manifold_metrics(
    fake: torch.Tensor, real: torch.Tensor | Reference, k_prc: int = 3, k_dc: int = 5,
    chunk: int = 512,
) -> dict[str, float]:  # fmt: skip
    """Precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

    Precision: share of fakes inside some real k_prc-NN ball (`<=`, as
    torch-fidelity). Recall: share of reals inside some fake k_prc-NN ball.
    Density: mean count of real k_dc-NN balls holding a fake, over k_dc.
    Coverage: share of real k_dc-NN balls holding at least one fake (`<`, as prdc).
    Distances are compared squared, in float32.

    Args:
        fake: float tensor `(N, D)`.
        real: float tensor `(M, D)`, or a `Reference` holding its k-NN radii.

    Returns:
        `precision`, `recall`, `density`, `coverage`.
    """
    if not isinstance(real, Reference):
        real = Reference(Features(real, torch.zeros(len(real), 1)), k_prc, k_dc)
    if (real.k_prc, real.k_dc) != (k_prc, k_dc):
        raise ValueError(f"the reference holds radii for k={real.k_prc, real.k_dc}")
    points = real.features.features.float()
    real_prc, real_dc = real.squared_radii
    fake = fake.float()
    (fake_prc,) = _knn_squared_radii(fake, (k_prc,), chunk)

    precise = torch.zeros(len(fake), dtype=torch.bool)
    balls_holding = torch.zeros(len(fake), dtype=torch.int32)
    recalled = torch.zeros(len(points), dtype=torch.bool)
    covered = torch.zeros(len(points), dtype=torch.bool)
    for start in range(0, len(fake), chunk):
        # (chunk of fakes, all reals)
        distances = _squared_distances(fake[start : start + chunk], points, real.squared_norms)
        precise[start : start + chunk] = (distances <= real_prc).any(dim=1)
        inside = distances < real_dc
        balls_holding[start : start + chunk] = inside.sum(dim=1, dtype=torch.int32)
        covered |= inside.any(dim=0)
        recalled |= (distances <= fake_prc[start : start + chunk, None]).any(dim=0)

    return {
        "precision": precise.float().mean().item(),
        "recall": recalled.float().mean().item(),
        "density": balls_holding.double().mean().item() / k_dc,
        "coverage": covered.float().mean().item(),
    }


_REFERENCES: dict[tuple[str, str], Reference] = {}
