"""A small real run shared by the report tests: gaussian 0 and 0.5, vanilla and ambient,
two seeds, with an intermediate evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cli import main

MATRIX = """[matrix]
name = "reported"
seeds = [0, 1]

[[corruptions]]
name = "gaussian"
severities = [0.0, 0.5]

[[gans]]
name = "vanilla"
params = { latent_dim = 8 }

[[gans]]
name = "ambient"
params = { latent_dim = 8 }

[training]
epochs = 2
batch_size = 64
train_subset = 128

[evaluation]
samples = 100
epochs = [1]
epoch_samples = 50
"""


@pytest.fixture(scope="session")
def run_dir(data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of `MATRIX` (6 cells: the clean cell is shared by both GANs)."""
    root = tmp_path_factory.mktemp("report")
    matrix = root / "reported.toml"
    matrix.write_text(MATRIX)
    out = root / "run"
    code = main(["run", "--matrix", str(matrix), "--data-dir", str(data_dir),
                 "--cache-dir", str(cache_dir), "--out", str(out)])  # fmt: skip
    assert code == 0
    return out
