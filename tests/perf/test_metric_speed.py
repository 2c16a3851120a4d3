"""What scoring a cell costs, beside what training it costs, measured in one run.

pytest tests/perf --benchmark-only --benchmark-columns=min,median,max,rounds

Cases:
- `bundle`: everything a finished cell's samples get (features, FID, KID,
  precision/recall, density/coverage, IS, one artifact rate) on 10,000
  samples against the 10,000 MNIST test images, the reference side warm as
  it is after a run's first cell;
- `reference`: building that reference side, once per run;
- `kid_ours` / `kid_torch_fidelity`: KID alone, ours against torch-fidelity's;
- `inception_fid`: torch-fidelity's InceptionV3 FID on the same images with
  random weights (timing does not depend on them);
- `quick_cell_training`: one cell of the `quick` preset (a DCGAN, one epoch
  of the 60,000 MNIST images, batch 64), which the bundle is compared with.

InceptionV3 scores about 10 images a second on a 2-core CPU, so 10,000 vs
10,000 takes about 35 minutes there; `GAN_ROBUSTNESS_PERF_INCEPTION_IMAGES=N`
times it on the first N of each set instead (its cost is linear in N).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch_fidelity
from torch_fidelity.metric_kid import kid_features_to_metric

from benchmark.artifacts import artifact_rate, load_or_train_detector
from benchmark.data import load_mnist
from benchmark.matrix import load_matrix
from benchmark.metrics import (
    KID_SEED,
    Reference,
    cached_features,
    extract_features,
    load_or_train_extractor,
    score_features,
)
from benchmark.training import train_gan
from corruptions import CORRUPTIONS
from gans import GANS
from tests.random_inception import write_random_inception_weights

CPU = torch.device("cpu")
IMAGES = 10000
INCEPTION_IMAGES = int(os.environ.get("GAN_ROBUSTNESS_PERF_INCEPTION_IMAGES", IMAGES))


@pytest.fixture(scope="module")
def setting(data_dir: Path, cache_dir: Path) -> dict:
    train = load_mnist("train", data_dir, cache_dir)
    test = load_mnist("test", data_dir, cache_dir)
    extractor = load_or_train_extractor(train, test, cache_dir, CPU)
    real = cached_features(test.images, f"mnist-ref-{test.checksum}", extractor, cache_dir, CPU)
    gaussian = CORRUPTIONS.create("gaussian", {})
    detector = load_or_train_detector(gaussian, train, test, cache_dir, CPU)
    samples = train.images[:IMAGES]  # stands in for generated samples: timing is the same
    return {
        "train": train, "test": test, "extractor": extractor, "real": real,
        "reference": Reference(real), "detector": detector, "samples": samples,
    }  # fmt: skip


def test_perf_bundle(benchmark: pytest.FixtureRequest, setting: dict) -> None:
    def bundle() -> dict[str, float]:
        fake = extract_features(setting["samples"], setting["extractor"], CPU)
        values = score_features(fake, setting["reference"])
        values["artifact_rate"] = artifact_rate(setting["samples"], setting["detector"], CPU)
        return values

    values = benchmark.pedantic(bundle, rounds=5, warmup_rounds=1)
    assert values["fid"] < 2.0  # real images against real images


def test_perf_reference(benchmark: pytest.FixtureRequest, setting: dict) -> None:
    benchmark.pedantic(Reference, args=(setting["real"],), rounds=3)


def test_perf_kid_ours(benchmark: pytest.FixtureRequest, setting: dict) -> None:
    fake = extract_features(setting["samples"], setting["extractor"], CPU).features
    reference = setting["reference"]
    real = reference.features.features

    def kid() -> tuple[float, float]:
        return reference.kid_plan(len(fake), 1000, 100, KID_SEED).kid(fake, real)

    benchmark.pedantic(kid, rounds=5, warmup_rounds=1)


def test_perf_kid_torch_fidelity(benchmark: pytest.FixtureRequest, setting: dict) -> None:
    fake = extract_features(setting["samples"], setting["extractor"], CPU).features
    real = setting["real"].features
    benchmark.pedantic(
        kid_features_to_metric, args=(fake, real),
        kwargs={"kid_subset_size": 1000, "verbose": False}, rounds=5,
    )  # fmt: skip


class _RGB(torch.utils.data.Dataset):
    """uint8 `(N, 28, 28)` grey images as the `(3, 28, 28)` items torch-fidelity reads."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index].expand(3, -1, -1)


def test_perf_inception_fid(
    benchmark: pytest.FixtureRequest, setting: dict, tmp_path: Path
) -> None:
    weights = write_random_inception_weights(tmp_path / "random-inception.pth")
    fake = _RGB(setting["samples"][:INCEPTION_IMAGES])
    real = _RGB(setting["test"].images[:INCEPTION_IMAGES])
    benchmark.extra_info["images"] = INCEPTION_IMAGES

    def inception_fid() -> dict[str, float]:
        return torch_fidelity.calculate_metrics(
            input1=fake, input2=real, fid=True, cuda=False, verbose=False,
            batch_size=64, save_cpu_ram=True,
            feature_extractor="inception-v3-compat",
            feature_extractor_weights_path=str(weights),
        )  # fmt: skip

    benchmark.pedantic(inception_fid, rounds=1)


def test_perf_quick_cell_training(benchmark: pytest.FixtureRequest, setting: dict) -> None:
    cell = load_matrix("quick").cells()[0]

    def train() -> int:
        torch.manual_seed(0)
        gan = GANS.create(cell.gan, dict(cell.gan_params))
        gan.setup(CPU)
        rng = torch.Generator().manual_seed(0)
        return train_gan(gan, setting["train"].images, cell.training, CPU, rng).epochs_done

    assert benchmark.pedantic(train, rounds=1) == 1
