"""Metric tables per (corruption, severity, gan), averaged over seeds, as CSV and Markdown.

Reads only the run directory's `results.sqlite`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pandas as pd

from corruptions.registry import BenchmarkError

logger = logging.getLogger(__name__)

METRICS = (
    "fid", "data_fid", "artifact_rate", "kid", "precision", "recall", "density", "coverage", "isc"
)  # fmt: skip


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
        roles = pd.read_sql_query(
            "SELECT r.cell_id, r.corruption, r.corruption_params, r.gan, r.gan_params, "
            "r.severity, r.seed, c.status FROM roles r LEFT JOIN cells c ON c.id = r.cell_id",
            db,
        )
        metrics = pd.read_sql_query("SELECT cell_id, name, value FROM metrics", db)
        # a cell's artifact rate depends on the corruption it stands for: one per role
        rates = pd.read_sql_query(
            "SELECT cell_id, corruption, corruption_params, value AS artifact_rate "
            "FROM artifact_rates",
            db,
        )
        roles = roles.merge(rates, on=["cell_id", "corruption", "corruption_params"], how="left")
        baselines = pd.read_sql_query("SELECT name, metric, value, num_samples FROM baselines", db)
    return roles, metrics, baselines


def metric_table(roles: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (corruption, params, severity, gan, params): seeds done, metric means and stds.

    A clean cell is shared by every corruption and by a corruption-aware GAN
    and its plain counterpart; `roles` lists it under each of them.
    """
    wide = metrics.pivot_table(index="cell_id", columns="name", values="value")
    rows = roles.merge(wide, left_on="cell_id", right_index=True, how="left")

    keys = ["corruption", "corruption_params", "severity", "gan", "gan_params"]
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
    header = ["corruption", "severity", "gan", "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for corruption, gan, row in zip(
        corruption_names, gan_names, table.itertuples(index=False), strict=True
    ):
        cells = [corruption, f"{row.severity:g}", gan, f"{row.done}/{row.seeds}"]
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
    """Write `metrics.csv` and `metrics.md` for a run directory; returns paths and Markdown."""
    roles, metrics, baselines = load_metrics(run_dir)
    table = metric_table(roles, metrics)
    markdown = to_markdown(table, baselines)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "metrics.csv", out_dir / "metrics.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(markdown)
    return [csv_path, md_path], markdown
