from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.matrix import CLEAN, load_matrix, parse_matrix


def _matrix(**overrides: object) -> dict:
    data: dict = {
        "matrix": {"name": "t", "seeds": [0]},
        "corruptions": [{"name": "gaussian", "severities": [0.0, 0.5]}],
        "gans": [{"name": "vanilla"}],
        "training": {"epochs": 1},
    }
    data.update(overrides)
    return data


def test_presets_load_and_expand() -> None:
    for name in ("smoke", "quick"):
        matrix = load_matrix(name)
        assert matrix.name == name
        assert matrix.cells()


def test_quick_preset_is_the_issue_design() -> None:
    cells = load_matrix("quick").cells()
    assert [c.severity for c in cells] == [0.0, 0.1, 0.3, 0.5]
    assert {c.gan for c in cells} == {"vanilla"}
    assert cells[0].corruption == CLEAN


def test_matrix_severity_zero_is_one_clean_cell_for_every_corruption() -> None:
    data = _matrix(
        corruptions=[
            {"name": "gaussian", "severities": [0.0, 0.5]},
            {"name": "gaussian", "severities": [0.0, 0.2], "params": {"noise_std": 0.5}},
        ]
    )
    cells = parse_matrix(data).cells()
    assert [(c.corruption, c.severity) for c in cells] == [
        (CLEAN, 0.0),
        ("gaussian", 0.5),
        ("gaussian", 0.2),
    ]
    assert cells[0].corruption_params == ()


def test_matrix_cell_id_fills_defaults_and_is_stable() -> None:
    implicit = parse_matrix(_matrix()).cells()
    explicit = parse_matrix(
        _matrix(
            corruptions=[
                {"name": "gaussian", "severities": [0.0, 0.5], "params": {"blur_sigma": 1.0}}
            ],
            gans=[{"name": "vanilla", "params": {"network": "mlp", "lr": 0.0002}}],
        )
    ).cells()
    assert [c.id for c in implicit] == [c.id for c in explicit]
    assert len({c.id for c in implicit}) == 2
    assert all(len(c.id) == 12 for c in implicit)
    assert implicit[1].label == "gaussian-0.5-vanilla-s0"


def test_matrix_list_params_are_swept() -> None:
    data = _matrix(
        matrix={"name": "t", "seeds": [0, 1]},
        corruptions=[
            {"name": "gaussian", "severities": [0.3], "params": {"noise_std": [0.1, 0.3]}}
        ],
    )
    cells = parse_matrix(data).cells()
    assert len(cells) == 4
    assert sorted({dict(c.corruption_params)["noise_std"] for c in cells}) == [0.1, 0.3]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_matrix(extra=1), r"matrix has unknown key 'extra'; accepted: matrix, corruptions"),
        (
            _matrix(training={"epoch": 3}),
            r"\[training\] has unknown key 'epoch' \(did you mean 'epochs'\?\)",
        ),
        (_matrix(training={"epochs": 0}), r"\[training\] epochs must be an integer >= 1, got 0"),
        (
            _matrix(training={"checkpoint_epochs": [0]}),
            r"checkpoint_epochs must be a list of integers >= 1",
        ),
        (
            _matrix(evaluation={"samples": "many"}),
            r"\[evaluation\] samples must be an integer >= 2, got 'many'",
        ),
        (
            _matrix(evaluation={"epoch_samples": 1}),
            r"\[evaluation\] epoch_samples must be an integer >= 2, got 1",
        ),
        (
            _matrix(evaluation={"feature_extractor": "inceptoin"}),
            r"\[evaluation\] feature_extractor 'inceptoin' is not accepted "
            r"\(did you mean 'inception'\?\); accepted: mnist-cnn, inception",
        ),
        (
            _matrix(training={"epochs": 2}, evaluation={"epochs": [1, 3]}),
            r"\[evaluation\] epochs \[1, 3\] goes past \[training\] epochs = 2",
        ),
        (
            _matrix(training={"epochs": 2, "checkpoint_epochs": [5]}),
            r"\[training\] checkpoint_epochs \[5\] goes past \[training\] epochs = 2",
        ),
        (
            _matrix(evaluation={"epochs": [0]}),
            r"\[evaluation\] epochs must be a list of integers >= 1, got \[0\]",
        ),
        (
            _matrix(matrix={"name": "t", "seeds": []}),
            r"seeds must be a non-empty list of integers, got \[\]",
        ),
        (_matrix(matrix={"name": "t", "seeds": [1, 1]}), r"seeds has duplicates: \[1, 1\]"),
        (_matrix(matrix={"seeds": [0]}), r"\[matrix\] lacks the key 'name'"),
        (
            _matrix(corruptions=[{"name": "gausian", "severities": [0.1]}]),
            r"unknown corruption 'gausian' \(did you mean 'gaussian'\?\)",
        ),
        (
            _matrix(corruptions=[{"name": "gaussian", "severities": [1.5]}]),
            r"severity 1\.5 is not a number in \[0, 1\]",
        ),
        (
            _matrix(corruptions=[{"name": "gaussian", "severities": []}]),
            r"severities must not be empty",
        ),
        (
            _matrix(
                corruptions=[{"name": "gaussian", "severities": [0.1], "params": {"sigma": 1}}]
            ),
            r"corruption 'gaussian' has no parameter 'sigma'",
        ),
        (_matrix(gans=[{"name": "vanila"}]), r"unknown gan 'vanila' \(did you mean 'vanilla'\?\)"),
        (
            _matrix(gans=[{"name": "vanilla", "params": {"network": "resnet"}}]),
            r"network='resnet' is unknown; accepted: dcgan, mlp",
        ),
        (_matrix(gans=[]), r"needs at least one \[\[gans\]\] entry"),
        (_matrix(training=5), r"matrix \[training\] must be a table, got 5"),
        (
            _matrix(corruptions=["gaussian"]),
            r"\[\[corruptions\]\] entries must be tables, got 'gaussian'",
        ),
        (_matrix(matrix={"name": 5, "seeds": [0]}), r"\[matrix\] name must be a string, got 5"),
        (
            _matrix(gans=[{"name": "vanilla", "params": [1]}]),
            r"\[\[gans\]\] params must be a table, got \[1\]",
        ),
    ],
)
def test_matrix_rejects_bad_input(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_matrix(data)


def test_load_matrix_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"--matrix '.*folder\.toml' cannot be read: "):
        load_matrix(str(folder))


def test_load_matrix_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[matrix\nname = 'x'")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_matrix(str(path))


def test_load_matrix_unknown_preset_suggests_closest() -> None:
    with pytest.raises(
        ConfigError, match=r"--matrix 'quik' is neither a preset \(did you mean 'quick'\?\)"
    ):
        load_matrix("quik")


def test_load_matrix_reads_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[matrix]\nname = "mine"\nseeds = [3]\n'
        '[[corruptions]]\nname = "gaussian"\nseverities = [0.2]\n'
        '[[gans]]\nname = "vanilla"\n'
    )
    cells = load_matrix(str(path)).cells()
    assert [(c.corruption, c.severity, c.seed) for c in cells] == [("gaussian", 0.2, 3)]


def test_matrix_shorthand_and_its_long_form_share_cells() -> None:
    data = _matrix(
        corruptions=[
            {"name": "emnist", "severities": [0.143]},
            {"name": "contamination", "severities": [0.143], "params": {"source": "emnist"}},
        ]
    )
    matrix = parse_matrix(data)
    (cell,) = matrix.cells()
    assert cell.corruption == "contamination" and dict(cell.corruption_params)["source"] == "emnist"
    # the report still lists it under both names the matrix used
    assert sorted(role.corruption for role in matrix.roles()) == ["contamination", "emnist"]
