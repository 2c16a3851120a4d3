"""The report's figures: metric against severity, metric over training, losses, sample mosaics.

Each is drawn with matplotlib's Agg backend from the run directory alone (its
`results.sqlite` and `cells/<id>/samples.png`) and saved as PNG and SVG under
`figures/`, named `severity-<metric>-<corruption>`, `epochs-<metric>-<corruption>`,
`losses-<cell id>` and `mosaic-<corruption>` (with `-2`, `-3`... where a
corruption is swept over several parameter sets).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # NOTE: files only; a report must draw on machines without a display

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator
from scipy import stats

from reports.tables import load_epoch_metrics, load_metrics, per_seed_table

logger = logging.getLogger(__name__)

DPI = 110
LOSS_POINTS = 400  # a loss curve is thinned to about this many steps before drawing
OnsetKey = tuple[str, str, str, str, str]  # corruption, its params, gan, its params, metric


def write_figures(
    run_dir: Path,
    out_dir: Path,
    metrics: Sequence[str] = ("fid", "artifact_rate"),
    onsets: Mapping[OnsetKey, float | None] | None = None,
    formats: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """Draw every figure of a run directory.

    Args:
        run_dir: a directory written by `python -m benchmark run`.
        out_dir: where the figures go; created if absent.
        metrics: the metrics drawn against severity and over training.
        onsets: the onset severity (or None) per (corruption, corruption params,
            gan, gan params, metric), marked on the severity figures.
        formats: `png`, `svg` or both.

    Returns:
        The paths written, in drawing order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    roles, long_metrics, _ = load_metrics(run_dir)
    per_seed = per_seed_table(roles, long_metrics)
    onsets = onsets or {}
    written: list[Path] = []

    with sns.axes_style("whitegrid"):
        for stem, corruption, params in _corruptions(roles):
            rows = per_seed[
                (per_seed.corruption == corruption) & (per_seed.corruption_params == params)
            ]
            for metric in metrics:
                if metric in rows and rows[metric].notna().any():
                    figure = _severity_figure(rows, metric, onsets)
                    written += _save(figure, out_dir / f"severity-{metric}-{stem}", formats)

        epoch_roles, epoch_metrics = load_epoch_metrics(run_dir)
        if not epoch_metrics.empty:
            epoch_rows = _epoch_rows(epoch_roles, epoch_metrics)
            for stem, corruption, params in _corruptions(epoch_roles):
                rows = epoch_rows[
                    (epoch_rows.corruption == corruption) & (epoch_rows.corruption_params == params)
                ]
                for metric in metrics:
                    if metric in rows and rows[metric].notna().any():
                        figure = _epoch_figure(rows, metric)
                        written += _save(figure, out_dir / f"epochs-{metric}-{stem}", formats)

        for cell_id, label, history in _histories(run_dir):
            figure = _loss_figure(label, history)
            written += _save(figure, out_dir / f"losses-{cell_id}", formats)

    for stem, corruption, params in _corruptions(roles):
        rows = roles[(roles.corruption == corruption) & (roles.corruption_params == params)]
        figure = _mosaic(Path(run_dir), rows)
        written += _save(figure, out_dir / f"mosaic-{stem}", formats)
    logger.info("figures written=%d dir=%s", len(written), out_dir)
    return written


def file_stem(text: str) -> str:
    """`text` made safe as a file name: runs of other characters become one `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "_"


def mean_and_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval of the mean.

    With fewer than two values the interval collapses onto the mean.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def _corruptions(roles: pd.DataFrame) -> Iterator[tuple[str, str, str]]:
    """(file stem, corruption, params) per corruption setting, numbered where one is swept."""
    settings = roles[["corruption", "corruption_params"]].drop_duplicates()
    settings = settings.sort_values(["corruption", "corruption_params"])
    for corruption, group in settings.groupby("corruption", sort=True):
        for number, params in enumerate(group.corruption_params, start=1):
            stem = file_stem(corruption) + (f"-{number}" if len(group) > 1 else "")
            yield stem, corruption, params


def _gan_names(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Legend name per (gan, params): the name, plus the params that differ between its rows."""
    names = {}
    pairs = rows[["gan", "gan_params"]].drop_duplicates()
    for gan, group in pairs.groupby("gan", sort=True):
        decoded = [json.loads(p) for p in group.gan_params]
        keys = sorted({k for p in decoded for k in p})
        varying = [k for k in keys if len({json.dumps(p.get(k)) for p in decoded}) > 1]
        for params, values in zip(group.gan_params, decoded, strict=True):
            shown = " ".join(f"{k}={values.get(k)}" for k in varying)
            names[(gan, params)] = gan + (f" ({shown})" if shown else "")
    return names


def _title(rows: pd.DataFrame) -> str:
    corruption = rows.corruption.iloc[0]
    params = json.loads(rows.corruption_params.iloc[0])
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return corruption + (f" ({shown})" if shown else "")


def _severity_figure(
    rows: pd.DataFrame, metric: str, onsets: Mapping[OnsetKey, float | None]
) -> plt.Figure:
    """Mean over seeds against severity, one line per GAN with its 95 % CI band, the onset
    marked, and the training data's own score dashed."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    names = _gan_names(rows)
    marked = False
    palette = sns.color_palette("colorblind", len(names))
    for color, ((gan, params), name) in zip(palette, names.items(), strict=True):
        line = rows[(rows.gan == gan) & (rows.gan_params == params)]
        curve = _by_severity(line, metric)
        axes.plot(curve.severity, curve["mean"], marker="o", color=color, label=name)
        axes.fill_between(curve.severity, curve.low, curve.high, color=color, alpha=0.2)

        onset = onsets.get((rows.corruption.iloc[0], rows.corruption_params.iloc[0],
                            gan, params, metric))  # fmt: skip
        if onset is not None:
            axes.axvline(onset, color=color, linestyle=":", linewidth=1.5)
            marked = True
            at = curve[np.isclose(curve.severity, onset)]
            if not at.empty:
                axes.plot(at.severity, at["mean"], marker="v", markersize=11, color=color)

    data = f"data_{metric}"
    if data in rows and rows[data].notna().any():
        curve = _by_severity(rows.drop_duplicates("cell_id"), data)
        axes.plot(curve.severity, curve["mean"], linestyle="--", color="0.35",
                  label=f"training data ({data})")  # fmt: skip

    axes.set_xlabel("severity (fraction of training images corrupted)")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} against severity: {_title(rows)}", fontsize=10)
    if marked:
        axes.plot([], [], color="0.2", linestyle=":", label="onset threshold (dotted)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _by_severity(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    curve = []
    for severity, group in rows.groupby("severity", sort=True):
        mean, low, high = mean_and_ci(group[column].to_numpy())
        curve.append({"severity": severity, "mean": mean, "low": low, "high": high})
    return pd.DataFrame(curve, columns=["severity", "mean", "low", "high"]).dropna(subset="mean")


def _epoch_rows(roles: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    wide = metrics.pivot_table(index=["cell_id", "epoch"], columns="name", values="value")
    return roles.merge(wide.reset_index(), on=["cell_id", "epoch"], how="left")


def _epoch_figure(rows: pd.DataFrame, metric: str) -> plt.Figure:
    """Metric over training epochs: one panel per GAN, one line per severity (mean over
    seeds with its 95 % CI band)."""
    names = _gan_names(rows)
    figure, panels = plt.subplots(
        1, len(names), figsize=(4.2 * len(names) + 1.2, 3.8), sharey=True, squeeze=False
    )
    severities = sorted(rows.severity.unique())
    palette = sns.color_palette("rocket_r", len(severities))
    for axes, ((gan, params), name) in zip(panels[0], names.items(), strict=True):
        for color, severity in zip(palette, severities, strict=True):
            line = rows[(rows.gan == gan) & (rows.gan_params == params)]
            line = line[line.severity == severity]
            curve = []
            for epoch, group in line.groupby("epoch", sort=True):
                curve.append((epoch, *mean_and_ci(group[metric].to_numpy())))
            if not curve:
                continue
            epoch, mean, low, high = map(np.array, zip(*curve, strict=True))
            axes.plot(epoch, mean, marker="o", color=color, label=f"{severity:g}")
            axes.fill_between(epoch, low, high, color=color, alpha=0.15)
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[0][0].set_ylabel(f"{metric} (intermediate evaluation)")
    panels[0][-1].legend(title="severity", fontsize=8, title_fontsize=8)
    figure.suptitle(f"{metric} over training: {_title(rows)}", fontsize=10)
    figure.tight_layout()
    return figure


def _histories(run_dir: Path) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """(cell id, label, history) per cell with a recorded training history."""
    with sqlite3.connect(Path(run_dir) / "results.sqlite") as db:
        cells = pd.read_sql_query("SELECT id, label FROM cells ORDER BY label", db)
        for cell_id, label in zip(cells.id, cells.label, strict=True):
            history = pd.read_sql_query(
                "SELECT step, epoch, name, value FROM history WHERE cell_id = ? ORDER BY step",
                db,
                params=(cell_id,),
            )
            if not history.empty:
                yield cell_id, label, history


def _loss_figure(label: str, history: pd.DataFrame) -> plt.Figure:
    """Each loss per step (thinned), with its per-epoch mean; NaN steps are gaps."""
    figure, axes = plt.subplots(figsize=(6.4, 3.6))
    palette = sns.color_palette("colorblind")
    for color, (name, curve) in zip(palette, history.groupby("name", sort=True), strict=False):
        every = max(1, len(curve) // LOSS_POINTS)
        thinned = curve.iloc[::every]
        axes.plot(thinned.step, thinned.value, color=color, alpha=0.35, linewidth=0.8)
        by_epoch = curve.groupby("epoch").agg(step=("step", "max"), value=("value", "mean"))
        axes.plot(by_epoch.step, by_epoch.value, color=color, marker=".", label=f"{name}")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(f"losses: {label} (lines: epoch means)", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _mosaic(run_dir: Path, rows: pd.DataFrame) -> plt.Figure:
    """Final sample grids: rows severity, columns GAN, each of the smallest seed that has one."""
    names = _gan_names(rows)
    severities = sorted(rows.severity.unique())
    figure, panels = plt.subplots(
        len(severities), len(names), squeeze=False,
        figsize=(2.2 * len(names) + 0.6, 2.2 * len(severities) + 0.5),
    )  # fmt: skip
    for i, severity in enumerate(severities):
        for j, ((gan, params), name) in enumerate(names.items()):
            axes = panels[i][j]
            axes.set_xticks([])
            axes.set_yticks([])
            cell = rows[(rows.severity == severity) & (rows.gan == gan)]
            cell = cell[(cell.gan_params == params) & (cell.status == "done")]
            paths = [
                run_dir / "cells" / i / "samples.png" for i in cell.sort_values("seed").cell_id
            ]
            found = [path for path in paths if path.exists()]
            grid = mpimg.imread(found[0]) if found else None
            if grid is None:
                axes.set_facecolor("0.9")
                axes.text(0.5, 0.5, "missing", ha="center", va="center", color="0.4",
                          transform=axes.transAxes)  # fmt: skip
            else:
                axes.imshow(grid, cmap="gray", interpolation="nearest")
            if i == 0:
                axes.set_title(name, fontsize=9)
            if j == 0:
                axes.set_ylabel(f"severity {severity:g}", fontsize=9)
    # a one-GAN mosaic is narrow: wrap its title to the figure's width (~11 characters an inch)
    width = int(figure.get_figwidth() * 11)
    figure.suptitle(textwrap.fill(f"samples: {_title(rows)}", width), fontsize=10)
    figure.tight_layout()
    return figure


def _save(figure: plt.Figure, stem: Path, formats: Sequence[str]) -> list[Path]:
    paths = []
    for extension in formats:
        path = stem.parent / f"{file_stem(stem.name)}.{extension}"
        # no date and fixed element ids: the same run gives the same SVG bytes
        metadata = {"Date": None} if extension == "svg" else {}
        with plt.rc_context({"svg.hashsalt": "gan-robustness"}):
            figure.savefig(path, dpi=DPI, metadata=metadata)
        paths.append(path)
    plt.close(figure)
    return paths
