"""`python -m benchmark list`: a matrix's cells, their ids, status and estimated cost.

python -m benchmark list --matrix full -k "gaussian and vanilla"

Nothing is trained or loaded. The estimate is a guide for a 2-core CPU,
from throughputs measured there; a GPU is many times faster.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmark.matrix import Cell, Matrix
from benchmark.runner import duration_text
from benchmark.selection import cell_names, parse_keyword

MNIST_TRAIN = 60000

# training images per second on a 2-core CPU (batch 64-128), measured with plain loops
IMAGES_PER_SECOND = {"mlp": 3000.0, "dcgan": 2200.0}
MEASURING_SLOWDOWN = 0.85  # an ambient GAN also corrupts every fake batch
SECONDS_PER_SAMPLE = 4.5e-4  # final scoring: data_* and samples, with artifact rates
SECONDS_PER_EPOCH_SAMPLE = 2.5e-4  # intermediate scoring: samples only


def estimate_seconds(cell: Cell) -> float:
    """Rough wall time of one cell on a 2-core CPU: training plus scoring."""
    params = dict(cell.gan_params)
    rate = IMAGES_PER_SECOND.get(str(params.get("network")), IMAGES_PER_SECOND["mlp"])
    if cell.gan != "vanilla":
        rate *= MEASURING_SLOWDOWN
    images = cell.training.train_subset or MNIST_TRAIN
    corruption = dict(cell.corruption_params)
    if corruption.get("mode") == "add" and cell.severity < 1:
        images += round(images * cell.severity / (1 - cell.severity))  # contaminants added
    evaluation = cell.evaluation
    scoring = evaluation.samples * SECONDS_PER_SAMPLE
    scoring += len(evaluation.epochs) * evaluation.epoch_samples * SECONDS_PER_EPOCH_SAMPLE
    return images * cell.training.epochs / rate + scoring


def describe_cells(
    matrix: Matrix, out: Path, keyword: str | None = None, last_failed: bool = False
) -> str:
    """A table of the selected cells with their status in `out` (if it exists) and cost."""
    roles = matrix.roles()
    cells = list({role.cell.id: role.cell for role in roles}.values())
    names = cell_names(roles)
    if keyword is not None:
        matches = parse_keyword(keyword)
        cells = [cell for cell in cells if matches(names[cell.id])]
    statuses = _statuses(out)
    if last_failed and any(statuses.get(cell.id) == "failed" for cell in cells):
        cells = [cell for cell in cells if statuses.get(cell.id) == "failed"]

    lines = [f"{'id':12}  {'status':8}  {'estimate':>8}  cell (and what it also stands for)"]
    left = 0.0
    for cell in cells:
        status = statuses.get(cell.id, "pending")
        seconds = estimate_seconds(cell)
        if status not in ("done", "diverged"):
            left += seconds
        first, *others = names[cell.id][1:]  # [0] is the label; then every role's name
        also = f" (+{len(others)} more)" if others else ""
        lines.append(f"{cell.id:12}  {status:8}  {duration_text(seconds):>8}  {first}{also}")
    total = sum(estimate_seconds(cell) for cell in cells)
    lines.append(
        f"matrix {matrix.name}: {len(cells)} cells selected; estimated {duration_text(total)} in "
        f"all, {duration_text(left)} left to run, on a 2-core CPU (run directory {out})"
    )
    return "\n".join(lines) + "\n"


def _statuses(out: Path) -> dict[str, str]:
    database = out / "results.sqlite"
    if not database.exists():
        return {}
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT id, status FROM cells"))
