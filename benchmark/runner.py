"""Run the cells of a matrix: corrupt, train, sample, score, and store each one.

`run_cell` is what a worker does for one cell and returns a `CellResult`;
`run_matrix` is the driver: it skips finished cells and writes each result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torchvision.utils import save_image
from tqdm import tqdm

from benchmark import __version__
from benchmark.artifacts import DETECTOR_NAME, Detector, artifact_rate, load_or_train_detector
from benchmark.data import ImageSet, default_cache_dir, load_mnist
from benchmark.errors import ConfigError
from benchmark.inception import load_inception
from benchmark.matrix import CLEAN, Cell, Matrix, Role
from benchmark.metrics import Extractor, extractor_hash, load_or_train_extractor, score_samples
from benchmark.selection import cell_names, parse_keyword
from benchmark.store import (
    FINISHED,
    ArtifactRate,
    CellResult,
    EpochEvaluation,
    Scores,
    Store,
)
from benchmark.training import to_uint8, train_gan
from corruptions import CORRUPTIONS, Corrupted, Corruption
from gans import GAN, GANS

logger = logging.getLogger(__name__)

GRID_IMAGES = 64  # images in each saved sample grid (8 x 8)


@dataclass(frozen=True)
class RunContext:
    """Where data, caches and results live, and the device to train on."""

    out_dir: Path
    data_dir: Path | None = None
    cache_dir: Path = field(default_factory=default_cache_dir)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    inception_weights: Path | None = None  # None: torch hub's cache, downloading if missing
    plugins: tuple[Path, ...] = ()  # --plugin files, imported again by each worker process
    threads: int | None = None  # torch threads per cell; None keeps the process's setting


@dataclass(frozen=True)
class Summary:
    """Counts of a finished `run_matrix`, over the selected cells.

    `done`, `diverged` and `failed` include cells finished by an earlier run
    (`cached`); `not_run` are those `-x` left when it stopped.
    """

    total: int
    done: int
    diverged: int
    failed: int
    cached: int
    deselected: int
    not_run: int
    seconds: float

    def line(self) -> str:
        line = (
            f"{self.total} cells: {self.done} done, {self.failed} failed, "
            f"{self.diverged} diverged, {self.cached} cached"
        )
        if self.deselected:
            line += f", {self.deselected} deselected"
        if self.not_run:
            line += f", {self.not_run} not run"
        return f"{line} in {duration_text(self.seconds)}"


def resolve_device(name: str) -> torch.device:
    """'auto' takes CUDA when present, else the CPU; 'cpu' and 'cuda' are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_for(seed: int, purpose: str) -> int:
    """An independent 62-bit seed per (cell seed, purpose), so streams never overlap."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


@functools.lru_cache(maxsize=4)
def _mnist(split: str, data_dir: Path | None, cache_dir: Path) -> ImageSet:
    return load_mnist(split, data_dir, cache_dir)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=2)
def _extractor(kind: str, context: RunContext) -> Extractor:
    """The feature network `kind` names (see `EvaluationConfig.feature_extractor`)."""
    if kind == "inception":
        return load_inception(context.inception_weights)
    train = _mnist("train", context.data_dir, context.cache_dir)
    test = _mnist("test", context.data_dir, context.cache_dir)
    return load_or_train_extractor(train, test, context.cache_dir, context.device)


def run_cell(
    cell: Cell, context: RunContext, detect: tuple[tuple[str, str], ...] = ()
) -> CellResult:
    """Corrupt, train, sample and score one cell; never raises for a cell's own failure.

    Args:
        cell: what to run.
        context: data, cache, output folder and device.
        detect: the (corruption name, canonical params JSON) pairs the cell
            stands for in the matrix; its samples get an artifact rate under
            each one's detector (a clean cell stands for every corruption).

    Artifacts (sample grids, final samples, generator weights) are written to
    `cells/<id>/`; everything meant for the database is in the returned result.
    """
    started = time.time()
    if context.threads is not None:
        # NOTE: float sums depend on the thread count (FID differs by ~1e-9
        # between 1 and 2 threads); equal counts give bit-identical cells anywhere
        torch.set_num_threads(context.threads)
    try:
        return _run_cell(cell, context, started, detect)
    except Exception as err:  # a broken cell is recorded, never a crash of the matrix
        logger.error("cell %s failed: %s", cell.label, err)
        return CellResult(
            cell.id, "failed", started, time.time(),
            error="".join(traceback.format_exception(err)),
        )  # fmt: skip


def _run_cell(
    cell: Cell, context: RunContext, started: float, detect: tuple[tuple[str, str], ...]
) -> CellResult:
    device = context.device
    folder = context.out_dir / "cells" / cell.id
    folder.mkdir(parents=True, exist_ok=True)

    # build the (corrupted) training set; it depends on the seed, not on the GAN
    images, corruption, corrupted = _training_set(cell, context)
    checksum = dataset_checksum(images)
    if corruption is not None and corrupted is not None:
        extra = {"sha256": checksum, **corruption.manifest()}
        write_manifest(folder / "manifest.json", cell, corrupted, extra)

    scoring = _Stopwatch()  # kept apart from training time
    with scoring:
        data_scores = _data_scores(images, checksum, cell, context)
        data_rates = _data_artifact_rates(images, checksum, cell, context, detect)

    # train, saving a sample grid at each checkpoint epoch
    torch.manual_seed(seed_for(cell.seed, "weights"))
    gan = GANS.create(cell.gan, dict(cell.gan_params))
    if gan.needs_measurement:
        assert corruption is not None, "a clean cell never runs a corruption-aware GAN"
        gan.attach_measurement(corruption, cell.severity)
    gan.setup(device)
    rng = torch.Generator(device=device).manual_seed(seed_for(cell.seed, "train"))
    grid_latents = torch.Generator(device=device).manual_seed(seed_for(cell.seed, "grid"))
    grid_state = grid_latents.get_state()

    evaluations: list[EpochEvaluation] = []

    def checkpoint(epoch: int) -> None:
        if epoch in cell.training.checkpoint_epochs:
            grid_latents.set_state(grid_state)  # the same latents at every checkpoint
            _save_grid(
                _sample(gan, GRID_IMAGES, grid_latents), folder / f"samples-epoch{epoch:03d}.png"
            )
        if epoch in cell.evaluation.epochs:
            # NOTE: building a network draws from torch's global RNG, which dropout
            # uses in training; a forked RNG keeps the cell identical to one never
            # evaluated mid-training.
            cuda = [device] if device.type == "cuda" else []
            with scoring, torch.random.fork_rng(devices=cuda):
                evaluations.append(_evaluate_epoch(gan, epoch, cell, context, detect))

    outcome = train_gan(gan, images, cell.training, device, rng, on_epoch_end=checkpoint)
    trained = time.time()
    train_seconds = trained - started - scoring.seconds
    if outcome.diverged:
        return CellResult(
            cell.id, "diverged", started, trained, train_seconds=train_seconds,
            eval_seconds=scoring.seconds, epochs_done=outcome.epochs_done,
            history=outcome.history, error=outcome.diverged,
            data_scores=data_scores, data_artifact_rates=data_rates, evaluations=evaluations,
        )  # fmt: skip

    # sample, save artifacts and score against clean MNIST test
    sample_rng = torch.Generator(device=device).manual_seed(seed_for(cell.seed, "samples"))
    samples = to_uint8(_sample(gan, cell.evaluation.samples, sample_rng))
    _save_grid(samples[:GRID_IMAGES].float() / 127.5 - 1.0, folder / "samples.png")
    torch.save(samples, folder / "samples.pt")
    torch.save(gan.generator_network().state_dict(), folder / "generator.pt")
    scores = _score(samples, cell, context)
    rates = [_artifact_rate(samples, name, params, context) for name, params in detect]
    finished = time.time()
    return CellResult(
        cell.id, "done", started, finished, train_seconds=train_seconds,
        eval_seconds=scoring.seconds + finished - trained, epochs_done=outcome.epochs_done,
        scores=scores, data_scores=data_scores, artifact_rates=rates,
        data_artifact_rates=data_rates,
        evaluations=evaluations, history=outcome.history,
    )  # fmt: skip


def _training_set(
    cell: Cell, context: RunContext
) -> tuple[torch.Tensor, Corruption | None, Corrupted | None]:
    """The cell's uint8 training images, with its corruption and what it did (None if clean)."""
    train = _mnist("train", context.data_dir, context.cache_dir)
    images = train.images[: cell.training.train_subset]
    if cell.corruption == CLEAN:
        return images, None, None
    corruption = _prepared(cell.corruption, cell.corruption_params, context)
    data_rng = torch.Generator().manual_seed(seed_for(cell.seed, "data"))
    corrupted = corruption.corrupt(images, cell.severity, data_rng)
    return corrupted.images, corruption, corrupted


class _Stopwatch:
    """Adds up the seconds spent inside its `with` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        self._begun = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self.seconds += time.perf_counter() - self._begun


def _evaluate_epoch(
    gan: GAN, epoch: int, cell: Cell, context: RunContext, detect: tuple[tuple[str, str], ...]
) -> EpochEvaluation:
    """Score the generator as it is after `epoch`, on `epoch_samples` images.

    The latents are the same at every epoch, and drawn from their own stream,
    so evaluating leaves training exactly as it would be without.
    """
    latents = torch.Generator(device=context.device)
    latents.manual_seed(seed_for(cell.seed, "epoch-samples"))
    samples = to_uint8(_sample(gan, cell.evaluation.epoch_samples, latents))
    scores = _score(samples, cell, context)
    rates = [_artifact_rate(samples, name, params, context) for name, params in detect]
    logger.info(
        "epoch evaluation id=%s epoch=%d samples=%d fid=%.4g%s",
        cell.id, epoch, len(samples), scores.values["fid"],
        "".join(f" artifact_rate[{r.corruption}]={r.value:.4g}" for r in rates),
    )  # fmt: skip
    return EpochEvaluation(epoch, scores, rates)


def _artifact_rate(
    samples: torch.Tensor, name: str, params: str, context: RunContext
) -> ArtifactRate:
    detector = _detector(name, params, context)
    value = artifact_rate(samples, detector, context.device)
    return ArtifactRate(
        name, params, value, DETECTOR_NAME, detector.hash, detector.accuracy, len(samples)
    )


@functools.lru_cache(maxsize=16)
def _detector(name: str, params: str, context: RunContext) -> Detector:
    corruption = _role_corruption(name, params, context)
    train = _mnist("train", context.data_dir, context.cache_dir)
    test = _mnist("test", context.data_dir, context.cache_dir)
    return load_or_train_detector(corruption, train, test, context.cache_dir, context.device)


def _role_corruption(name: str, params: str, context: RunContext) -> Corruption:
    """The prepared corruption of a role: a name and its canonical params JSON."""
    # a shorthand's resolved params are its long form's (`Corruption.canonical`)
    cls = CORRUPTIONS.get(name)
    resolved = tuple(sorted(json.loads(params).items()))
    return _prepared(cls.canonical or name, resolved, context)


def write_manifest(path: Path, cell: Cell, corrupted: Corrupted, extra: dict[str, object]) -> None:
    """Record what the cell's corrupted dataset is made of, so it can be rebuilt and verified.

    The rebuild is `corrupt(MNIST train[:train_subset], severity, Generator().manual_seed(
    data_seed))` with the recorded parameters; `sha256` is over the resulting uint8 array.
    """
    contaminants = corrupted.contaminant_indices
    manifest = {
        "cell_id": cell.id,
        "corruption": cell.corruption,
        "params": dict(cell.corruption_params),
        "severity": cell.severity,
        "data_seed": seed_for(cell.seed, "data"),
        "train_subset": cell.training.train_subset,
        "size": len(corrupted.images),
        "corrupted_count": int(corrupted.mask.sum()),
        "corrupted_indices": torch.nonzero(corrupted.mask).flatten().tolist(),
        "contaminant_indices": None if contaminants is None else contaminants.tolist(),
        **extra,
    }
    path.write_text(json.dumps(manifest) + "\n")


def dataset_checksum(images: torch.Tensor) -> str:
    """sha256 of a uint8 image array's bytes, with its shape."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()


_DATA_SCORES: dict[tuple[str, int, int, str], Scores] = {}


def _data_scores(images: torch.Tensor, checksum: str, cell: Cell, context: RunContext) -> Scores:
    """The metrics of the training set itself: what a perfect imitator of it would score.

    A seeded random `samples`-sized subset is scored like generated samples; the
    result is kept per distinct dataset, so the GANs of a matrix that train on
    the same data share one computation. `data_fid` must grow with severity, or
    the metric cannot see the corruption.
    """
    count = min(cell.evaluation.samples, len(images))
    key = (checksum, count, cell.seed, cell.evaluation.feature_extractor)
    if key not in _DATA_SCORES:
        scores = _score(_data_subset(images, cell), cell, context)
        values = {f"data_{name}": value for name, value in scores.values.items()}
        _DATA_SCORES[key] = Scores(
            values, scores.extractor, scores.extractor_hash, count, scores.num_reference
        )
    return _DATA_SCORES[key]


_DATA_RATES: dict[tuple[str, int, int, str, str], ArtifactRate] = {}


def _data_artifact_rates(
    images: torch.Tensor, checksum: str, cell: Cell, context: RunContext,
    detect: tuple[tuple[str, str], ...],
) -> list[ArtifactRate]:  # fmt: skip
    """The artifact rate of the training set itself under each detector the cell stands for:
    the rate a perfect imitator of it would get. Kept per distinct dataset, like `data_*`."""
    subset = None
    rates = []
    for name, params in detect:
        key = (checksum, min(cell.evaluation.samples, len(images)), cell.seed, name, params)
        if key not in _DATA_RATES:
            subset = _data_subset(images, cell) if subset is None else subset
            _DATA_RATES[key] = _artifact_rate(subset, name, params, context)
        rates.append(_DATA_RATES[key])
    return rates


def _data_subset(images: torch.Tensor, cell: Cell) -> torch.Tensor:
    """A seeded random `samples`-sized subset of a training set, scored like samples."""
    count = min(cell.evaluation.samples, len(images))
    rng = torch.Generator().manual_seed(seed_for(cell.seed, "data-sample"))
    return images[torch.randperm(len(images), generator=rng)[:count]]


@torch.no_grad()
def _sample(gan: GAN, count: int, generator: torch.Generator) -> torch.Tensor:
    chunks = [gan.sample(min(1000, count - start), generator) for start in range(0, count, 1000)]
    return torch.cat(chunks)


def _score(
    samples: torch.Tensor, cell: Cell | Matrix, context: RunContext, cache_name: str | None = None
) -> Scores:
    """Score images against MNIST test with the feature network the cell's evaluation names."""
    extractor = _extractor(cell.evaluation.feature_extractor, context)
    test = _mnist("test", context.data_dir, context.cache_dir)
    values = score_samples(samples, test, extractor, context.cache_dir, context.device, cache_name)
    return Scores(values, extractor.name, extractor.hash, len(samples), len(test.images))


def _save_grid(images: torch.Tensor, path: Path) -> None:
    # images in [-1, 1]; save_image wants [0, 1]
    save_image(images.detach().cpu().add(1.0).div(2.0), path, nrow=8, padding=2)


def environment(device: torch.device, executor: str = "local") -> dict[str, Any]:
    """Versions, machine, device, executor and source revision, saved beside the results."""
    from importlib import metadata

    versions = {}
    for package in ("torch", "torchvision", "torch-fidelity", "numpy", "scipy", "pandas",
                    "dask", "distributed"):  # fmt: skip
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "benchmark": __version__,
        "git_revision": _git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "packages": versions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "executor": executor,
    }


def _git_revision() -> str | None:
    """The commit of the benchmark's source checkout, `+dirty` with local changes; None if none."""
    source = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


class Executor(Protocol):
    """Runs pending cells somewhere and yields `(cell, result)` as each finishes."""

    name: str

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def run(
        self,
        cells: list[Cell],
        context: RunContext,
        detect: Mapping[str, tuple[tuple[str, str], ...]],
    ) -> Iterator[tuple[Cell, CellResult]]: ...


@dataclass(frozen=True)
class RunOptions:
    """How `run_matrix` chooses and runs cells; the CLI's flags, pytest-style.

    Attributes:
        keyword: a `-k` expression over cell names (see `benchmark.selection`).
        last_failed: run only the cells stored as failed (all selected, if none are).
        exit_first: stop after the first failed cell.
        force: run in a directory made by a different matrix (ids never collide:
            each is the hash of its cell's full spec).
        progress: show a bar over cells on stderr.
    """

    keyword: str | None = None
    last_failed: bool = False
    exit_first: bool = False
    force: bool = False
    progress: bool = False


def run_matrix(
    matrix: Matrix,
    context: RunContext,
    options: RunOptions | None = None,
    executor: Executor | None = None,
) -> Summary:
    """Run every unfinished, selected cell of `matrix`, storing each as it ends.

    Args:
        matrix: what to run.
        context: data, cache, run directory and device.
        options: selection and flow (`-k`, `--lf`, `-x`, `--force`).
        executor: a `benchmark.executors` executor; None runs cells here, in turn.

    Returns:
        Counts of the selected cells by status (cached ones included), of the
        cached, deselected and not-run ones.

    Raises:
        StoreError: if the run directory cannot be written or another run holds it.
        ConfigError: if it was made by a different matrix (without `force`), or
            `-k` is malformed.
        DataError: if data or weights a pending cell needs cannot be had.
    """
    from benchmark.executors import LocalExecutor

    options = options or RunOptions()
    begun = time.time()
    if context.threads is not None:
        torch.set_num_threads(context.threads)  # the driver's scoring too (the baseline)
    store = Store(context.out_dir)
    try:
        _check_matrix(store, matrix, options.force)
        counts = _run_pending(matrix, context, store, options, executor or LocalExecutor())
    finally:
        store.close()
    return Summary(**counts, seconds=time.time() - begun)


def _check_matrix(store: Store, matrix: Matrix, force: bool) -> None:
    """Refuse a run directory made by another matrix, unless forced; then record this one."""
    resolved = json.loads(json.dumps(matrix.to_dict()))
    previous = store.read_json("matrix.json")
    if previous is not None and previous != resolved:
        if not force:
            raise ConfigError(
                f"run directory {str(store.root)!r} was made by a different matrix "
                f"({previous.get('matrix', {}).get('name')!r}); pass --force to add this "
                "matrix's cells to it, or choose another --out"
            )
        logger.warning("run directory %s was made by a different matrix; --force", store.root)
    store.write_json("matrix.json", resolved)


def _select(
    roles: list[Role], store: Store, options: RunOptions
) -> tuple[list[Cell], list[Cell], dict[str, str]]:
    """All distinct cells, the selected ones, and the stored status of those that have run."""
    cells = list({role.cell.id: role.cell for role in roles}.values())
    selected = cells
    if options.keyword is not None:
        matches = parse_keyword(options.keyword)
        names = cell_names(roles)
        selected = [cell for cell in cells if matches(names[cell.id])]
    statuses = store.statuses()
    if options.last_failed:
        failed = [cell for cell in selected if statuses.get(cell.id) == "failed"]
        if failed:
            selected = failed
        else:
            logger.info("no failed cells recorded: --lf runs every selected cell")
    return cells, selected, statuses


def _run_pending(
    matrix: Matrix, context: RunContext, store: Store, options: RunOptions, executor: Executor
) -> dict[str, int]:
    roles = matrix.roles()
    cells, selected, statuses = _select(roles, store, options)
    store.write_json("environment.json", environment(context.device, executor.name))
    store.record_roles(roles)
    pending = [cell for cell in selected if statuses.get(cell.id) not in FINISHED]
    counts = dict.fromkeys(("done", "diverged", "failed"), 0)
    for cell in selected:
        if statuses.get(cell.id) in FINISHED:
            counts[statuses[cell.id]] += 1
    counts.update(
        total=len(selected), cached=len(selected) - len(pending),
        deselected=len(cells) - len(selected), not_run=0,
    )  # fmt: skip
    logger.info(
        "run matrix=%s cells=%d selected=%d cached=%d out=%s device=%s executor=%s",
        matrix.name, len(cells), len(selected), counts["cached"], context.out_dir,
        context.device, executor.name,
    )  # fmt: skip

    # each cell's artifact rate under every corruption it stands for
    found: dict[str, set[tuple[str, str]]] = {}
    for role in roles:
        found.setdefault(role.cell.id, set()).add((role.corruption, role.corruption_params))
    detect = {cell_id: tuple(sorted(pairs)) for cell_id, pairs in found.items()}

    # missing data or weights are an error now, before any training, not a failed cell later
    _prepare_corruptions(pending, detect, context)
    if pending and matrix.evaluation.feature_extractor == "inception":
        _extractor("inception", context)

    # the real-data floor: MNIST train images scored like a generator's samples
    _record_train_baseline(store, matrix, context)

    # a finished cell the matrix now has stand for another corruption too (a clean
    # cell, after --force added one) is rated under that detector from its samples
    _rate_under_new_roles(store, selected, statuses, detect, context)

    # train the classifier and detectors here, once, before workers need them
    if pending:
        _extractor(matrix.evaluation.feature_extractor, context)
        for name, params in sorted({pair for cell in pending for pair in detect[cell.id]}):
            _detector(name, params, context)

    ran = 0
    if not pending:
        return counts  # a cluster is not started for nothing
    with executor, _progress(len(pending), options.progress) as bar:
        results = executor.run(pending, context, detect)
        for cell, result in results:
            store.record(cell, result)
            counts[result.status] += 1
            ran += 1
            _log_cell(cell, result)
            bar.update(1)
            if options.exit_first and result.status == "failed":
                results.close()
                logger.warning("stopping after the first failed cell (-x): %s", cell.label)
                break
    counts["not_run"] = len(pending) - ran
    return counts


def _rate_under_new_roles(
    store: Store, cells: list[Cell], statuses: dict[str, str],
    detect: Mapping[str, tuple[tuple[str, str], ...]], context: RunContext,
) -> None:  # fmt: skip
    """Add the artifact rates (of the samples and of the training set) that finished
    cells lack under the detectors of the roles they now have."""
    have = store.artifact_rate_keys()
    for cell in cells:
        missing = tuple(pair for pair in detect[cell.id] if pair not in have.get(cell.id, set()))
        if statuses.get(cell.id) != "done" or not missing:
            continue
        path = store.cell_dir(cell.id) / "samples.pt"
        if not path.exists():
            logger.warning("cell %s has no samples.pt: no artifact rate under %s", cell.label,
                           ", ".join(name for name, _ in missing))  # fmt: skip
            continue
        samples = torch.load(path, weights_only=True)
        images, _, _ = _training_set(cell, context)
        rates = [_artifact_rate(samples, name, params, context) for name, params in missing]
        data_rates = _data_artifact_rates(images, dataset_checksum(images), cell, context, missing)
        store.add_artifact_rates(cell.id, rates, data_rates)
        logger.info(
            "artifact rates added id=%s label=%s%s", cell.id, cell.label,
            "".join(f" artifact_rate[{r.corruption}]={r.value:.4g}" for r in rates),
        )  # fmt: skip


def _prepare_corruptions(
    cells: list[Cell], detect: Mapping[str, tuple[tuple[str, str], ...]], context: RunContext
) -> None:
    """Load the outside data of every corruption the cells stand for (decoded once into the
    cache): a corrupted cell's own, and each one whose detector rates a clean cell.

    Raises:
        DataError: if a corruption's data (an EMNIST split, say) cannot be had.
    """
    for name, params in sorted({pair for cell in cells for pair in detect[cell.id]}):
        _role_corruption(name, params, context)


@functools.lru_cache(maxsize=8)
def _prepared(name: str, params: tuple[tuple[str, object], ...], context: RunContext) -> Corruption:
    """A corruption with its outside data loaded, shared by the cells of this process."""
    corruption = CORRUPTIONS.create(name, dict(params))
    corruption.prepare(context.data_dir, context.cache_dir)
    return corruption


def _record_train_baseline(store: Store, matrix: Matrix, context: RunContext) -> None:
    count = min(matrix.evaluation.samples, 60000)
    train = _mnist("train", context.data_dir, context.cache_dir)
    digest = _extractor_hash(matrix.evaluation.feature_extractor, context)
    if store.has_baseline("mnist_train", digest, count):
        return  # a rerun with nothing left to do trains no classifier
    scores = _score(
        train.images[:count], matrix, context, cache_name=f"mnist-train-{train.checksum}-{count}"
    )
    store.record_baseline("mnist_train", scores)
    logger.info("baseline name=mnist_train samples=%d fid=%.4f", count, scores.values["fid"])


def _extractor_hash(kind: str, context: RunContext) -> str:
    """The hash of the feature network `kind` names, known without training the classifier."""
    if kind == "inception":
        return _extractor(kind, context).hash
    train = _mnist("train", context.data_dir, context.cache_dir)
    test = _mnist("test", context.data_dir, context.cache_dir)
    return extractor_hash(train, test)


def _log_cell(cell: Cell, result: CellResult) -> None:
    metrics = ""
    if result.scores is not None:
        metrics = " " + " ".join(f"{k}={v:.4g}" for k, v in result.scores.values.items())
        metrics += "".join(
            f" artifact_rate[{r.corruption}]={r.value:.4g}" for r in result.artifact_rates
        )
    logger.info(
        "cell id=%s label=%s status=%s epochs=%d train_s=%.1f eval_s=%.1f%s",
        cell.id, cell.label, result.status, result.epochs_done,
        result.train_seconds, result.eval_seconds, metrics,
    )  # fmt: skip


def _progress(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, unit="cell", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def duration_text(seconds: float) -> str:
    """`2h05m` from an hour up, `1m05s` from a minute up, else `42s`."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
