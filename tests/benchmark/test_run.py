"""End to end: the smoke preset through the CLI on real MNIST, resume, report and failures."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest
import torch

import benchmark.metrics
import benchmark.runner as runner
from benchmark.cli import main
from benchmark.data import load_mnist
from benchmark.matrix import load_matrix, parse_matrix
from benchmark.runner import RunContext, run_cell
from benchmark.training import train_gan
from corruptions import CORRUPTIONS
from gans import GAN, GANS
from gans.vanilla import VanillaGAN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "smoke"
    code = main(["run", "--matrix", "smoke", "--data-dir", str(data_dir),
                 "--cache-dir", str(cache_dir), "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0
    return out


def _rows(run_dir: Path, query: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return db.execute(query).fetchall()


def test_run_smoke_stores_every_cell_with_metrics(smoke_run: Path) -> None:
    cells = _rows(smoke_run, "SELECT id, corruption, severity, status FROM cells ORDER BY severity")
    assert [(c[1], c[2], c[3]) for c in cells] == [
        ("clean", 0.0, "done"),
        ("gaussian", 0.5, "done"),
    ]
    assert [c[0] for c in cells] == [c.id for c in load_matrix("smoke").cells()]

    metrics = _rows(
        smoke_run, "SELECT name, value, extractor, num_samples, num_reference FROM metrics"
    )
    names = {
        "fid",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "density",
        "coverage",
        "isc",
        "isc_std",
    }
    # each cell: its samples' metrics and its training set's (data_*)
    assert sorted(m[0] for m in metrics) == sorted(2 * [*names, *(f"data_{n}" for n in names)])
    assert all(
        math.isfinite(m[1]) and m[2] == "mnist-cnn" and m[3] == 200 and m[4] == 10000
        for m in metrics
    )

    # 256 images / batch 64 = 4 steps an epoch, 2 epochs, 4 losses a step
    assert _rows(smoke_run, "SELECT count(*) FROM history")[0][0] == 2 * 2 * 4 * 4
    assert _rows(smoke_run, "SELECT count(*) FROM baselines WHERE name = 'mnist_train'")[0][0] == 9


def test_run_smoke_stores_artifact_rates_for_every_role(smoke_run: Path) -> None:
    rows = _rows(
        smoke_run,
        "SELECT c.severity, a.corruption, a.value, a.detector, a.detector_accuracy, a.num_samples "
        "FROM artifact_rates a JOIN cells c ON c.id = a.cell_id ORDER BY c.severity",
    )
    # the clean cell stands for gaussian severity 0 too, so both have a gaussian rate
    assert [(r[0], r[1], r[3], r[5]) for r in rows] == [
        (0.0, "gaussian", "artifact-detector", 200),
        (0.5, "gaussian", "artifact-detector", 200),
    ]
    assert all(0.0 <= r[2] <= 1.0 and r[4] > 0.95 for r in rows)


def test_run_smoke_stores_the_training_sets_own_artifact_rate(smoke_run: Path) -> None:
    rows = _rows(
        smoke_run,
        "SELECT c.severity, a.corruption, a.value, a.num_samples "
        "FROM data_artifact_rates a JOIN cells c ON c.id = a.cell_id ORDER BY c.severity",
    )
    # 200 of the 256 training images; at severity 0.5 about half of them are corrupted
    assert [(r[0], r[1], r[3]) for r in rows] == [(0.0, "gaussian", 200), (0.5, "gaussian", 200)]
    assert rows[0][2] <= 0.02 and 0.4 <= rows[1][2] <= 0.6


def test_run_smoke_writes_artifacts(smoke_run: Path) -> None:
    for cell in load_matrix("smoke").cells():
        folder = smoke_run / "cells" / cell.id
        names = sorted(p.name for p in folder.iterdir())
        expected = ["generator.pt", "samples-epoch001.png", "samples-epoch002.png"]
        expected += ["samples.png", "samples.pt"]
        # only a corrupted cell has a dataset manifest
        assert names == sorted(expected + ([] if cell.severity == 0 else ["manifest.json"]))
        samples = torch.load(folder / "samples.pt")
        assert samples.shape == (200, 1, 28, 28) and samples.dtype == torch.uint8
    assert (smoke_run / "matrix.json").exists() and (smoke_run / "environment.json").exists()


def test_run_manifest_rebuilds_the_corrupted_dataset(
    smoke_run: Path, data_dir: Path, cache_dir: Path
) -> None:
    cell = load_matrix("smoke").cells()[1]
    manifest = json.loads((smoke_run / "cells" / cell.id / "manifest.json").read_text())
    assert manifest["corruption"] == "gaussian" and manifest["severity"] == 0.5
    assert manifest["size"] == 256 and manifest["corrupted_count"] == 128
    assert len(manifest["corrupted_indices"]) == 128 and manifest["contaminant_indices"] is None

    # rebuild from the manifest alone
    images = load_mnist("train", data_dir, cache_dir).images[: manifest["train_subset"]]
    corruption = CORRUPTIONS.create(manifest["corruption"], manifest["params"])
    rebuilt = corruption.corrupt(
        images, manifest["severity"], torch.Generator().manual_seed(manifest["data_seed"])
    )
    assert torch.nonzero(rebuilt.mask).flatten().tolist() == manifest["corrupted_indices"]
    assert runner.dataset_checksum(rebuilt.images) == manifest["sha256"]


def test_run_resume_does_no_training(
    smoke_run: Path,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run trained something again")

    # neither a GAN nor the feature classifier, even with an empty cache
    monkeypatch.setattr(runner, "train_gan", no_training)
    monkeypatch.setattr(benchmark.metrics, "train_classifier", no_training)
    before = _rows(smoke_run, "SELECT cell_id, name, value FROM metrics ORDER BY cell_id, name")
    code = main(["run", "--matrix", "smoke", "--data-dir", str(data_dir),
                 "--cache-dir", str(tmp_path / "empty"), "--out", str(smoke_run)])  # fmt: skip
    assert code == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 2 cached in" in capsys.readouterr().out
    assert (
        _rows(smoke_run, "SELECT cell_id, name, value FROM metrics ORDER BY cell_id, name")
        == before
    )


def test_run_is_deterministic_for_a_cell(
    smoke_run: Path, data_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    cell = load_matrix("smoke").cells()[1]
    result = run_cell(cell, RunContext(tmp_path, data_dir, cache_dir, torch.device("cpu")))
    assert result.status == "done"
    stored = dict(_rows(smoke_run, f"SELECT name, value FROM metrics WHERE cell_id = '{cell.id}'"))
    assert result.scores is not None and result.data_scores is not None
    assert {**result.scores.values, **result.data_scores.values} == stored


def test_report_prints_and_writes_tables(smoke_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(smoke_run)]) == 0
    out = capsys.readouterr().out
    header = (
        "| corruption | severity | gan | seeds | fid | data_fid | artifact_rate "
        "| data_artifact_rate | kid |"
    )
    assert header in out
    assert "| gaussian | 0 | vanilla | 1/1 |" in out and "| gaussian | 0.5 | vanilla | 1/1 |" in out
    assert "Baseline mnist_train (200 real images vs MNIST test)" in out
    detector = (
        r"\nArtifact detector gaussian \(blur_sigma=1\.0, noise_std=0\.2\): "
        r"artifact-detector [0-9a-f]{12}, held-out accuracy (0\.9[5-9]|1\.0)\d+\n"
    )
    assert re.search(detector, out), out
    assert (smoke_run / "report" / "metrics.csv").exists()
    assert (smoke_run / "report" / "metrics.md").read_text() in out


class _ExplodingGAN(VanillaGAN):
    """Turns its losses into NaN at the third step."""

    def train_step(self, real: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self._steps = getattr(self, "_steps", 0) + 1
        losses = super().train_step(real, generator)
        return {**losses, "d_loss": float("nan")} if self._steps == 3 else losses


@pytest.fixture
def exploding_gan() -> str:
    GANS.add("exploding_test", _ExplodingGAN)
    yield "exploding_test"
    GANS._entries.pop("exploding_test")


def test_run_diverged_cell_is_recorded_with_history(
    exploding_gan: str,
    data_dir: Path,
    cache_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    matrix = tmp_path / "nan.toml"
    matrix.write_text(
        f'[matrix]\nname = "nan"\n[[corruptions]]\nname = "gaussian"\nseverities = [0.0]\n'
        f'[[gans]]\nname = "{exploding_gan}"\n[training]\nepochs = 1\ntrain_subset = 256\n'
        "batch_size = 32\n[evaluation]\nsamples = 100\n"
    )
    out = tmp_path / "run"
    code = main(["run", "--matrix", str(matrix), "--data-dir", str(data_dir),
                 "--cache-dir", str(cache_dir), "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "1 cells: 0 done, 0 failed, 1 diverged" in capsys.readouterr().out
    ((status, error),) = _rows(out, "SELECT status, error FROM cells")
    assert status == "diverged" and error == "non-finite d_loss at step 3 (epoch 1)"
    assert _rows(out, "SELECT max(step) FROM history")[0][0] == 3
    # no sample metrics; the training set's own (data_*) are known before training
    names = _rows(out, "SELECT name FROM metrics")
    assert names and all(name.startswith("data_") for (name,) in names)


def test_run_failed_cell_does_not_stop_the_matrix(
    data_dir: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def flaky_train(gan: GAN, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory, pretend")
        return train_gan(gan, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "train_gan", flaky_train)
    matrix = parse_matrix({
        "matrix": {"name": "flaky"},
        "corruptions": [{"name": "gaussian", "severities": [0.0, 0.5]}],
        "gans": [{"name": "vanilla", "params": {"latent_dim": 8}}],
        "training": {"epochs": 1, "train_subset": 128, "batch_size": 64},
        "evaluation": {"samples": 100},
    })  # fmt: skip
    summary = runner.run_matrix(
        matrix, RunContext(tmp_path, data_dir, cache_dir, torch.device("cpu"))
    )
    assert (summary.done, summary.failed) == (1, 1)
    (error,) = _rows(tmp_path, "SELECT error FROM cells WHERE status = 'failed'")[0]
    assert "RuntimeError: out of memory, pretend" in error


def test_cli_rejects_unknown_matrix_with_exit_code_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--matrix", "smok"]) == 2
    err = capsys.readouterr().err
    assert "error: --matrix 'smok' is neither a preset (did you mean 'smoke'?)" in err


def test_cli_report_on_empty_directory_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no results.sqlite" in capsys.readouterr().err


def test_cli_cuda_without_a_gpu_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["run", "--matrix", "smoke", "--device", "cuda"]) == 2
    assert "--device 'cuda' was asked for but torch sees no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").exists(),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_run_crosses_every_builtin_corruption_with_both_gans(
    data_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    matrix = parse_matrix({
        "matrix": {"name": "crossing"},
        "corruptions": [
            {"name": "gaussian", "severities": [0.0, 0.3]},
            {"name": "block_pixels", "severities": [0.0, 0.3]},
            {"name": "contamination", "severities": [0.0, 0.3],
             "params": {"source": "fashion_mnist"}},
        ],
        "gans": [{"name": "vanilla", "params": {"network": "dcgan", "latent_dim": 8}},
                 {"name": "ambient", "params": {"network": "dcgan", "latent_dim": 8}}],
        "training": {"epochs": 1, "train_subset": 128, "batch_size": 64},
        "evaluation": {"samples": 100},
    })  # fmt: skip
    summary = runner.run_matrix(
        matrix, RunContext(tmp_path, data_dir, cache_dir, torch.device("cpu"))
    )
    # one shared clean cell + 3 corruptions x 2 GANs
    assert (summary.total, summary.done) == (7, 7)

    manifest = next(
        json.loads(p.read_text())
        for p in tmp_path.glob("cells/*/manifest.json")
        if json.loads(p.read_text())["corruption"] == "contamination"
    )
    # 128 MNIST + round(128 * 0.3 / 0.7) = 55 Fashion-MNIST images
    assert (manifest["size"], manifest["corrupted_count"]) == (183, 55)
    assert len(manifest["contaminant_indices"]) == 55 and manifest["contaminant_pool_size"] == 60000


@pytest.mark.parametrize("flags", [[], ["-k", "clean"]], ids=["all", "only-the-clean-cell"])
def test_run_missing_contaminant_data_is_rejected_before_training(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    flags: list[str],
) -> None:  # fmt: skip
    """The clean cell needs the contaminant too: its artifact rate under the emnist detector."""
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network unreachable")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the data is missing")

    monkeypatch.setattr(torchvision.datasets, "EMNIST", offline)
    monkeypatch.setattr(runner, "train_gan", no_training)
    monkeypatch.setattr(runner, "load_or_train_extractor", no_training)
    matrix = tmp_path / "emnist.toml"
    matrix.write_text(
        '[matrix]\nname = "emnist"\n[[corruptions]]\nname = "emnist"\nseverities = [0.0, 0.143]\n'
        '[[gans]]\nname = "vanilla"\n[training]\nepochs = 1\ntrain_subset = 64\n'
    )
    cache, out = str(tmp_path / "cache"), str(tmp_path / "run")
    options = ["--data-dir", str(data_dir), "--cache-dir", cache, "--out", out]
    code = main(["run", "--matrix", str(matrix), *options, *flags])
    assert code == 2
    assert "error: EMNIST split 'bymerge' is not on disk and could not be downloaded" in (
        capsys.readouterr().err
    )


def test_run_intermediate_evaluations_leave_training_unchanged(
    smoke_run: Path, data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    smoke = load_matrix("smoke")
    evaluation = dataclasses.replace(smoke.evaluation, epochs=(1, 2), epoch_samples=100)
    matrix = dataclasses.replace(smoke, evaluation=evaluation)
    out = tmp_path / "epochs"
    summary = runner.run_matrix(matrix, RunContext(out, data_dir, cache_dir, torch.device("cpu")))
    assert summary.done == 2

    rows = _rows(out, "SELECT cell_id, epoch, name, num_samples FROM epoch_metrics")
    assert sorted({(r[1], r[3]) for r in rows}) == [(1, 100), (2, 100)]
    assert len(rows) == 2 * 2 * 9  # cells x epochs x metrics
    rates = _rows(out, "SELECT epoch, corruption, num_samples FROM epoch_artifact_rates")
    assert sorted(rates) == [(1, "gaussian", 100)] * 2 + [(2, "gaussian", 100)] * 2

    # scoring mid-training draws from its own streams: the final metrics are the smoke run's
    query = "SELECT c.label, m.name, m.value FROM metrics m JOIN cells c ON c.id = m.cell_id"
    assert sorted(_rows(out, query)) == sorted(_rows(smoke_run, query))

    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Intermediate evaluations" in printed
    assert "| corruption | severity | gan | epoch | seeds | fid |" in printed
    assert (out / "report" / "metrics-by-epoch.csv").exists()
