"""Dask against local execution, a worker killed mid-cell, and the driver killed mid-matrix."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

KILLING_PLUGIN = '''
"""A GAN whose training kills its own process: a worker lost mid-cell."""
import json
import os
import signal
from pathlib import Path

from gans import GANS
from gans.vanilla import VanillaGAN


@GANS.register("worker_killer_test")
class WorkerKiller(VanillaGAN):
    """Appends a line to `marker`, then dies by SIGKILL at its first step."""

    def __init__(self, *, marker: str = ""):
        super().__init__(latent_dim=8)
        self.marker = marker

    def params(self):
        return {"marker": self.marker}

    def train_step(self, real, generator):
        with open(self.marker, "a") as handle:
            handle.write(f"{os.getpid()}\\n")
        os.kill(os.getpid(), signal.SIGKILL)
'''


def _metrics(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return db.execute(
            "SELECT c.label, m.name, m.value FROM metrics m JOIN cells c ON c.id = m.cell_id "
            "ORDER BY c.label, m.name"
        ).fetchall()


def test_dask_local_cluster_gives_the_local_metrics(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    common = ["--matrix", "smoke", "--data-dir", str(data_dir), "--cache-dir", str(cache_dir)]
    local, dask = tmp_path / "local", tmp_path / "dask"
    assert main(["run", *common, "--out", str(local), "--threads", "1"]) == 0
    assert main(["run", *common, "--out", str(dask), "--executor", "dask", "--workers", "2"]) == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 0 cached in" in capsys.readouterr().out
    assert _metrics(dask) == _metrics(local)  # bit for bit, at one thread a cell
    assert len(_metrics(local)) == 2 * 18


def test_dask_worker_killed_mid_cell_is_retried_once_then_failed(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    plugin = tmp_path / "killer.py"
    plugin.write_text(KILLING_PLUGIN)
    marker = tmp_path / "attempts.txt"
    matrix = tmp_path / "killer.toml"
    matrix.write_text(
        '[matrix]\nname = "killer"\n'
        '[[corruptions]]\nname = "gaussian"\nseverities = [0.0]\n'
        f'[[gans]]\nname = "worker_killer_test"\nparams = {{ marker = "{marker}" }}\n'
        '[[gans]]\nname = "vanilla"\nparams = { latent_dim = 8 }\n'
        "[training]\nepochs = 1\nbatch_size = 64\ntrain_subset = 128\n"
        "[evaluation]\nsamples = 100\n"
    )
    out = tmp_path / "run"
    code = main(["run", "--matrix", str(matrix), "--data-dir", str(data_dir),
                 "--cache-dir", str(cache_dir), "--out", str(out), "--plugin", str(plugin),
                 "--executor", "dask", "--workers", "2"])  # fmt: skip
    assert code == 1
    assert "2 cells: 1 done, 1 failed, 0 diverged, 0 cached in" in capsys.readouterr().out
    assert len(marker.read_text().split()) == 2  # two attempts, in two worker processes
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = dict(db.execute("SELECT gan, status FROM cells"))
        (error,) = db.execute("SELECT error FROM cells WHERE status = 'failed'").fetchone()
    assert rows == {"worker_killer_test": "failed", "vanilla": "done"}
    assert error.startswith("KilledWorker")


def test_driver_killed_mid_matrix_loses_only_cells_in_flight(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    matrix = tmp_path / "long.toml"
    matrix.write_text(
        '[matrix]\nname = "long"\n'
        '[[corruptions]]\nname = "gaussian"\nseverities = [0.0, 0.2, 0.4, 0.6]\n'
        '[[gans]]\nname = "vanilla"\nparams = { latent_dim = 8 }\n'
        "[training]\nepochs = 3\nbatch_size = 64\ntrain_subset = 1024\n"
        "[evaluation]\nsamples = 200\n"
    )
    out = tmp_path / "run"
    args = ["run", "--matrix", str(matrix), "--data-dir", str(data_dir),
            "--cache-dir", str(cache_dir), "--out", str(out)]  # fmt: skip
    driver = subprocess.Popen(
        [sys.executable, "-m", "benchmark", "-q", *args], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        done = _wait_for_done_cells(out / "results.sqlite", driver, at_least=1)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert 1 <= done < 4, "the run finished before it could be killed"

    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = _metrics(out)

    assert main(args) == 0
    assert f"4 cells: 4 done, 0 failed, 0 diverged, {done} cached in" in capsys.readouterr().out
    after = _metrics(out)
    assert set(before) <= set(after)  # finished cells keep their metrics bit for bit
    assert len(after) == 4 * 18


def _wait_for_done_cells(
    database: Path, driver: subprocess.Popen, at_least: int, timeout: float = 300
) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if driver.poll() is not None:
            pytest.fail(f"the run ended (exit {driver.returncode}) before it was killed")
        if database.exists():
            try:
                with sqlite3.connect(database, timeout=1) as db:
                    (done,) = db.execute(
                        "SELECT count(*) FROM cells WHERE status = 'done'"
                    ).fetchone()
            except sqlite3.OperationalError:
                done = 0  # the schema is still being written
            if done >= at_least:
                return done
        time.sleep(0.2)
    pytest.fail("no cell finished in time")


def test_dask_joins_a_running_cluster(
    data_dir: Path, cache_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        pytest.skip(f"the dask command is not installed beside {sys.executable}")
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--scheduler-file", scheduler_file, "--port", "0",
         "--no-dashboard"], **quiet,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        worker = subprocess.Popen(
            [dask, "worker", "--scheduler-file", scheduler_file, "--nworkers", "2",
             "--nthreads", "1", "--no-dashboard"], cwd=REPO, **quiet,
        )  # fmt: skip
        address = json.loads(scheduler_file.read_text())["address"]
        out = tmp_path / "run"
        code = main(["run", "--matrix", "smoke", "--data-dir", str(data_dir),
                     "--cache-dir", str(cache_dir), "--out", str(out),
                     "--executor", "dask", "--scheduler", address])  # fmt: skip
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    assert code == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 0 cached in" in capsys.readouterr().out
    assert json.loads((out / "environment.json").read_text())["executor"] == "dask"


def test_dask_unreachable_scheduler_is_an_error() -> None:
    from benchmark.errors import ConfigError
    from benchmark.executors import DaskExecutor

    executor = DaskExecutor(scheduler="tcp://127.0.0.1:9", timeout="2s")
    with pytest.raises(ConfigError, match=r"--scheduler 'tcp://127.0.0.1:9' cannot be reached"):
        executor.__enter__()
