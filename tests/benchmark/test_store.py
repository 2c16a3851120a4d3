from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

from benchmark.errors import StoreError
from benchmark.matrix import parse_matrix
from benchmark.store import CellResult, Scores, Store


def _cells() -> list:
    return parse_matrix(
        {
            "matrix": {"name": "t"},
            "corruptions": [{"name": "gaussian", "severities": [0.0, 0.5, 0.7]}],
            "gans": [{"name": "vanilla"}],
        }
    ).cells()


def test_store_records_cells_and_reports_finished_ids(tmp_path: Path) -> None:
    store = Store(tmp_path)
    clean, half, most = _cells()
    scores = Scores({"fid": 3.5}, "mnist-cnn", "abc", 100, 10000)
    store.record(clean, CellResult(clean.id, "done", 1.0, 2.0, scores=scores,
                                   history=[(1, 1, "d_loss", 0.7)]))  # fmt: skip
    store.record(half, CellResult(half.id, "diverged", 1.0, 2.0,
                                  history=[(1, 1, "d_loss", math.nan)], error="nan"))  # fmt: skip
    store.record(most, CellResult(most.id, "failed", 1.0, 2.0, error="Traceback"))
    assert store.finished_ids() == {clean.id, half.id}
    store.close()

    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        assert db.execute("SELECT name, value, extractor_hash FROM metrics").fetchall() == [
            ("fid", 3.5, "abc")
        ]
        values = db.execute("SELECT value FROM history ORDER BY cell_id = ?", (half.id,)).fetchall()
        assert values == [(0.7,), (None,)]


def test_store_rerecording_a_cell_replaces_its_rows(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (cell, *_) = _cells()
    for value in (1.0, 2.0):
        scores = Scores({"fid": value}, "mnist-cnn", "abc", 100, 10000)
        store.record(cell, CellResult(cell.id, "done", 0.0, 1.0, scores=scores,
                                      history=[(1, 1, "g_loss", value)]))  # fmt: skip
    rows = store._db.execute("SELECT value FROM metrics UNION ALL SELECT value FROM history")
    assert rows.fetchall() == [(2.0,), (2.0,)]
    store.close()


def test_store_second_run_on_a_directory_is_refused_while_the_first_holds_it(
    tmp_path: Path,
) -> None:
    import os

    first = Store(tmp_path)
    with pytest.raises(
        StoreError, match=rf"run directory '.*' is locked by another run \(pid {os.getpid()}\)"
    ):
        Store(tmp_path)
    first.close()
    Store(tmp_path).close()  # free again once the first has closed


def test_store_unusable_directory_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"run directory '.*file' cannot be used"):
        Store(blocker)
