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
from torch.utils.data import Dataset

from benchmark.data import ImageSet

logger = logging.getLogger(__name__)

EXTRACTOR_NAME = "mnist-cnn"
FEATURE_LAYER = "features"
LOGITS_LAYER = "logits"

# torch-fidelity's result keys -> the names we store
_METRIC_NAMES = {
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid",
    "kernel_inception_distance_std": "kid_std",
    "precision": "precision",
    "recall": "recall",
}


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

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(),   # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.ReLU(),  # (B, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.BatchNorm1d(128),
        )  # fmt: skip
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(128, 10))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features `(B, 128)` and logits `(B, 10)` of float images `(B, 1, 28, 28)` in [0, 1]."""
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


class _Uint8Images(Dataset):
    """uint8 images `(N, 28, 28)` or `(N, 1, 28, 28)` as the Dataset torch-fidelity reads."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.reshape(-1, 1, 28, 28)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def train_classifier(
    train: ImageSet, test: ImageSet, recipe: ClassifierRecipe, device: torch.device
) -> tuple[MnistCNN, float]:
    """Train `MnistCNN` on `train` by `recipe`; returns the model and its accuracy on `test`."""
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = MnistCNN().to(device)
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
    folder.mkdir(parents=True, exist_ok=True)
    partial = weights.with_suffix(".partial")
    torch.save(model.state_dict(), partial)
    partial.replace(weights)
    info.write_text(json.dumps({"recipe": asdict(recipe), "test_accuracy": accuracy}, indent=2))
    logger.info("feature extractor hash=%s test_accuracy=%.4f", digest, accuracy)
    return Extractor(weights, digest, accuracy)


def score_samples(
    samples: torch.Tensor,
    reference: ImageSet,
    extractor: Extractor,
    cache_dir: Path,
    device: torch.device,
    samples_cache_name: str | None = None,
) -> dict[str, float]:
    """FID, KID and precision/recall of `samples` against `reference`, on the extractor's features.

    Args:
        samples: uint8 tensor `(N, 28, 28)` or `(N, 1, 28, 28)`, N >= 2.
        reference: the images to compare with (clean MNIST test); their
            features and statistics are cached under `cache_dir`.
        extractor: the classifier from `load_or_train_extractor`.
        cache_dir: the benchmark's cache folder.
        device: where features are computed.
        samples_cache_name: cache the samples' features under this name too
            (for fixed sets such as MNIST train); None computes them afresh.

    Returns:
        `fid`, `kid`, `kid_std`, `precision`, `recall`.
    """
    count = min(len(samples), len(reference.images))
    result = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(samples),
        input2=_Uint8Images(reference.images),
        input1_cache_name=samples_cache_name and f"{samples_cache_name}-{extractor.hash}",
        input2_cache_name=f"mnist-ref-{reference.checksum}-{extractor.hash}",
        cache=True,
        cache_root=str(cache_dir / "fidelity"),
        feature_extractor=EXTRACTOR_NAME,
        feature_extractor_weights_path=str(extractor.path),
        fid=True,
        kid=True,
        kid_subset_size=min(1000, count),
        prc=True,
        cuda=device.type == "cuda",
        batch_size=500,
        save_cpu_ram=True,  # no DataLoader worker processes: the images are in memory
        verbose=False,
    )
    return {ours: float(result[theirs]) for theirs, ours in _METRIC_NAMES.items()}
