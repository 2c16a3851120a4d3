"""Metric tables per (corruption, severity, gan), averaged over seeds, as CSV and Markdown.

`metrics.*` holds the final generators' scores; `metrics-by-epoch.*` the
intermediate evaluations, where the matrix asked for them.

Reads only the run directory's `results.sqlite`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from corruptions.registry import BenchmarkError
from reports.thresholds import KEYS, Onset, describe, describe_floor

logger = logging.getLogger(__name__)

METRICS = (
    "fid", "data_fid", "artifact_rate", "data_artifact_rate", "kid", "precision", "recall",
    "density", "coverage", "isc",
)  # fmt: skip


# every combination the matrix asks for, with its cell's status (NULL before it ran)
_ROLES = (
    "SELECT r.cell_id, r.corruption, r.corruption_params, r.gan, r.gan_params, "
    "r.severity, r.seed, c.status FROM roles r LEFT JOIN cells c ON c.id = r.cell_id"
)


class ReportError(BenchmarkError):
    """A run directory cannot be reported on."""


def load_metrics(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The matrix's roles joined with their cells' status, the metrics (long form), and baselines.

    Raises:
        ReportError: if `run_dir` holds no `results.sqlite`.
    """
    database = Path(run_dir) / "results.sqlite"
    if not database.exists():
        raise ReportError(
            f"run directory {str(run_dir)!r} holds no results.sqlite; "
            "run `python -m benchmark run` first"
        )
    with sqlite3.connect(database) as db:
        roles = pd.read_sql_query(_ROLES, db)
        metrics = pd.read_sql_query("SELECT cell_id, name, value FROM metrics", db)
        # a cell's artifact rate depends on the corruption it stands for: one per role
        rates = pd.read_sql_query(
            "SELECT cell_id, corruption, corruption_params, value AS artifact_rate "
            "FROM artifact_rates",
            db,
        )
        keys = ["cell_id", "corruption", "corruption_params"]
        roles = roles.merge(rates, on=keys, how="left")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "data_artifact_rates" in tables:  # absent from run directories made before it
            data_rates = pd.read_sql_query(
                "SELECT cell_id, corruption, corruption_params, value AS data_artifact_rate "
                "FROM data_artifact_rates",
                db,
            )
            roles = roles.merge(data_rates, on=keys, how="left")
        baselines = pd.read_sql_query("SELECT name, metric, value, num_samples FROM baselines", db)
    return roles, metrics, baselines


def load_detectors(run_dir: Path) -> pd.DataFrame:
    """The artifact detectors behind a run's rates: corruption, params, name, hash, accuracy."""
    with sqlite3.connect(Path(run_dir) / "results.sqlite") as db:
        return pd.read_sql_query(
            "SELECT DISTINCT corruption, corruption_params, detector, detector_hash, "
            "detector_accuracy FROM artifact_rates ORDER BY corruption, corruption_params",
            db,
        )


def detector_lines(detectors: pd.DataFrame) -> str:
    """One line per detector, to print under the metric table its artifact rates come from."""
    lines = []
    for row in detectors.itertuples(index=False):
        params = ", ".join(f"{k}={v}" for k, v in sorted(json.loads(row.corruption_params).items()))
        lines.append(
            f"Artifact detector {row.corruption}" + (f" ({params})" if params else "")
            + f": {row.detector} {row.detector_hash}, held-out accuracy {row.detector_accuracy:.4f}"
        )  # fmt: skip
    return "".join(f"\n{line}\n" for line in lines)


def load_epoch_metrics(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Roles crossed with the epochs each cell was evaluated at, and those metrics (long form).

    Both are empty when the matrix asked for no intermediate evaluations, or
    the run directory predates them.
    """
    with sqlite3.connect(Path(run_dir) / "results.sqlite") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "epoch_metrics" not in tables:
            return pd.DataFrame(), pd.DataFrame()
        roles = pd.read_sql_query(_ROLES, db)
        metrics = pd.read_sql_query("SELECT cell_id, epoch, name, value FROM epoch_metrics", db)
        rates = pd.read_sql_query(
            "SELECT cell_id, epoch, corruption, corruption_params, value AS artifact_rate "
            "FROM epoch_artifact_rates",
            db,
        )
    epochs = metrics[["cell_id", "epoch"]].drop_duplicates()
    roles = roles.merge(epochs, on="cell_id")
    keys = ["cell_id", "epoch", "corruption", "corruption_params"]
    return roles.merge(rates, on=keys, how="left"), metrics


def metric_table(
    roles: pd.DataFrame, metrics: pd.DataFrame, by_epoch: bool = False
) -> pd.DataFrame:
    """One row per (corruption, params, severity, gan, params): seeds done, metric means and stds.

    A clean cell is shared by every corruption and by a corruption-aware GAN
    and its plain counterpart; `roles` lists it under each of them. With
    `by_epoch`, the inputs are `load_epoch_metrics`'s and rows are per epoch too.
    """
    index = ["cell_id", "epoch"] if by_epoch else ["cell_id"]
    wide = metrics.pivot_table(index=index, columns="name", values="value").reset_index()
    rows = roles.merge(wide, on=index, how="left")

    keys = ["corruption", "corruption_params", "severity", "gan", "gan_params"]
    keys += ["epoch"] if by_epoch else []
    grouped = rows.groupby(keys, sort=True)
    table = grouped.agg(
        seeds=("seed", "count"), done=("status", lambda s: int((s == "done").sum()))
    )
    for metric in METRICS:
        if metric in rows:
            table[metric] = grouped[metric].mean()
            table[f"{metric}_std"] = grouped[metric].std()
    return table.reset_index()


def _varying_params(table: pd.DataFrame, name_column: str, params_column: str) -> pd.Series:
    """Per row, the parameters that differ between rows of the same plugin, as `k=v` text."""
    decoded = table[params_column].map(json.loads)
    shown = []
    for name, params in zip(table[name_column], decoded, strict=True):
        siblings = decoded[table[name_column] == name]
        varying = sorted(k for k in params if siblings.map(lambda p, k=k: p.get(k)).nunique() > 1)
        shown.append(" ".join(f"{k}={params[k]}" for k in varying))
    return pd.Series(shown, index=table.index)


def to_markdown(table: pd.DataFrame, baselines: pd.DataFrame) -> str:
    """A Markdown table of `metric_table`'s output, `mean ± std` where seeds > 1."""
    metrics = [m for m in METRICS if m in table]
    corruption_names = table.corruption + _suffix(
        _varying_params(table, "corruption", "corruption_params")
    )
    gan_names = table.gan + _suffix(_varying_params(table, "gan", "gan_params"))
    by_epoch = "epoch" in table
    header = ["corruption", "severity", "gan", *(["epoch"] if by_epoch else []), "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for corruption, gan, row in zip(
        corruption_names, gan_names, table.itertuples(index=False), strict=True
    ):
        cells = [corruption, f"{row.severity:g}", gan]
        cells += [str(row.epoch)] if by_epoch else []
        cells.append(f"{row.done}/{row.seeds}")
        for metric in metrics:
            mean, std = getattr(row, metric), getattr(row, f"{metric}_std")
            cells.append(
                "—" if pd.isna(mean) else f"{mean:.4g}" + ("" if pd.isna(std) else f" ± {std:.2g}")
            )
        lines.append("| " + " | ".join(cells) + " |")

    for name, group in baselines.groupby("name"):
        values = dict(zip(group.metric, group.value, strict=True))
        count = int(group.num_samples.iloc[0])
        listed = ", ".join(f"{m} {values[m]:.4g}" for m in metrics if m in values)
        lines.append(f"\nBaseline {name} ({count} real images vs MNIST test): {listed}")
    return "\n".join(lines) + "\n"


def _suffix(varying: pd.Series) -> pd.Series:
    return varying.map(lambda text: f" ({text})" if text else "")


def write_metric_tables(run_dir: Path, out_dir: Path) -> tuple[list[Path], str]:
    """Write `metrics.csv` and `metrics.md` for a run directory, and `metrics-by-epoch.*`
    where it holds intermediate evaluations; returns the paths and the Markdown."""
    roles, metrics, baselines = load_metrics(run_dir)
    tables = {"metrics": (metric_table(roles, metrics), baselines)}
    epoch_roles, epoch_metrics = load_epoch_metrics(run_dir)
    if not epoch_metrics.empty:
        by_epoch = metric_table(epoch_roles, epoch_metrics, by_epoch=True)
        tables["metrics-by-epoch"] = (by_epoch, baselines.iloc[0:0])

    out_dir.mkdir(parents=True, exist_ok=True)
    paths, parts = [], []
    for name, (table, shown_baselines) in tables.items():
        markdown = to_markdown(table, shown_baselines)
        csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
        table.to_csv(csv_path, index=False)
        md_path.write_text(markdown)
        paths += [csv_path, md_path]
        if name == "metrics-by-epoch":
            markdown = "Intermediate evaluations (fewer samples than the final one):\n\n" + markdown
        parts.append(markdown)
    return paths, "\n".join(parts)


def per_seed_table(roles: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per role (and seed) with a column per metric, where the role's cell is done."""
    wide = metrics.pivot_table(index="cell_id", columns="name", values="value").reset_index()
    rows = roles[roles.status == "done"].merge(wide, on="cell_id", how="left")
    return rows.reset_index(drop=True)


def threshold_table(
    found: Mapping[tuple[str, str, str, str, str], Onset], metrics: Sequence[str]
) -> pd.DataFrame:
    """One row per (corruption, params, gan, params): the onset per metric, its effect, its
    p-value and the noise floor, as numbers (`*_text` columns hold the printed form)."""
    rows: dict[tuple[str, str, str, str], dict[str, object]] = {}
    for (*key, metric), onset in sorted(found.items()):
        row = rows.setdefault(tuple(key), dict(zip(KEYS, key, strict=True)))
        row["seeds"] = onset.seeds
        row["worst_tested"] = max(float(row.get("worst_tested", 0.0)), onset.worst_tested)
        row[f"onset_{metric}"] = onset.severity
        row[f"effect_{metric}"] = onset.effect
        row[f"p_{metric}"] = onset.p_value
        row[f"floor_{metric}"] = onset.floor
        row[f"tolerance_{metric}"] = onset.tolerance
        row[f"{metric}_text"] = describe(onset)
        row[f"floor_{metric}_text"] = describe_floor(onset)
        row["single_run"] = bool(row.get("single_run", False)) or onset.single_run
    table = pd.DataFrame(list(rows.values()))
    shown = [m for m in metrics if f"{m}_text" in table]
    return table.assign(metrics=",".join(shown))


def threshold_markdown(table: pd.DataFrame, alpha: float) -> str:
    """The threshold table as Markdown, with its footnotes."""
    if table.empty:
        return "No thresholds: the run has no finished cell at severity 0 and above.\n"
    metrics = table.metrics.iloc[0].split(",")
    corruption_names = table.corruption + _suffix(
        _varying_params(table, "corruption", "corruption_params")
    )
    gan_names = table.gan + _suffix(_varying_params(table, "gan", "gan_params"))
    header = ["corruption", "gan", "seeds", *(f"onset ({m})" for m in metrics)]
    header += ["worst tested", "noise floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for corruption, gan, (_, row) in zip(
        corruption_names, gan_names, table.iterrows(), strict=True
    ):
        cells = [corruption, gan, str(row.seeds)]
        cells += [_text(row, f"{m}_text") for m in metrics]
        floors = [f"{m} {_text(row, f'floor_{m}_text')}" for m in metrics]
        if all(pd.isna(row.get(f"floor_{m}")) for m in metrics):
            floors = ["— (one seed)"]
        cells += [f"{row.worst_tested:g}", ", ".join(floors)]
        lines.append("| " + " | ".join(cells) + " |")

    notes = [
        "",
        f"Onset: the smallest severity whose mean degradation over seeds exceeds the metric's "
        f"tolerance and, with two or more seeds, is significant (one-sided Welch t-test, "
        f"Bonferroni-adjusted over the row's severities, alpha = {alpha:g}); effect and "
        f"adjusted p at that severity. Noise floor: the clean cell's standard deviation "
        f"across seeds.",
    ]
    if table.single_run.any():
        notes.append("¹ One seed: the threshold rests on a single run and is not tested.")
    if table.filter(like="_text").apply(lambda c: c.astype(str).str.contains("†")).any().any():
        notes.append("† The tolerance lies below the noise floor: onsets this small are noise.")
    return "\n".join(lines + notes) + "\n"


def _text(row: pd.Series, column: str) -> str:
    value = row.get(column)
    return "—" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
