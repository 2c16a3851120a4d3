"""Where cells run: one after another in this process, or as tasks on a Dask cluster.

python -m benchmark run --matrix quick --executor dask --workers 2
python -m benchmark run --matrix full --executor dask --scheduler tcp://10.0.0.5:8786

An executor takes pending cells and yields `(cell, CellResult)` pairs as cells
finish, in any order. Workers only compute; the driver writes every result.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping
from typing import Any

from benchmark.errors import ConfigError
from benchmark.matrix import Cell
from benchmark.runner import RunContext, run_cell
from benchmark.store import CellResult

logger = logging.getLogger(__name__)

Detect = Mapping[str, tuple[tuple[str, str], ...]]  # cell id -> its (corruption, params) roles


class LocalExecutor:
    """Cells one after another in this process."""

    name = "local"

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def run(
        self, cells: list[Cell], context: RunContext, detect: Detect
    ) -> Iterator[tuple[Cell, CellResult]]:
        for cell in cells:
            yield cell, run_cell(cell, context, detect[cell.id])


class DaskExecutor:
    """Cells as tasks on a `distributed` cluster: an existing one, or a `LocalCluster`.

    A cell whose worker dies (killed, out of memory) is run once more
    elsewhere; a second death records it as failed and the matrix goes on.
    On a cluster of our own that is the scheduler's `allowed-failures = 1`; a
    cluster joined with `scheduler` keeps its own setting (Dask's default: 3).

    Args:
        workers: processes of a new `LocalCluster`, one thread each.
        scheduler: address of a running scheduler (`dask scheduler`); its
            workers must see the data, cache and run directories and any
            `--plugin` files at the same paths.
        timeout: how long to try reaching `scheduler`.
    """

    name = "dask"

    def __init__(
        self, workers: int | None = None, scheduler: str | None = None, timeout: str = "20s"
    ) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError as err:
            raise ConfigError(
                "--executor dask needs the distributed package; pip install 'dask[distributed]'"
            ) from err
        if workers is not None and scheduler is not None:
            raise ConfigError("--workers starts a local cluster; it cannot go with --scheduler")
        self.workers = workers
        self.scheduler = scheduler
        self.timeout = timeout
        self._cluster: Any = None
        self._client: Any = None

    def __enter__(self) -> DaskExecutor:
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            try:
                self._client = Client(self.scheduler, timeout=self.timeout)
            except OSError as err:
                raise ConfigError(
                    f"--scheduler {self.scheduler!r} cannot be reached: {err}"
                ) from err
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                self._cluster = LocalCluster(
                    n_workers=self.workers or 2, threads_per_worker=1, processes=True,
                    dashboard_address=None,
                )  # fmt: skip
            self._client = Client(self._cluster)
        logger.info("dask cluster scheduler=%s", self._client.scheduler.address)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def run(
        self, cells: list[Cell], context: RunContext, detect: Detect
    ) -> Iterator[tuple[Cell, CellResult]]:
        from distributed import as_completed

        if context.threads is None:
            context = dataclasses.replace(context, threads=1)  # one per worker process
        futures = {
            self._client.submit(
                _run_on_worker, cell, context, detect[cell.id], key=f"cell-{cell.id}", pure=False
            ): cell
            for cell in cells
        }
        submitted = time.time()
        try:
            for future in as_completed(futures):
                cell = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # KilledWorker after a second death, or a lost task
                    logger.error("cell %s failed on the cluster: %s", cell.label, err)
                    result = CellResult(
                        cell.id, "failed", submitted, time.time(),
                        error=f"{type(err).__name__}: {err}",
                    )  # fmt: skip
                yield cell, result
        finally:
            # stopping early (-x) leaves no task running
            self._client.cancel([f for f in futures if not f.done()])


def _run_on_worker(
    cell: Cell, context: RunContext, detect: tuple[tuple[str, str], ...]
) -> CellResult:
    from benchmark.plugins import import_plugin_file

    for path in context.plugins:
        import_plugin_file(path)
    return run_cell(cell, context, detect)


def make_executor(
    name: str, workers: int | None, scheduler: str | None
) -> LocalExecutor | DaskExecutor:
    """The executor `--executor` names, with its options checked.

    Raises:
        ConfigError: for options that do not go with the executor.
    """
    if name == "local":
        if workers is not None or scheduler is not None:
            raise ConfigError("--workers and --scheduler go with --executor dask")
        return LocalExecutor()
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1, got {workers}")
    return DaskExecutor(workers, scheduler)
