"""Plugins from outside the repository: --plugin files (the README's example) and entry points."""

from __future__ import annotations

import re
import sqlite3
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.plugins import import_plugin_file
from corruptions import CORRUPTIONS, PluginError
from tests.conftest import REPO


def _readme_block(language: str, after: str) -> str:
    """The first ```language block after the heading `after` in README.md."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(after) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"README has no {language} block after {after!r}"
    return match.group(1)


@pytest.fixture
def readme_plugin(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The README's salt_pepper.py and salt_pepper.toml, written as the README says."""
    plugin = tmp_path / "salt_pepper.py"
    plugin.write_text(_readme_block("python", "### Writing a corruption plugin"))
    matrix = tmp_path / "salt_pepper.toml"
    matrix.write_text(_readme_block("toml", "Name it in a matrix"))
    yield plugin, matrix
    CORRUPTIONS._entries.pop("salt_pepper", None)
    for name in [m for m in sys.modules if m.startswith("benchmark_plugin_salt_pepper")]:
        del sys.modules[name]


def test_readme_plugin_is_listed(
    readme_plugin: tuple[Path, Path], capsys: pytest.CaptureFixture
) -> None:
    plugin, _ = readme_plugin
    assert main(["plugins", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert (
        "  salt_pepper: salt-and-pepper noise on a severity-sized subset\n      params: amount=0.1"
        in out
    )
    assert "  ambient: " in out and "  gaussian: " in out


@pytest.mark.slow
def test_readme_plugin_runs_in_a_matrix(
    readme_plugin: tuple[Path, Path],
    data_dir: Path,
    cache_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    plugin, matrix = readme_plugin
    out = tmp_path / "run"
    options = ["--data-dir", str(data_dir), "--cache-dir", str(cache_dir), "--out", str(out)]
    code = main(["run", "--plugin", str(plugin), "--matrix", str(matrix), *options])
    assert code == 0
    assert "2 cells: 2 done, 0 failed, 0 diverged, 0 cached" in capsys.readouterr().out
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT corruption, gan, status FROM cells ORDER BY severity").fetchall()
        roles = db.execute("SELECT gan FROM roles").fetchall()
    # on clean data ambient is vanilla: the shared cell answers for ambient
    assert rows == [("clean", "vanilla", "done"), ("salt_pepper", "ambient", "done")]
    assert roles == [("ambient",), ("ambient",)]


def test_plugin_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--plugin '.*nope\.py' is not an existing \.py file"):
        import_plugin_file(tmp_path / "nope.py")
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('bad plugin')\n")
    with pytest.raises(
        ConfigError, match=r"--plugin '.*broken\.py' failed to import: ValueError: bad plugin"
    ):
        import_plugin_file(broken)


def test_cli_plugin_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plugins", "--plugin", str(tmp_path / "missing.py")]) == 2
    assert "is not an existing .py file" in capsys.readouterr().err


@pytest.fixture
def entry_point_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An installed-package stand-in: a module on sys.path and an entry point naming it."""
    (tmp_path / "ep_plugin_pkg.py").write_text(
        "import torch\n"
        "from corruptions import SubsetCorruption\n\n"
        "class Invert(SubsetCorruption):\n"
        "    description = 'inverted images'\n"
        "    def __init__(self, *, strength: float = 1.0) -> None:\n"
        "        self.strength = strength\n"
        "    def transform(self, batch, generator):\n"
        "        return (1 - batch) * self.strength + batch * (1 - self.strength)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        metadata.EntryPoint("invert", "ep_plugin_pkg:Invert", "gan_robustness.corruptions"),
    ]
    real = metadata.entry_points

    def entry_points(**kwargs: str) -> object:
        if kwargs.get("group") == "gan_robustness.corruptions":
            return points
        return real(**kwargs)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setattr(CORRUPTIONS, "_entry_points_loaded", False)
    yield
    CORRUPTIONS._entries.pop("invert", None)
    sys.modules.pop("ep_plugin_pkg", None)


def test_entry_points_are_loaded_lazily(entry_point_package: None) -> None:
    assert "invert" in CORRUPTIONS.names()
    plugin = CORRUPTIONS.create("invert", {"strength": 0.5})
    assert plugin.params() == {"strength": 0.5}


def test_broken_entry_point_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    points = [metadata.EntryPoint("ghost", "no_such_module:Ghost", "gan_robustness.corruptions")]
    monkeypatch.setattr(metadata, "entry_points", lambda **kwargs: points)
    monkeypatch.setattr(CORRUPTIONS, "_entry_points_loaded", False)
    with pytest.raises(
        PluginError,
        match=r"corruption entry point 'ghost' = 'no_such_module:Ghost' "
        r"\(group gan_robustness\.corruptions\) failed to load",
    ):
        CORRUPTIONS.get("gaussian")
