"""Metric tables per (corruption, severity, gan), averaged over seeds, as CSV and Markdown.

Reads only the run directory's `results.sqlite`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pandas as pd

from corruptions.registry import BenchmarkError

logger = logging.getLogger(__name__)

METRICS = ("fid", "kid", "precision", "recall")
CLEAN = "clean"


class ReportError(BenchmarkError):
    """A run directory cannot be reported on."""


def load_metrics(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cells, their metrics (long form) and the baselines of a run directory.

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
        cells = pd.read_sql_query(
            "SELECT id, label, corruption, severity, gan, seed, status FROM cells", db
        )
        metrics = pd.read_sql_query("SELECT cell_id, name, value FROM metrics", db)
        baselines = pd.read_sql_query("SELECT name, metric, value, num_samples FROM baselines", db)
    return cells, metrics, baselines


def metric_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (corruption, severity, gan): seed counts and each metric's mean and std.

    The clean cells (severity 0) are shared by every corruption, so they are
    listed under each corruption that the run holds.
    """
    wide = metrics.pivot_table(index="cell_id", columns="name", values="value")
    rows = cells.merge(wide, left_on="id", right_index=True, how="left")

    # repeat the clean cells under every corruption of the run
    corruptions = sorted(set(rows.corruption) - {CLEAN}) or [CLEAN]
    clean = rows[rows.corruption == CLEAN]
    rows = pd.concat(
        [rows[rows.corruption != CLEAN]] + [clean.assign(corruption=name) for name in corruptions]
    )

    keys = ["corruption", "severity", "gan"]
    grouped = rows.groupby(keys, sort=True)
    table = grouped.agg(
        seeds=("seed", "count"), done=("status", lambda s: int((s == "done").sum()))
    )
    for metric in METRICS:
        if metric in rows:
            table[metric] = grouped[metric].mean()
            table[f"{metric}_std"] = grouped[metric].std()
    return table.reset_index()


def to_markdown(table: pd.DataFrame, baselines: pd.DataFrame) -> str:
    """A Markdown table of `metric_table`'s output, `mean ± std` where seeds > 1."""
    metrics = [m for m in METRICS if m in table]
    header = ["corruption", "severity", "gan", "seeds", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in table.itertuples(index=False):
        cells = [row.corruption, f"{row.severity:g}", row.gan, f"{row.done}/{row.seeds}"]
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


def write_metric_tables(run_dir: Path, out_dir: Path) -> tuple[list[Path], str]:
    """Write `metrics.csv` and `metrics.md` for a run directory; returns paths and Markdown."""
    cells, metrics, baselines = load_metrics(run_dir)
    table = metric_table(cells, metrics)
    markdown = to_markdown(table, baselines)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "metrics.csv", out_dir / "metrics.md"
    table.to_csv(csv_path, index=False)
    md_path.write_text(markdown)
    return [csv_path, md_path], markdown
