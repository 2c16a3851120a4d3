"""`report.html`: one self-contained page (figures embedded) of a run's results.

It holds the threshold and metric tables, the figures and sample mosaics, the
run's metadata (matrix, versions, extractor and detector hashes) and the cells
that are not done.
"""

from __future__ import annotations

import base64
import html
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from reports.tables import load_detectors

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 560px; border: 1px solid #eee; }
figcaption { font-size: 0.8em; color: #555; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""

_SECTIONS = (
    ("severity-", "Metric against severity"),
    ("mosaic-", "Samples: rows severity, columns GAN"),
    ("epochs-", "Metric over training"),
    ("losses-", "Loss curves per cell"),
)


def write_html(
    run_dir: Path,
    path: Path,
    tables: Sequence[tuple[str, str]],
    figures: Sequence[Path],
    missing: pd.DataFrame,
) -> Path:
    """Write the report page.

    Args:
        run_dir: the run directory, for its metadata.
        path: where the page goes.
        tables: (title, Markdown) pairs, shown in order as HTML tables.
        figures: PNG files to embed.
        missing: `reports.build.missing_cells` of the run.
    """
    name = _matrix_name(run_dir)
    body = [f"<h1>Robustness report: {html.escape(name)}</h1>"]
    for title, markdown in tables:
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(markdown_to_html(markdown))

    body.append(f"<h2>Cells not done ({len(missing)})</h2>")
    if missing.empty:
        body.append("<p>Every cell the matrix asks for is done.</p>")
    else:
        items = []
        for row in missing.itertuples():
            error = "" if not isinstance(row.error, str) else row.error.strip().splitlines()[-1]
            items.append(
                f"<li><code>{html.escape(row.label)}</code> ({html.escape(row.status)})"
                + (f": {html.escape(error)}" if error else "")
                + "</li>"
            )
        body.append("<ul>" + "".join(items) + "</ul>")

    for prefix, title in _SECTIONS:
        chosen = [f for f in figures if f.name.startswith(prefix)]
        if not chosen:
            continue
        images = "".join(_figure(f) for f in chosen)
        if prefix == "losses-":
            images = f"<details><summary>{len(chosen)} cells</summary>{images}</details>"
        body.append(f"<h2>{title}</h2>{images}")

    body.append("<h2>Run</h2>" + _metadata(run_dir))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(name)}: robustness report</title><style>{_STYLE}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path.write_text(page)
    return path


def markdown_to_html(markdown: str) -> str:
    """A Markdown table (and the paragraphs around it) as HTML."""
    out, rows = [], []

    def flush() -> None:
        if rows:
            head, *rest = rows
            cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rest
            )
            out.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>")
            rows.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-"} for c in cells):  # skip the |---| rule
                rows.append(cells)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{html.escape(line.strip())}</p>")
    flush()
    return "\n".join(out)


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(path.stem)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _matrix_name(run_dir: Path) -> str:
    path = Path(run_dir) / "matrix.json"
    if path.exists():
        return str(json.loads(path.read_text()).get("matrix", {}).get("name", run_dir))
    return str(run_dir)


def _metadata(run_dir: Path) -> str:
    """Extractor and detector hashes from the store, then the environment and matrix files."""
    parts = []
    with sqlite3.connect(Path(run_dir) / "results.sqlite") as db:
        extractors = pd.read_sql_query(
            "SELECT DISTINCT extractor, extractor_hash, num_samples, num_reference FROM metrics",
            db,
        )
    detectors = load_detectors(run_dir)
    for title, frame in (("Feature extractors", extractors), ("Artifact detectors", detectors)):
        if not frame.empty:
            parts.append(f"<h3>{title}</h3>" + frame.to_html(index=False, border=0))
    for name in ("environment.json", "matrix.json"):
        path = Path(run_dir) / name
        if path.exists():
            parts.append(f"<h3>{name}</h3><pre>{html.escape(path.read_text())}</pre>")
    return "\n".join(parts)
