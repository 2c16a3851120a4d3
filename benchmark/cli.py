"""The command line: `run` trains and scores a matrix, `list` shows its cells without
running them, `report` tabulates a run directory, `plugins` lists what a matrix can name.

python -m benchmark run --matrix quick --data-dir ../shared/data
python -m benchmark list --matrix full -k "emnist and not ambient"
python -m benchmark report runs/quick
python -m benchmark plugins --plugin my_corruption.py
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from benchmark.errors import BenchmarkError, ConfigError

logger = logging.getLogger(__name__)


class RunCommand:
    """Train and score every unfinished cell of a matrix."""

    name = "run"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--matrix", required=True, help="preset name or path to a .toml file")
        parser.add_argument("--out", type=Path, help="run directory (default: runs/<matrix name>)")
        _add_selection_options(parser)
        parser.add_argument(
            "-x", "--exitfirst", action="store_true", help="stop after the first failed cell"
        )
        parser.add_argument(
            "--force", action="store_true",
            help="run in a directory made by a different matrix (cell ids never collide)",
        )  # fmt: skip
        parser.add_argument("--executor", choices=("local", "dask"), default="local")
        parser.add_argument(
            "--threads", type=int,
            help="torch threads per cell (default: all cores for local, 1 per dask worker)",
        )  # fmt: skip
        parser.add_argument(
            "--workers", type=int, help="dask: worker processes of a new local cluster (default 2)"
        )
        parser.add_argument(
            "--scheduler", metavar="ADDRESS",
            help="dask: join a running cluster, e.g. tcp://10.0.0.5:8786",
        )  # fmt: skip
        parser.add_argument(
            "--data-dir", type=Path,
            help="folder with MNIST's IDX gz files (itself or its mnist/ subfolder); "
            "default: download with torchvision into the cache",
        )  # fmt: skip
        parser.add_argument(
            "--cache-dir",
            type=Path,
            help="default: $GAN_ROBUSTNESS_CACHE or ~/.cache/gan-robustness",
        )
        parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
        parser.add_argument(
            "--inception-weights", type=Path, metavar="FILE",
            help="torch-fidelity's InceptionV3 weights (.pth), for matrices with "
            "feature_extractor = 'inception'; default: torch hub's cache, downloading if missing",
        )  # fmt: skip
        _add_plugin_option(parser)

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        import torch

        from benchmark.data import default_cache_dir
        from benchmark.executors import make_executor
        from benchmark.matrix import load_matrix
        from benchmark.runner import RunContext, RunOptions, resolve_device, run_matrix
        from benchmark.selection import parse_keyword

        _import_plugins(args.plugin)
        matrix = load_matrix(args.matrix)
        if args.threads is not None and args.threads < 1:
            raise ConfigError(f"--threads must be an integer >= 1, got {args.threads}")
        if args.keyword is not None:
            parse_keyword(args.keyword)  # a malformed expression fails before anything runs
        executor = make_executor(args.executor, args.workers, args.scheduler)
        if args.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                "--device 'cuda' was asked for but torch sees no CUDA device; use auto or cpu"
            )
        context = RunContext(
            out_dir=args.out or Path("runs") / matrix.name,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir or default_cache_dir(),
            device=resolve_device(args.device),
            inception_weights=args.inception_weights,
            plugins=tuple(path.resolve() for path in args.plugin),
            threads=args.threads,
        )
        options = RunOptions(
            keyword=args.keyword, last_failed=args.last_failed, exit_first=args.exitfirst,
            force=args.force, progress=sys.stderr.isatty(),
        )  # fmt: skip
        summary = run_matrix(matrix, context, options, executor)
        print(summary.line())
        print(f"results: {context.out_dir}")
        return 1 if summary.failed else 0


class ListCommand:
    """Show a matrix's cells, their ids, status and estimated cost, without running them."""

    name = "list"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--matrix", required=True, help="preset name or path to a .toml file")
        parser.add_argument(
            "--out", type=Path, help="run directory whose status to show (default: runs/<name>)"
        )
        _add_selection_options(parser)
        _add_plugin_option(parser)

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        from benchmark.listing import describe_cells
        from benchmark.matrix import load_matrix

        _import_plugins(args.plugin)
        matrix = load_matrix(args.matrix)
        out = args.out or Path("runs") / matrix.name
        print(describe_cells(matrix, out, args.keyword, args.last_failed), end="")
        return 0


class ReportCommand:
    """Decide robustness thresholds and write tables, figures and an HTML page for a run."""

    name = "report"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        from reports.build import FORMATS
        from reports.thresholds import ALPHA, DEFAULT_METRICS

        parser.add_argument("run_dir", type=Path, help="a directory written by `run`")
        parser.add_argument("--out", type=Path, help="where files go (default: RUN_DIR/report)")
        parser.add_argument(
            "--metric", action="append", metavar="NAME",
            help="a metric to decide thresholds on (repeatable; default: "
            f"{', '.join(DEFAULT_METRICS)})",
        )  # fmt: skip
        parser.add_argument(
            "--format", default=",".join(FORMATS), metavar="LIST",
            help=f"comma-separated outputs among {', '.join(FORMATS)} (default: all)",
        )  # fmt: skip
        parser.add_argument(
            "--tolerance", action="append", default=[], metavar="METRIC=VALUE",
            help="replace a metric's tolerance, e.g. fid=0.2 (relative) or recall=0.1",
        )  # fmt: skip
        parser.add_argument("--alpha", type=float, default=ALPHA, help="significance level")

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        from reports.build import build_report
        from reports.thresholds import DEFAULT_METRICS

        tolerances = {}
        for item in args.tolerance:
            metric, _, value = item.partition("=")
            try:
                tolerances[metric] = float(value)
            except ValueError as err:
                raise ConfigError(
                    f"--tolerance {item!r} is not METRIC=NUMBER, e.g. fid=0.2"
                ) from err
        formats = [name.strip() for name in args.format.split(",") if name.strip()]
        report = build_report(
            args.run_dir, args.out or args.run_dir / "report",
            metrics=args.metric or DEFAULT_METRICS, formats=formats,
            tolerances=tolerances, alpha=args.alpha,
        )  # fmt: skip
        print(report.text)
        for path in report.paths:
            if path.parent.name != "figures":
                print(f"wrote {path}")
        figures = [path for path in report.paths if path.parent.name == "figures"]
        if figures:
            print(f"wrote {len(figures)} figures in {figures[0].parent}")
        return 0


class PluginsCommand:
    """List every registered corruption and GAN with its parameters and defaults."""

    name = "plugins"

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        _add_plugin_option(parser)

    @staticmethod
    def execute(args: argparse.Namespace) -> int:
        from benchmark.plugins import describe_plugins

        _import_plugins(args.plugin)
        print(describe_plugins(), end="")
        return 0


def _add_selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k", dest="keyword", metavar="EXPR",
        help="only cells whose names match, e.g. \"emnist and not ambient\" (pytest-style)",
    )  # fmt: skip
    parser.add_argument(
        "--lf", "--last-failed", dest="last_failed", action="store_true",
        help="only the cells that failed last time (all, if none did)",
    )  # fmt: skip


def _add_plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin", type=Path, action="append", default=[], metavar="FILE",
        help="import a Python file that registers plugins (repeatable)",
    )  # fmt: skip


def _import_plugins(paths: list[Path]) -> None:
    from benchmark.plugins import import_plugin_file

    for path in paths:
        import_plugin_file(path)


COMMANDS = (RunCommand, ListCommand, ReportCommand, PluginsCommand)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark",
        description="Robustness benchmark for GANs trained on corrupted data.",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log per-epoch detail")
    verbosity.add_argument(
        "-q", "--quiet", action="store_true", help="log warnings and errors only"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.__doc__)
        command.add_arguments(sub)
        sub.set_defaults(execute=command.execute)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # a local Dask cluster logs a dozen INFO lines of its own start-up
        logging.getLogger("distributed").setLevel(max(level, logging.WARNING))
    try:
        return args.execute(args)
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
