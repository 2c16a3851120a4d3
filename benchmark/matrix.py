"""Matrix files (TOML) and their expansion into cells.

A matrix crosses corruptions x severities x GANs x seeds; any plugin parameter
given as a list is swept too. Presets are matrix files shipped in `presets/`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError, PluginError
from corruptions import CORRUPTIONS
from corruptions.base import check_severity
from corruptions.registry import did_you_mean
from gans import GANS

CLEAN = "clean"


@dataclass(frozen=True)
class TrainingConfig:
    """How long and how each cell is trained."""

    epochs: int = 30
    batch_size: int = 128
    train_subset: int | None = None  # first-N images of MNIST train; None takes all 60,000
    checkpoint_epochs: tuple[int, ...] = ()  # epochs after which a sample grid is saved


FEATURE_EXTRACTORS = ("mnist-cnn", "inception")


@dataclass(frozen=True)
class EvaluationConfig:
    """How each cell is scored.

    The final generator is scored on `samples` images. After each of `epochs`
    (if any) the generator of that moment is scored too, on `epoch_samples`
    images: fewer, to keep it cheap, and the same count at every listed epoch
    so that the curve over training compares like with like.
    """

    samples: int = 10000  # generated images scored against clean MNIST test
    feature_extractor: str = "mnist-cnn"  # or "inception" (InceptionV3, for papers)
    epochs: tuple[int, ...] = ()  # intermediate evaluations, after these training epochs
    epoch_samples: int = 2000


@dataclass(frozen=True)
class CorruptionEntry:
    name: str
    severities: tuple[float, ...]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GanEntry:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Matrix:
    """A parsed matrix file; `cells()` expands it."""

    name: str
    seeds: tuple[int, ...]
    corruptions: tuple[CorruptionEntry, ...]
    gans: tuple[GanEntry, ...]
    training: TrainingConfig
    evaluation: EvaluationConfig

    def cells(self) -> list[Cell]:
        """Every distinct cell, in file order; clean cells shared by all corruptions appear once."""
        cells: dict[str, Cell] = {}
        for role in self.roles():
            cells.setdefault(role.cell.id, role.cell)
        return list(cells.values())

    def roles(self) -> list[Role]:
        """Every combination the matrix asks for, with the cell that computes it.

        Several roles share one cell where the computation is the same:
        severity 0 of every corruption, and a corruption-aware GAN on clean data.
        """
        roles = []
        for entry, gan in itertools.product(self.corruptions, self.gans):
            combos = itertools.product(
                _sweep(entry.params), entry.severities, _sweep(gan.params), self.seeds
            )
            for corruption_params, severity, gan_params, seed in combos:
                cell = make_cell(
                    entry.name, corruption_params, severity,
                    gan.name, gan_params, seed, self.training, self.evaluation,
                )  # fmt: skip
                role = Role(
                    cell,
                    entry.name, _resolved(CORRUPTIONS, entry.name, corruption_params),
                    gan.name, _resolved(GANS, gan.name, gan_params),
                )  # fmt: skip
                roles.append(role)
        return roles

    def to_dict(self) -> dict[str, Any]:
        """The resolved matrix, as saved beside the results."""
        return {
            "matrix": {"name": self.name, "seeds": list(self.seeds)},
            "corruptions": [
                {"name": c.name, "severities": list(c.severities), "params": dict(c.params)}
                for c in self.corruptions
            ],
            "gans": [{"name": g.name, "params": dict(g.params)} for g in self.gans],
            "training": asdict(self.training),
            "evaluation": asdict(self.evaluation),
        }


@dataclass(frozen=True)
class Role:
    """A combination the matrix asks for (plugins with resolved params) and its cell."""

    cell: Cell
    corruption: str
    corruption_params: str  # canonical JSON
    gan: str
    gan_params: str  # canonical JSON


@dataclass(frozen=True)
class Cell:
    """One training run: (corruption, severity, gan, seed, budget), with resolved parameters.

    A severity-0 cell is the clean cell, whatever corruption it came from.
    """

    corruption: str
    corruption_params: tuple[tuple[str, Any], ...]
    severity: float
    gan: str
    gan_params: tuple[tuple[str, Any], ...]
    seed: int
    training: TrainingConfig
    evaluation: EvaluationConfig

    def spec(self) -> dict[str, Any]:
        """The canonical spec that the cell id hashes."""
        return {
            "corruption": self.corruption,
            "corruption_params": dict(self.corruption_params),
            "severity": self.severity,
            "gan": self.gan,
            "gan_params": dict(self.gan_params),
            "seed": self.seed,
            "training": asdict(self.training),
            "evaluation": asdict(self.evaluation),
        }

    @property
    def id(self) -> str:
        canonical = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """A readable name, e.g. `gaussian-0.3-vanilla-s0`."""
        return f"{self.corruption}-{self.severity:g}-{self.gan}-s{self.seed}"


def make_cell(
    corruption: str,
    corruption_params: Mapping[str, Any],
    severity: float,
    gan: str,
    gan_params: Mapping[str, Any],
    seed: int,
    training: TrainingConfig,
    evaluation: EvaluationConfig,
) -> Cell:
    """Build a cell with every plugin default filled in, so equal runs get equal ids.

    Raises:
        PluginError: for unknown names or parameters, or a GAN that needs to
            simulate the corruption paired with one that cannot.
    """
    severity = check_severity(severity)
    gan_plugin = GANS.create(gan, gan_params)
    if severity == 0.0:
        corruption, resolved_corruption = CLEAN, {}
        # on clean data a corruption-aware GAN is its plain counterpart: one shared cell
        gan = gan_plugin.clean_equivalent or gan
    else:
        corruption_plugin = CORRUPTIONS.create(corruption, corruption_params)
        if gan_plugin.needs_measurement and not corruption_plugin.can_measure:
            raise PluginError(
                f"gan {gan!r} needs a corruption that can simulate itself on a batch; "
                f"corruption {corruption!r} cannot"
            )
        resolved_corruption = corruption_plugin.params()
        corruption = corruption_plugin.canonical or corruption
    resolved_gan = gan_plugin.params()
    return Cell(
        corruption=corruption,
        corruption_params=tuple(sorted(resolved_corruption.items())),
        severity=severity,
        gan=gan,
        gan_params=tuple(sorted(resolved_gan.items())),
        seed=seed,
        training=training,
        evaluation=evaluation,
    )


def _resolved(registry: Any, name: str, params: Mapping[str, Any]) -> str:
    return json.dumps(registry.create(name, params).params(), sort_keys=True)


def _sweep(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The cartesian product of every list-valued parameter."""
    keys = list(params)
    axes = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes)]


# --- parsing -----------------------------------------------------------------------------

_TOP_KEYS = ("matrix", "corruptions", "gans", "training", "evaluation")


def preset_names() -> list[str]:
    folder = resources.files("benchmark") / "presets"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_matrix(name_or_path: str) -> Matrix:
    """Load a preset by name, or a matrix TOML file by path.

    Raises:
        ConfigError: if neither a preset nor a readable file matches, the TOML is
            malformed, or any key, type or value is invalid.
    """
    path = Path(name_or_path)
    if name_or_path in preset_names():
        text = (resources.files("benchmark") / "presets" / f"{name_or_path}.toml").read_text()
        source = f"preset {name_or_path!r}"
    elif path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"--matrix {name_or_path!r} cannot be read: {err}") from err
        source = str(path)
    else:
        known = preset_names()
        raise ConfigError(
            f"--matrix {name_or_path!r} is neither a preset{did_you_mean(name_or_path, known)} "
            f"nor a .toml file; presets: {', '.join(known)}"
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from err
    return parse_matrix(data, source)


def parse_matrix(data: Mapping[str, Any], source: str = "matrix") -> Matrix:
    """Validate a decoded matrix file; see `load_matrix`."""
    _check_keys(data, _TOP_KEYS, source)
    head = _table(data, "matrix", source, required=True)
    _check_keys(head, ("name", "seeds"), f"{source} [matrix]")
    name = _typed(head, "name", str, f"{source} [matrix]", required=True)
    seeds = _typed(head, "seeds", list, f"{source} [matrix]", default=[0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(
            f"{source} [matrix] seeds must be a non-empty list of integers, got {seeds!r}"
        )
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{source} [matrix] seeds has duplicates: {seeds!r}")

    corruptions = tuple(
        _corruption(entry, f"{source} [[corruptions]]")
        for entry in _array(data, "corruptions", source)
    )
    gans = tuple(_gan(entry, f"{source} [[gans]]") for entry in _array(data, "gans", source))
    training = _config(TrainingConfig, _table(data, "training", source), f"{source} [training]")
    evaluation = _config(
        EvaluationConfig, _table(data, "evaluation", source), f"{source} [evaluation]"
    )
    for key, epochs in (
        ("[training] checkpoint_epochs", training.checkpoint_epochs),
        ("[evaluation] epochs", evaluation.epochs),
    ):
        if epochs and epochs[-1] > training.epochs:
            raise ConfigError(
                f"{source} {key} {list(epochs)!r} goes past [training] epochs = {training.epochs}"
            )
    matrix = Matrix(name, tuple(seeds), corruptions, gans, training, evaluation)

    # expanding builds every plugin once, which validates every parameter before training
    try:
        matrix.cells()
    except PluginError as err:
        raise ConfigError(f"{source}: {err}") from err
    return matrix


def _corruption(entry: Any, where: str) -> CorruptionEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} entries must be tables, got {entry!r}")
    _check_keys(entry, ("name", "severities", "params"), where)
    name = _typed(entry, "name", str, where, required=True)
    _known(CORRUPTIONS, name, where)
    severities = _typed(entry, "severities", list, where, required=True)
    if not severities:
        raise ConfigError(f"{where} {name!r}: severities must not be empty")
    for severity in severities:
        if (
            isinstance(severity, bool)
            or not isinstance(severity, int | float)
            or not 0 <= severity <= 1
        ):
            raise ConfigError(f"{where} {name!r}: severity {severity!r} is not a number in [0, 1]")
    params = _typed(entry, "params", dict, where, default={})
    return CorruptionEntry(name, tuple(float(s) for s in severities), params)


def _gan(entry: Any, where: str) -> GanEntry:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} entries must be tables, got {entry!r}")
    _check_keys(entry, ("name", "params"), where)
    name = _typed(entry, "name", str, where, required=True)
    _known(GANS, name, where)
    return GanEntry(name, _typed(entry, "params", dict, where, default={}))


def _config(cls: type, table: Mapping[str, Any], where: str) -> Any:
    """Fill a config dataclass from a table, checking names, types and ranges."""
    defaults = cls()
    accepted = list(asdict(defaults))
    _check_keys(table, accepted, where)
    values: dict[str, Any] = {}
    for key, value in table.items():
        default = getattr(defaults, key)
        if key in _CHOICES:
            if value not in _CHOICES[key]:
                raise ConfigError(
                    f"{where} {key} {value!r} is not accepted"
                    f"{did_you_mean(str(value), list(_CHOICES[key]))}; "
                    f"accepted: {', '.join(_CHOICES[key])}"
                )
            values[key] = value
        elif key in _AT_LEAST_TWO and not (_positive_int(value) and value >= 2):
            raise ConfigError(f"{where} {key} must be an integer >= 2, got {value!r}")
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(_positive_int(v) for v in value):
                raise ConfigError(f"{where} {key} must be a list of integers >= 1, got {value!r}")
            values[key] = tuple(sorted(set(value)))
        elif not _positive_int(value):
            raise ConfigError(f"{where} {key} must be an integer >= 1, got {value!r}")
        else:
            values[key] = value
    return cls(**values)


_CHOICES = {"feature_extractor": FEATURE_EXTRACTORS}
_AT_LEAST_TWO = ("samples", "epoch_samples")  # KID and k-NN metrics need two or more


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_keys(
    table: Mapping[str, Any], accepted: tuple[str, ...] | list[str], where: str
) -> None:
    for key in table:
        if key not in accepted:
            raise ConfigError(
                f"{where} has unknown key {key!r}{did_you_mean(key, list(accepted))}; "
                f"accepted: {', '.join(accepted)}"
            )


def _known(registry: Any, name: str, where: str) -> None:
    try:
        registry.get(name)
    except PluginError as err:
        raise ConfigError(f"{where}: {err}") from err


def _table(
    data: Mapping[str, Any], key: str, where: str, required: bool = False
) -> Mapping[str, Any]:
    if key not in data:
        if required:
            raise ConfigError(f"{where} lacks the [{key}] table")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        raise ConfigError(f"{where} [{key}] must be a table, got {value!r}")
    return value


def _array(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} needs at least one [[{key}]] entry")
    return value


_TOML_KINDS = {str: "string", dict: "table", list: "list", int: "integer", bool: "boolean"}


def _typed(
    table: Mapping[str, Any],
    key: str,
    kind: type,
    where: str,
    required: bool = False,
    default: Any = None,
) -> Any:
    if key not in table:
        if required:
            raise ConfigError(f"{where} lacks the key {key!r}")
        return default
    value = table[key]
    if not isinstance(value, kind):
        kind_name = _TOML_KINDS.get(kind, kind.__name__)
        raise ConfigError(f"{where} {key} must be a {kind_name}, got {value!r}")
    return value
