from __future__ import annotations

import pytest

from benchmark.errors import ConfigError
from benchmark.matrix import parse_matrix
from benchmark.selection import cell_names, parse_keyword

NAMES = {
    "a": ("emnist-0.143-vanilla-s0",),
    "b": ("emnist-0.143-ambient-s0",),
    "c": ("gaussian-0.3-vanilla-s1",),
    "d": ("clean-0-vanilla-s0", "gaussian-0-vanilla-s0", "emnist-0-ambient-s0"),
}


def _chosen(expression: str) -> list[str]:
    matches = parse_keyword(expression)
    return [key for key, names in NAMES.items() if matches(names)]


@pytest.mark.parametrize(
    ("expression", "chosen"),
    [
        ("emnist", ["a", "b", "d"]),
        ("emnist and not ambient", ["a"]),
        ("EMNIST and not Ambient", ["a"]),
        ("gaussian or ambient", ["b", "c", "d"]),
        ("not (emnist or s1)", []),
        ("(emnist and ambient) or 0.3", ["b", "c", "d"]),
        ("not not s1", ["c"]),
        ("clean", ["d"]),
    ],
)
def test_keyword_chooses_like_pytest_k(expression: str, chosen: list[str]) -> None:
    assert _chosen(expression) == chosen


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("", r"-k '' is empty"),
        ("emnist and", r"it ends too early"),
        ("(emnist", r"it ends too early"),
        ("emnist vanilla", r"unexpected 'vanilla'"),
        ("and emnist", r"unexpected 'and'"),
        ("emnist)", r"unexpected '\)'"),
    ],
)
def test_keyword_rejects_malformed_expressions(expression: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_keyword(expression)


def test_cell_names_cover_every_role_and_show_swept_params() -> None:
    matrix = parse_matrix(
        {
            "matrix": {"name": "t"},
            "corruptions": [
                {"name": "gaussian", "severities": [0.0, 0.3], "params": {"noise_std": [0.1, 0.3]}},
                {"name": "block_pixels", "severities": [0.0]},
            ],
            "gans": [{"name": "vanilla"}, {"name": "ambient"}],
        }
    )
    names = cell_names(matrix.roles())
    clean = next(cell for cell in matrix.cells() if cell.severity == 0)
    assert names[clean.id][0] == "clean-0-vanilla-s0"
    assert set(names[clean.id][1:]) == {
        "gaussian[noise_std=0.1]-0-vanilla-s0", "gaussian[noise_std=0.3]-0-vanilla-s0",
        "gaussian[noise_std=0.1]-0-ambient-s0", "gaussian[noise_std=0.3]-0-ambient-s0",
        "block_pixels-0-vanilla-s0", "block_pixels-0-ambient-s0",
    }  # fmt: skip
    assert len(names) == 5  # the clean cell and 2 noise levels x 2 GANs at 0.3
