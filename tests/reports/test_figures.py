"""Figures: every kind is drawn from a real run, the onset and the data baseline are on the
severity plot, missing sample grids get a placeholder, and the CI is Student's t."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import stats

from reports.figures import _severity_figure, file_stem, mean_and_ci, write_figures
from reports.tables import load_metrics, per_seed_table

pytestmark = pytest.mark.slow


def test_write_figures_draws_every_kind_in_both_formats(run_dir: Path, tmp_path: Path) -> None:
    paths = write_figures(run_dir, tmp_path, metrics=("fid", "artifact_rate"))
    names = {p.name for p in paths}
    assert names == {p.name for p in tmp_path.iterdir()}
    stems = ["severity-fid-gaussian", "severity-artifact_rate-gaussian", "mosaic-gaussian"]
    stems += ["epochs-fid-gaussian", "epochs-artifact_rate-gaussian"]
    for stem in stems:
        assert {f"{stem}.png", f"{stem}.svg"} <= names, stem
    losses = {n for n in names if n.startswith("losses-") and n.endswith(".png")}
    assert len(losses) == 6  # one per cell: the clean cell is shared by both GANs
    for path in paths:
        head = path.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if path.suffix == ".png" else b"<?xml" in head


def test_write_figures_svg_is_the_same_bytes_twice(run_dir: Path, tmp_path: Path) -> None:
    first = write_figures(run_dir, tmp_path / "a", metrics=("fid",), formats=("svg",))
    second = write_figures(run_dir, tmp_path / "b", metrics=("fid",), formats=("svg",))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_severity_figure_marks_the_onset_and_the_data_baseline(run_dir: Path) -> None:
    roles, metrics, _ = load_metrics(run_dir)
    rows = per_seed_table(roles, metrics)
    params = rows.corruption_params.iloc[0]
    vanilla = rows[rows.gan == "vanilla"].gan_params.iloc[0]
    onsets = {("gaussian", params, "vanilla", vanilla, "fid"): 0.5}

    figure = _severity_figure(rows, "fid", onsets)
    axes = figure.axes[0]
    labels = [line.get_label() for line in axes.lines]
    vertical = [line for line in axes.lines if list(line.get_xdata()) == [0.5, 0.5]]
    plt.close(figure)
    expected = {"vanilla", "ambient", "training data (data_fid)", "onset threshold (dotted)"}
    assert expected <= set(labels)
    assert len(vertical) == 1  # ambient has no onset given: only vanilla's is drawn
    assert len(axes.collections) == 2  # one CI band per GAN


def test_artifact_rate_figure_has_the_training_sets_rate_dashed(run_dir: Path) -> None:
    roles, metrics, _ = load_metrics(run_dir)
    rows = per_seed_table(roles, metrics)
    figure = _severity_figure(rows, "artifact_rate", {})
    (data,) = [line for line in figure.axes[0].lines if "data_artifact_rate" in line.get_label()]
    plt.close(figure)
    assert data.get_linestyle() == "--"
    assert list(data.get_xdata()) == [0.0, 0.5]
    low, high = data.get_ydata()
    assert low < 0.05 and 0.35 < high < 0.65  # about half the training set is corrupted


def test_mosaic_shows_a_placeholder_for_a_missing_grid(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.pt", "report*"))
    with sqlite3.connect(copy / "results.sqlite") as db:
        gone = [row[0] for row in db.execute(
            "SELECT id FROM cells WHERE gan = 'ambient' AND severity = 0.5"
        )]  # fmt: skip
    assert len(gone) == 2  # both seeds: the tile has no grid to fall back on
    for cell_id in gone:
        (copy / "cells" / cell_id / "samples.png").unlink()

    def tiles(folder: Path) -> int:
        (mosaic,) = write_figures(copy, folder, metrics=(), formats=("svg",))[-1:]
        assert mosaic.name == "mosaic-gaussian.svg"
        return mosaic.read_text().count("<image ")

    assert tiles(tmp_path / "partial") == 3  # of 2 severities x 2 GANs
    (copy / "cells" / gone[0] / "samples.png").write_bytes(
        (run_dir / "cells" / gone[0] / "samples.png").read_bytes()
    )
    assert tiles(tmp_path / "whole") == 4


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [3.5, 3.5], [0.1, 0.9, 0.4, 0.7, 0.2]])
def test_mean_and_ci_matches_scipy_t_interval(values: list[float]) -> None:
    mean, low, high = mean_and_ci(np.array(values))
    spread = stats.sem(values)
    expected = (
        (np.mean(values),) * 2 if spread == 0
        else stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=spread)
    )  # fmt: skip
    assert mean == pytest.approx(np.mean(values))
    assert (low, high) == pytest.approx(expected)


def test_mean_and_ci_of_one_value_collapses_and_ignores_nan() -> None:
    assert mean_and_ci(np.array([2.0, np.nan])) == (2.0, 2.0, 2.0)
    assert all(np.isnan(mean_and_ci(np.array([np.nan]))))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gaussian", "gaussian"),
        ("my corruption/v2", "my_corruption_v2"),
        ("..", "_"),
        (json.dumps({"a": 1}), "a_1"),
    ],
)
def test_file_stem_keeps_only_safe_characters(text: str, expected: str) -> None:
    assert file_stem(text) == expected
