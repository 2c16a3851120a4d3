"""Sample-quality metrics on features of a small MNIST classifier.

The classifier is trained once on clean MNIST train, cached on disk under the
hash of its recipe and data, and registered with torch-fidelity as the feature
extractor `mnist-cnn`; torch-fidelity then computes FID, KID and
precision/recall of generated samples against clean MNIST test.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn

from benchmark.data import ImageSet
from corruptions.idx import write_atomic

logger = logging.getLogger(__name__)

EXTRACTOR_NAME = "mnist-cnn"
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
    """A trained, cached classifier: where its weights are and what identifies them."""

    path: Path
    hash: str
    test_accuracy: float

    @property
    def name(self) -> str:
        return EXTRACTOR_NAME


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
    for start in range(0, len(test.images), 1000):
        batch = test.images[start : start + 1000].unsqueeze(1).float().to(device) / 255.0
        _, logits = model(batch)
        correct += (logits.argmax(1).cpu() == test.labels[start : start + 1000]).sum().item()
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
        return Extractor(weights, digest, accuracy)

    logger.info("training feature extractor name=%s hash=%s", EXTRACTOR_NAME, digest)
    model, accuracy = train_classifier(train, test, recipe, device)
    write_atomic(weights, lambda handle: torch.save(model.state_dict(), handle))
    info.write_text(json.dumps({"recipe": asdict(recipe), "test_accuracy": accuracy}, indent=2))
    logger.info("feature extractor hash=%s test_accuracy=%.4f", digest, accuracy)
    return Extractor(weights, digest, accuracy)


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
def extract_features(
    images: torch.Tensor, extractor: Extractor, device: torch.device, batch_size: int = 1000
) -> Features:
    """Features and logits of uint8 images `(N, 28, 28)` or `(N, 1, 28, 28)`, on the CPU."""
    model = torch_fidelity.utils.create_feature_extractor(
        EXTRACTOR_NAME,
        [FEATURE_LAYER, LOGITS_LAYER],
        cuda=device.type == "cuda",
        feature_extractor_weights_path=str(extractor.path),
        verbose=False,
    )
    images = images.reshape(-1, 1, 28, 28)
    parts = [model(chunk.to(device)) for chunk in images.split(batch_size)]
    features = torch.cat([p[0] for p in parts]).float().cpu()
    logits = torch.cat([p[1] for p in parts]).float().cpu()
    return Features(features, logits)


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
            features are cached under `cache_dir`.
        extractor: the classifier from `load_or_train_extractor`.
        cache_dir: the benchmark's cache folder.
        device: where features are computed.
        samples_cache_name: cache the samples' features under this name too
            (for fixed sets such as MNIST train); None computes them afresh.

    Returns:
        See `score_features`.
    """
    real = cached_features(
        reference.images, f"mnist-ref-{reference.checksum}", extractor, cache_dir, device
    )
    if samples_cache_name is None:
        fake = extract_features(samples, extractor, device)
    else:
        fake = cached_features(samples, samples_cache_name, extractor, cache_dir, device)
    return score_features(fake, real)


def score_features(fake: Features, real: Features) -> dict[str, float]:
    """Metrics of generated against real features.

    FID, KID and the inception score are torch-fidelity's own functions (KID:
    100 subsets of min(1000, N), degree-3 polynomial kernel; IS: 10 splits on
    the classifier's logits). Precision/recall (k = 3, torch-fidelity's
    convention) and density/coverage (k = 5, Naeem et al. 2020) share one pass
    over the pairwise distances in `manifold_metrics`.

    Returns:
        `fid`, `kid`, `kid_std`, `precision`, `recall`, `density`, `coverage`,
        `isc`, `isc_std`.
    """
    from torch_fidelity import metric_fid, metric_isc, metric_kid

    values: dict[str, float] = {}
    stats = [metric_fid.fid_features_to_statistics(f.features) for f in (fake, real)]
    fid = metric_fid.fid_statistics_to_metric(*stats, verbose=False)
    values["fid"] = fid[metric_fid.KEY_METRIC_FID]

    subset = min(1000, len(fake.features), len(real.features))
    kid = metric_kid.kid_features_to_metric(
        fake.features, real.features, kid_subset_size=subset, verbose=False
    )
    values["kid"] = kid[metric_kid.KEY_METRIC_KID_MEAN]
    values["kid_std"] = kid[metric_kid.KEY_METRIC_KID_STD]

    values.update(manifold_metrics(fake.features, real.features))

    isc = metric_isc.isc_features_to_metric(fake.logits)
    values["isc"] = isc[metric_isc.KEY_METRIC_ISC_MEAN]
    values["isc_std"] = isc[metric_isc.KEY_METRIC_ISC_STD]
    return {name: float(value) for name, value in values.items()}


def _knn_radii(points: torch.Tensor, ks: tuple[int, ...], chunk: int) -> list[torch.Tensor]:
    """Distance from each point to its k-th nearest other point, for each k."""
    radii: list[list[torch.Tensor]] = [[] for _ in ks]
    for rows in points.split(chunk):
        # (chunk, N); column 0 of the sorted distances is the point itself
        nearest = torch.cdist(rows, points).topk(max(ks) + 1, dim=1, largest=False).values
        for out, k in zip(radii, ks, strict=True):
            out.append(nearest[:, k])
    return [torch.cat(r) for r in radii]


def manifold_metrics(
    fake: torch.Tensor, real: torch.Tensor, k_prc: int = 3, k_dc: int = 5, chunk: int = 2048
) -> dict[str, float]:
    """Precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

    Precision: share of fakes inside some real k_prc-NN ball (`<=`, as
    torch-fidelity). Recall: share of reals inside some fake k_prc-NN ball.
    Density: mean count of real k_dc-NN balls holding a fake, over k_dc.
    Coverage: share of real k_dc-NN balls holding at least one fake (`<`, as prdc).

    Args:
        fake, real: float tensors `(N, D)` and `(M, D)`.

    Returns:
        `precision`, `recall`, `density`, `coverage`.
    """
    fake, real = fake.float(), real.float()
    real_prc, real_dc = _knn_radii(real, (k_prc, k_dc), chunk)
    (fake_prc,) = _knn_radii(fake, (k_prc,), chunk)

    precise = torch.zeros(len(fake), dtype=torch.bool)
    density = torch.zeros(len(fake))
    recalled = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), float("inf"))
    for start in range(0, len(fake), chunk):
        # (chunk of fakes, all reals)
        distances = torch.cdist(fake[start : start + chunk], real)
        precise[start : start + chunk] = (distances <= real_prc).any(dim=1)
        density[start : start + chunk] = (distances < real_dc).sum(dim=1) / k_dc
        fake_radii = fake_prc[start : start + chunk, None]
        recalled |= (distances <= fake_radii).any(dim=0)
        nearest_fake = torch.minimum(nearest_fake, distances.min(dim=0).values)

    return {
        "precision": precise.float().mean().item(),
        "recall": recalled.float().mean().item(),
        "density": density.mean().item(),
        "coverage": (nearest_fake < real_dc).float().mean().item(),
    }
