"""The run directory: `results.sqlite` plus per-cell artifacts under `cells/<id>/`.

Only the driver process writes the database, one transaction per finished
cell, so a killed run loses at most the cells in flight. A run holds an
exclusive lock on the directory for as long as it is open, so two runs never
interleave their writes; the system drops the lock when the process dies.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import StoreError

logger = logging.getLogger(__name__)

DATABASE = "results.sqlite"
LOCK = ".lock"
FINISHED = ("done", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    spec TEXT NOT NULL,
    corruption TEXT NOT NULL,
    severity REAL NOT NULL,
    gan TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    started REAL,
    finished REAL,
    train_seconds REAL,
    eval_seconds REAL,
    epochs_done INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    name TEXT NOT NULL,
    value REAL NOT NULL,
    extractor TEXT NOT NULL,
    extractor_hash TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    num_reference INTEGER NOT NULL,
    PRIMARY KEY (cell_id, name)
);
CREATE TABLE IF NOT EXISTS history (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    step INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL  -- NULL where the loss was NaN (SQLite stores NaN as NULL)
);
CREATE INDEX IF NOT EXISTS history_cell ON history(cell_id);
CREATE TABLE IF NOT EXISTS roles (
    cell_id TEXT NOT NULL,
    corruption TEXT NOT NULL,
    corruption_params TEXT NOT NULL,
    gan TEXT NOT NULL,
    gan_params TEXT NOT NULL,
    severity REAL NOT NULL,
    seed INTEGER NOT NULL,
    PRIMARY KEY (cell_id, corruption, corruption_params, gan, gan_params)
);
CREATE TABLE IF NOT EXISTS artifact_rates (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    corruption TEXT NOT NULL,
    corruption_params TEXT NOT NULL,
    value REAL NOT NULL,
    detector TEXT NOT NULL,
    detector_hash TEXT NOT NULL,
    detector_accuracy REAL NOT NULL,
    num_samples INTEGER NOT NULL,
    PRIMARY KEY (cell_id, corruption, corruption_params)
);
CREATE TABLE IF NOT EXISTS data_artifact_rates (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    corruption TEXT NOT NULL,
    corruption_params TEXT NOT NULL,
    value REAL NOT NULL,
    detector TEXT NOT NULL,
    detector_hash TEXT NOT NULL,
    detector_accuracy REAL NOT NULL,
    num_samples INTEGER NOT NULL,
    PRIMARY KEY (cell_id, corruption, corruption_params)
);
CREATE TABLE IF NOT EXISTS epoch_metrics (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    epoch INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    extractor TEXT NOT NULL,
    extractor_hash TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    num_reference INTEGER NOT NULL,
    PRIMARY KEY (cell_id, epoch, name)
);
CREATE TABLE IF NOT EXISTS epoch_artifact_rates (
    cell_id TEXT NOT NULL REFERENCES cells(id),
    epoch INTEGER NOT NULL,
    corruption TEXT NOT NULL,
    corruption_params TEXT NOT NULL,
    value REAL NOT NULL,
    detector TEXT NOT NULL,
    detector_hash TEXT NOT NULL,
    detector_accuracy REAL NOT NULL,
    num_samples INTEGER NOT NULL,
    PRIMARY KEY (cell_id, epoch, corruption, corruption_params)
);
CREATE TABLE IF NOT EXISTS baselines (
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    extractor TEXT NOT NULL,
    extractor_hash TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    num_reference INTEGER NOT NULL,
    PRIMARY KEY (name, metric, extractor_hash, num_samples)
);
"""


@dataclass(frozen=True)
class Scores:
    """Metric values with what produced them."""

    values: dict[str, float]
    extractor: str
    extractor_hash: str
    num_samples: int
    num_reference: int


@dataclass(frozen=True)
class ArtifactRate:
    """A cell's artifact rate under the detector of one corruption it stands for."""

    corruption: str
    corruption_params: str  # canonical JSON, as in the roles table
    value: float
    detector: str
    detector_hash: str
    detector_accuracy: float  # on held-out MNIST test images
    num_samples: int


@dataclass(frozen=True)
class EpochEvaluation:
    """The scores of a cell's generator after one intermediate training epoch."""

    epoch: int
    scores: Scores
    artifact_rates: list[ArtifactRate]


@dataclass
class CellResult:
    """What a worker returns for one cell; the driver stores it."""

    cell_id: str
    status: str  # "done", "diverged" or "failed"
    started: float
    finished: float
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    epochs_done: int = 0
    scores: Scores | None = None  # of the generated samples
    data_scores: Scores | None = None  # of the training set itself, names prefixed data_
    artifact_rates: list[ArtifactRate] = field(default_factory=list)
    data_artifact_rates: list[ArtifactRate] = field(default_factory=list)  # training set's
    evaluations: list[EpochEvaluation] = field(default_factory=list)  # at intermediate epochs
    history: list[tuple[int, int, str, float]] = field(
        default_factory=list
    )  # step, epoch, name, value
    error: str | None = None


class Store:
    """Read and write one run directory.

    Raises:
        StoreError: if the directory cannot be created or written.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = (self.root / LOCK).open("a+")
        except OSError as err:
            raise StoreError(f"run directory {str(self.root)!r} cannot be used: {err}") from err
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "unknown"
            self._lock.close()
            raise StoreError(
                f"run directory {str(self.root)!r} is locked by another run (pid {holder}); "
                "wait for it to finish, or choose another --out"
            ) from err
        self._lock.truncate(0)
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        try:
            self._db = sqlite3.connect(self.root / DATABASE)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as err:
            self._lock.close()
            raise StoreError(f"run directory {str(self.root)!r} cannot be used: {err}") from err

    def close(self) -> None:
        self._db.close()
        self._lock.close()  # releases the lock

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def statuses(self) -> dict[str, str]:
        """The stored status of every cell that has run, by id."""
        return dict(self._db.execute("SELECT id, status FROM cells"))

    def finished_ids(self) -> set[str]:
        """Ids of cells that need no rerun (done or diverged)."""
        marks = ",".join("?" * len(FINISHED))
        rows = self._db.execute(f"SELECT id FROM cells WHERE status IN ({marks})", FINISHED)
        return {row[0] for row in rows}

    def record(self, cell: Any, result: CellResult) -> None:
        """Write one finished cell, its metrics and history in a single transaction."""
        with self._db:
            self._db.execute("DELETE FROM metrics WHERE cell_id = ?", (cell.id,))
            self._db.execute("DELETE FROM history WHERE cell_id = ?", (cell.id,))
            tables = ("artifact_rates", "data_artifact_rates", "epoch_metrics")
            for table in (*tables, "epoch_artifact_rates"):
                self._db.execute(f"DELETE FROM {table} WHERE cell_id = ?", (cell.id,))
            self._db.execute(
                "INSERT OR REPLACE INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    cell.id, cell.label, json.dumps(cell.spec(), sort_keys=True),
                    cell.corruption, cell.severity, cell.gan, cell.seed, result.status,
                    result.started, result.finished, result.train_seconds,
                    result.eval_seconds, result.epochs_done, result.error,
                ),
            )  # fmt: skip
            for scores in (result.scores, result.data_scores):
                if scores is not None:
                    self._db.executemany(
                        "INSERT INTO metrics VALUES (?,?,?,?,?,?,?)", _score_rows(cell.id, scores)
                    )
            for table, rates in (
                ("artifact_rates", result.artifact_rates),
                ("data_artifact_rates", result.data_artifact_rates),
            ):
                self._db.executemany(
                    f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?,?)",
                    ((cell.id, *astuple(rate)) for rate in rates),
                )
            for evaluation in result.evaluations:
                rows = _score_rows(cell.id, evaluation.scores)
                self._db.executemany(
                    "INSERT INTO epoch_metrics VALUES (?,?,?,?,?,?,?,?)",
                    ((key, evaluation.epoch, *rest) for key, *rest in rows),
                )
                self._db.executemany(
                    "INSERT INTO epoch_artifact_rates VALUES (?,?,?,?,?,?,?,?,?)",
                    ((cell.id, evaluation.epoch, *astuple(r)) for r in evaluation.artifact_rates),
                )
            self._db.executemany(
                "INSERT INTO history VALUES (?,?,?,?,?)",
                ((cell.id, *row) for row in result.history),
            )

    def artifact_rate_keys(self) -> dict[str, set[tuple[str, str]]]:
        """The (corruption, params) pairs each cell has a final artifact rate under."""
        keys: dict[str, set[tuple[str, str]]] = {}
        rows = self._db.execute("SELECT cell_id, corruption, corruption_params FROM artifact_rates")
        for cell_id, corruption, params in rows:
            keys.setdefault(cell_id, set()).add((corruption, params))
        return keys

    def add_artifact_rates(
        self, cell_id: str, rates: Iterable[ArtifactRate], data_rates: Iterable[ArtifactRate]
    ) -> None:
        """Add a finished cell's rates under more detectors, in one transaction."""
        with self._db:
            for table, rows in (("artifact_rates", rates), ("data_artifact_rates", data_rates)):
                self._db.executemany(
                    f"INSERT OR REPLACE INTO {table} VALUES (?,?,?,?,?,?,?,?)",
                    ((cell_id, *astuple(rate)) for rate in rows),
                )

    def record_roles(self, roles: Iterable[Any]) -> None:
        """Store which cell answers each combination the matrix asks for (see `Matrix.roles`)."""
        with self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO roles VALUES (?,?,?,?,?,?,?)",
                (
                    (r.cell.id, r.corruption, r.corruption_params, r.gan, r.gan_params,
                     r.cell.severity, r.cell.seed)
                    for r in roles
                ),
            )  # fmt: skip

    def record_baseline(self, name: str, scores: Scores) -> None:
        """Store the metrics of a fixed image set (e.g. MNIST train) against the reference."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO baselines VALUES (?,?,?,?,?,?,?)",
                _score_rows(name, scores),
            )

    def has_baseline(self, name: str, extractor_hash: str, num_samples: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM baselines WHERE name = ? AND extractor_hash = ? AND num_samples = ?",
            (name, extractor_hash, num_samples),
        ).fetchone()
        return row is not None

    def read_json(self, name: str) -> dict[str, Any] | None:
        """A JSON file of the run directory, or None where it does not exist."""
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else None

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        (self.root / name).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _score_rows(key: str, scores: Scores) -> Iterable[tuple[Any, ...]]:
    for metric, value in scores.values.items():
        yield (
            key, metric, value, scores.extractor, scores.extractor_hash,
            scores.num_samples, scores.num_reference,
        )  # fmt: skip
