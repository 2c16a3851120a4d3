"""Selection and flow of `run` (-k, -x, --lf, --force), the run-directory lock, `list`,
and bad input rejected with exit code 2 before any training."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import benchmark.runner as runner
from benchmark.cli import main
from benchmark.store import Store
from benchmark.training import train_gan

pytestmark = pytest.mark.slow

TINY = """[matrix]
name = "{name}"
seeds = [0]

[[corruptions]]
name = "gaussian"
severities = {severities}

[[gans]]
name = "vanilla"
params = {{ latent_dim = 8 }}

[training]
epochs = 1
batch_size = 64
train_subset = 128

[evaluation]
samples = 100
"""


def _matrix(tmp_path: Path, name: str = "tiny", severities: str = "[0.0, 0.3, 0.5]") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, severities=severities))
    return path


def _run(data_dir: Path, cache_dir: Path, out: Path, matrix: Path, *flags: str) -> int:
    return main(["run", "--matrix", str(matrix), "--data-dir", str(data_dir),
                 "--cache-dir", str(cache_dir), "--out", str(out), *flags])  # fmt: skip


def _statuses(out: Path) -> dict[float, str]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return dict(db.execute("SELECT severity, status FROM cells"))


@pytest.fixture
def failing_at(monkeypatch: pytest.MonkeyPatch) -> set[float]:
    """Severities whose cells raise in training; empty it to let them pass."""
    severities: set[float] = set()

    def train(gan: object, images: object, *args: object, **kwargs: object) -> object:
        if runner._CURRENT_SEVERITY[0] in severities:
            raise RuntimeError("planted failure")
        return train_gan(gan, images, *args, **kwargs)  # type: ignore[arg-type]

    original = runner._run_cell

    def run_cell(cell: object, *args: object) -> object:
        runner._CURRENT_SEVERITY[0] = cell.severity  # type: ignore[attr-defined]
        return original(cell, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_CURRENT_SEVERITY", [None], raising=False)
    monkeypatch.setattr(runner, "_run_cell", run_cell)
    monkeypatch.setattr(runner, "train_gan", train)
    return severities


def test_run_k_runs_only_matching_cells(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert _run(data_dir, cache_dir, out, _matrix(tmp_path), "-k", "0.5 or clean") == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 0 cached, 1 deselected in" in (
        capsys.readouterr().out
    )
    assert _statuses(out) == {0.0: "done", 0.5: "done"}


def test_run_exitfirst_stops_after_the_first_failure(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    failing_at: set[float],
) -> None:  # fmt: skip
    failing_at.add(0.0)
    out = tmp_path / "run"
    assert _run(data_dir, cache_dir, out, _matrix(tmp_path), "-x") == 1
    assert "3 cells: 0 done, 1 failed, 0 diverged, 0 cached, 2 not run in" in (
        capsys.readouterr().out
    )
    assert _statuses(out) == {0.0: "failed"}


def test_run_last_failed_reruns_only_failed_cells(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    failing_at: set[float], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    out, matrix = tmp_path / "run", _matrix(tmp_path)
    failing_at.add(0.3)
    assert _run(data_dir, cache_dir, out, matrix) == 1
    assert _statuses(out) == {0.0: "done", 0.3: "failed", 0.5: "done"}
    capsys.readouterr()

    failing_at.clear()
    ran: list[float] = []
    original = runner._run_cell
    monkeypatch.setattr(
        runner, "_run_cell", lambda cell, *a: ran.append(cell.severity) or original(cell, *a)
    )
    assert _run(data_dir, cache_dir, out, matrix, "--lf") == 0
    assert ran == [0.3]
    assert "1 cells: 1 done, 0 failed, 0 diverged, 0 cached, 2 deselected in" in (
        capsys.readouterr().out
    )


def test_run_into_a_directory_of_another_matrix_needs_force(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert _run(data_dir, cache_dir, out, _matrix(tmp_path, severities="[0.0]")) == 0
    other = _matrix(tmp_path, "other", "[0.0, 0.5]")
    assert _run(data_dir, cache_dir, out, other) == 2
    assert (
        f"error: run directory '{out}' was made by a different matrix ('tiny'); pass --force "
        "to add this matrix's cells to it, or choose another --out"
    ) in capsys.readouterr().err
    assert _statuses(out) == {0.0: "done"}

    assert _run(data_dir, cache_dir, out, other, "--force") == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 1 cached in" in capsys.readouterr().out
    assert json.loads((out / "matrix.json").read_text())["matrix"]["name"] == "other"


def test_run_on_a_locked_directory_is_refused(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    holder = Store(out)  # another run, still going
    try:
        assert _run(data_dir, cache_dir, out, _matrix(tmp_path)) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert f"error: run directory '{out}' is locked by another run (pid " in err
    assert err.count("\n") == 1


def test_environment_records_versions_and_revision(
    data_dir: Path, cache_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert _run(data_dir, cache_dir, out, _matrix(tmp_path, severities="[0.0]")) == 0
    environment = json.loads((out / "environment.json").read_text())
    assert environment["packages"]["torch"] and environment["packages"]["distributed"]
    assert environment["executor"] == "local" and environment["device"] == "cpu"
    assert "git_revision" in environment


def test_list_shows_cells_status_and_estimate(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, matrix = tmp_path / "run", _matrix(tmp_path)
    assert _run(data_dir, cache_dir, out, matrix, "-k", "clean") == 0
    capsys.readouterr()
    assert main(["list", "--matrix", str(matrix), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["id", "status", "estimate"]
    assert [line.split()[1] for line in lines[1:4]] == ["done", "pending", "pending"]
    assert lines[1].split()[-1] == "gaussian-0-vanilla-s0"
    assert lines[-1].startswith("matrix tiny: 3 cells selected; estimated ")


def test_list_full_preset_without_data(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["list", "--matrix", "full", "--out", str(tmp_path), "-k", "emnist"]) == 0
    out = capsys.readouterr().out
    assert "emnist-0.142857-ambient-s2" in out
    assert out.splitlines()[-1].startswith("matrix full: 33 cells selected; estimated ")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-k", "emnist and"], r"-k 'emnist and' is not a valid expression: it ends too early"),
        (["--workers", "2"], r"--workers and --scheduler go with --executor dask"),
        (["--executor", "dask", "--workers", "0"], r"--workers must be an integer >= 1, got 0"),
        (
            ["--executor", "dask", "--workers", "2", "--scheduler", "tcp://x:1"],
            r"--workers starts a local cluster; it cannot go with --scheduler",
        ),
        (["--threads", "0"], r"--threads must be an integer >= 1, got 0"),
        (["--plugin", "nowhere.py"], r"--plugin 'nowhere.py' is not an existing .py file"),
    ],
)
def test_run_rejects_bad_options_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    out = tmp_path / "run"
    code = main(["run", "--matrix", str(_matrix(tmp_path)), "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not (out / "cells").exists()


def test_run_rejects_a_data_dir_without_mnist(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    out = tmp_path / "run"
    assert _run(empty, tmp_path / "cache", out, _matrix(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "train-images-idx3-ubyte.gz" in err and "Traceback" not in err
    assert not (out / "cells").exists()


def test_run_rejects_an_output_directory_it_cannot_create(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run directory's parent should be")
    assert _run(data_dir, cache_dir, blocker / "run", _matrix(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"error: run directory '{blocker / 'run'}' cannot be used: " in err


BAD_MATRICES = [
    ("[matrix\nname = 1", r"is not valid TOML"),
    (TINY.replace('"gaussian"', '"gausian"'), r"unknown corruption 'gausian' \(did you mean"),
    (TINY.replace("{severities}", "[0.0, 1.5]"), r"severity 1\.5 is not a number in \[0, 1\]"),
    (TINY.replace("seeds = [0]", "seeds = [1, 1]"), r"seeds has duplicates: \[1, 1\]"),
    (TINY.replace("seeds = [0]", "seeds = []"), r"seeds must be a non-empty list of integers"),
    (TINY.replace("epochs = 1", 'epochs = "one"'), r"\[training\] epochs must be an integer >= 1"),
    (TINY.replace("latent_dim = 8", "latent = 8"), r"gan 'vanilla' has no parameter 'latent'"),
    (TINY.replace("[evaluation]", "[evaluation]\nextractor = 1"), r"has unknown key 'extractor'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_MATRICES)
def test_run_rejects_bad_matrix_files_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text.format(name="bad", severities="[0.0, 0.3, 0.5]"))
    out = tmp_path / "run"
    assert main(["run", "--matrix", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()


def test_run_rates_a_finished_clean_cell_under_a_corruption_added_later(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    out = tmp_path / "run"
    assert _run(data_dir, cache_dir, out, _matrix(tmp_path, severities="[0.0]")) == 0
    capsys.readouterr()

    # the same clean cell, now also the baseline of block_pixels: rated, not retrained
    other = tmp_path / "other.toml"
    other.write_text(_matrix(tmp_path).read_text().replace('"gaussian"', '"block_pixels"'))
    monkeypatch.setattr(runner, "_run_cell", lambda *args: pytest.fail("a cell was trained"))
    assert _run(data_dir, cache_dir, out, other, "--force", "-k", "clean") == 0
    assert "1 cells: 1 done, 0 failed, 0 diverged, 1 cached, 2 deselected in" in (
        capsys.readouterr().out
    )
    with sqlite3.connect(out / "results.sqlite") as db:
        for table in ("artifact_rates", "data_artifact_rates"):
            rows = db.execute(f"SELECT corruption, value, num_samples FROM {table}").fetchall()
            assert sorted(r[0] for r in rows) == ["block_pixels", "gaussian"], table
            assert all(0.0 <= r[1] <= 1.0 and r[2] == 100 for r in rows), rows
