"""`python -m benchmark report RUN_DIR`: thresholds, tables, figures and one HTML page.

python -m benchmark report runs/quick --metric fid --metric artifact_rate --format md,html

Reads only the run directory (its `results.sqlite`, `matrix.json`,
`environment.json` and sample grids); a partial run reports what it has and
lists the cells that are missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reports.tables import (
    detector_lines,
    load_detectors,
    load_epoch_metrics,
    load_metrics,
    metric_table,
    per_seed_table,
    threshold_markdown,
    threshold_table,
    to_markdown,
)
from reports.thresholds import ALPHA, DEFAULT_METRICS, RULES, ThresholdError, onsets, rules_with

logger = logging.getLogger(__name__)

FORMATS = ("md", "csv", "tex", "png", "svg", "html")


@dataclass
class Report:
    """What `build_report` wrote and what the terminal shows."""

    paths: list[Path] = field(default_factory=list)
    text: str = ""


def build_report(
    run_dir: Path,
    out_dir: Path,
    metrics: Sequence[str] = DEFAULT_METRICS,
    formats: Sequence[str] = FORMATS,
    tolerances: Mapping[str, float] | None = None,
    alpha: float = ALPHA,
) -> Report:
    """Decide the thresholds of a run directory and write the report's files.

    Args:
        run_dir: a directory written by `run`.
        out_dir: where the files go.
        metrics: the metrics thresholds and figures are about.
        formats: any of `FORMATS`; `html` embeds the PNG figures, so it draws them.
        tolerances: metric -> tolerance, replacing the defaults of `RULES`.
        alpha: significance level of the threshold test.

    Raises:
        ReportError: if `run_dir` holds no results.
        ThresholdError: for unknown metrics or formats, or bad tolerances or alpha.
    """
    _check(metrics, formats, alpha)
    rules = rules_with(tolerances or {})
    roles, long_metrics, baselines = load_metrics(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report()

    # metric tables: final scores, and per epoch where the run has them
    table = metric_table(roles, long_metrics)
    metrics_md = to_markdown(table, baselines) + detector_lines(load_detectors(run_dir))
    report.paths += _write_table(table, metrics_md, out_dir / "metrics", formats)
    epoch_roles, epoch_metrics = load_epoch_metrics(run_dir)
    by_epoch_md = ""
    if not epoch_metrics.empty:
        by_epoch = metric_table(epoch_roles, epoch_metrics, by_epoch=True)
        by_epoch_md = to_markdown(by_epoch, baselines.iloc[0:0])
        report.paths += _write_table(by_epoch, by_epoch_md, out_dir / "metrics-by-epoch", formats)

    # thresholds
    found = onsets(per_seed_table(roles, long_metrics), metrics, rules, alpha)
    thresholds = threshold_table(found, metrics)
    thresholds_md = threshold_markdown(thresholds, alpha)
    report.paths += _write_table(thresholds, thresholds_md, out_dir / "thresholds", formats)
    if "tex" in formats and not thresholds.empty:
        report.paths.append(_write_tex(thresholds, out_dir / "thresholds.tex"))

    missing = missing_cells(run_dir, roles)
    figures: list[Path] = []
    if {"png", "svg", "html"} & set(formats):
        from reports.figures import write_figures

        drawn = [f for f in ("png", "svg") if f in formats or (f == "png" and "html" in formats)]
        severities = {key: onset.severity for key, onset in found.items()}
        figures = write_figures(run_dir, out_dir / "figures", metrics, severities, drawn)
        report.paths += figures
    if "html" in formats:
        from reports.html import write_html

        pngs = [path for path in figures if path.suffix == ".png"]
        tables = [("Robustness thresholds", thresholds_md), ("Metrics", metrics_md)]
        if by_epoch_md:
            tables.append(("Metrics at intermediate epochs", by_epoch_md))
        report.paths.append(write_html(run_dir, out_dir / "report.html", tables, pngs, missing))

    parts = [metrics_md]
    if by_epoch_md:
        parts.append(
            "Intermediate evaluations (fewer samples than the final one):\n\n" + by_epoch_md
        )
    parts.append("Robustness thresholds:\n\n" + thresholds_md)
    if not missing.empty:
        listed = ", ".join(f"{row.label} ({row.status})" for row in missing.itertuples())
        parts.append(f"Cells not done ({len(missing)}): {listed}\n")
    report.text = "\n".join(parts)
    return report


def _check(metrics: Sequence[str], formats: Sequence[str], alpha: float) -> None:
    for metric in metrics:
        if metric not in RULES:
            raise ThresholdError(f"--metric {metric!r} is unknown; accepted: {', '.join(RULES)}")
    for name in formats:
        if name not in FORMATS:
            raise ThresholdError(f"--format {name!r} is unknown; accepted: {', '.join(FORMATS)}")
    if not 0 < alpha < 1:
        raise ThresholdError(f"--alpha must lie in (0, 1), got {alpha!r}")


def _write_table(
    table: pd.DataFrame, markdown: str, stem: Path, formats: Sequence[str]
) -> list[Path]:
    written = []
    if "csv" in formats:
        table.to_csv(stem.with_suffix(".csv"), index=False)
        written.append(stem.with_suffix(".csv"))
    if "md" in formats:
        stem.with_suffix(".md").write_text(markdown)
        written.append(stem.with_suffix(".md"))
    return written


def _write_tex(thresholds: pd.DataFrame, path: Path) -> Path:
    metrics = thresholds.metrics.iloc[0].split(",")
    shown = thresholds[["corruption", "gan", "seeds", *(f"{m}_text" for m in metrics)]]
    shown = shown.rename(columns={f"{m}_text": f"onset ({m})" for m in metrics})
    shown.insert(len(shown.columns), "worst tested", thresholds.worst_tested)
    latex = shown.to_latex(index=False, escape=True, float_format="%g")
    path.write_text(latex.replace("≤", r"$\leq$").replace("¹", r"\textsuperscript{1}"))
    return path


def missing_cells(run_dir: Path, roles: pd.DataFrame) -> pd.DataFrame:
    """Cells the matrix asks for that are not done: never run, failed or diverged."""
    import sqlite3

    with sqlite3.connect(Path(run_dir) / "results.sqlite") as db:
        cells = pd.read_sql_query("SELECT id AS cell_id, label, error FROM cells", db)
    asked = roles.drop_duplicates("cell_id")
    rows = asked.merge(cells, on="cell_id", how="left")
    rows = rows[rows.status != "done"].copy()
    rows["status"] = rows.status.fillna("not run")
    # a cell that never ran has no label yet: name it after its first role
    unnamed = rows.label.isna()
    rows.loc[unnamed, "label"] = [
        f"{r.corruption}-{r.severity:g}-{r.gan}-s{r.seed}" for r in rows[unnamed].itertuples()
    ]
    columns = ["cell_id", "label", "status", "error"]
    return rows[columns].sort_values("label").reset_index(drop=True)
