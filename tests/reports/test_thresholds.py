from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.tables import threshold_markdown, threshold_table
from reports.thresholds import (
    ALPHA,
    RULES,
    Rule,
    ThresholdError,
    describe,
    find_onset,
    onsets,
    rules_with,
)

SEVERITIES = (0.05, 0.1, 0.2, 0.3, 0.5)
NO_TOLERANCE = Rule(+1, True, 1e-9)  # any worsening counts: only the test decides


def _draw(rng: np.random.Generator, seeds: int, shift_from: float | None, shift: float) -> dict:
    """FID-like values: 40 +- 2 at every severity, plus `shift` from `shift_from` on."""
    values = {}
    for severity in (0.0, *SEVERITIES):
        bump = shift if shift_from is not None and severity >= shift_from else 0.0
        values[severity] = list(40.0 + bump + rng.normal(0.0, 2.0, seeds))
    return values


@pytest.mark.parametrize("seeds", [2, 3, 5])
def test_no_false_onset_beyond_alpha_when_nothing_changes(seeds: int) -> None:
    rng = np.random.default_rng(seeds)
    draws = 1000
    false = 0
    for _ in range(draws):
        values = _draw(rng, seeds, None, 0.0)
        onset = find_onset(values[0.0], values, NO_TOLERANCE)
        false += onset is not None and onset.severity is not None
    # the rate's own sampling error at 1000 draws is about 0.007
    assert false / draws <= ALPHA + 0.015, false / draws


def test_planted_effect_is_found_at_its_severity() -> None:
    rng = np.random.default_rng(0)
    found = [
        find_onset(v[0.0], v, RULES["fid"]).severity
        for v in (_draw(rng, 5, 0.2, 12.0) for _ in range(200))
    ]
    # +30 % from 0.2 on, 5 seeds, against a 10 % tolerance and a noise of 2 (5 %)
    assert np.mean([s == 0.2 for s in found]) > 0.9
    assert np.mean([s is not None and s < 0.2 for s in found]) <= ALPHA  # false, early


def test_effect_below_tolerance_is_no_onset() -> None:
    values = {0.0: [40.0, 40.2, 39.8], 0.3: [42.0, 42.1, 41.9], 0.5: [43.0, 43.2, 42.8]}
    onset = find_onset(values[0.0], values, RULES["fid"])  # +7.5 % at most, 10 % needed
    assert onset.severity is None and describe(onset) == "none ≤ 0.5"
    assert onset.effect == pytest.approx(0.075)


def test_lower_is_worse_metrics_and_absolute_tolerance() -> None:
    values = {0.0: [0.40, 0.41, 0.39], 0.1: [0.38, 0.37, 0.39], 0.3: [0.20, 0.21, 0.19]}
    onset = find_onset(values[0.0], values, RULES["recall"])  # -0.02 at 0.1, -0.2 at 0.3
    assert onset.severity == 0.3
    assert onset.effect == pytest.approx(0.2)
    assert onset.p_value is not None and onset.p_value < ALPHA
    assert describe(onset).startswith("0.3 (+0.2, p=")


def test_single_seed_rests_on_one_run() -> None:
    values = {0.0: [40.0], 0.3: [50.0]}
    onset = find_onset(values[0.0], values, RULES["fid"])
    assert (onset.severity, onset.p_value, onset.single_run, onset.floor) == (0.3, None, True, None)
    assert describe(onset) == "0.3 (+25%)¹"


def test_tolerance_below_the_noise_floor_is_flagged() -> None:
    values = {0.0: [30.0, 40.0, 50.0], 0.5: [41.0, 39.0, 40.0]}
    onset = find_onset(values[0.0], values, RULES["fid"])  # clean spread 25 % > 10 %
    assert onset.floor == pytest.approx(0.25) and onset.below_floor


def test_rows_without_a_clean_cell_have_no_onset() -> None:
    assert find_onset([], {0.3: [50.0]}, RULES["fid"]) is None


def test_onsets_and_tables_over_a_per_seed_frame() -> None:
    rows = []
    for gan, shift in (("vanilla", 15.0), ("ambient", 0.0)):
        for seed in range(3):
            for severity in (0.0, 0.1, 0.3):
                fid = 40.0 + seed * 0.5 + (shift if severity >= 0.3 else 0.0)
                rows.append(("gaussian", "{}", gan, "{}", severity, seed, fid, 0.0))
    frame = pd.DataFrame(
        rows,
        columns=["corruption", "corruption_params", "gan", "gan_params", "severity", "seed",
                 "fid", "artifact_rate"],
    )  # fmt: skip
    found = onsets(frame, ["fid", "artifact_rate", "recall"])
    assert found[("gaussian", "{}", "vanilla", "{}", "fid")].severity == 0.3
    assert found[("gaussian", "{}", "ambient", "{}", "fid")].severity is None
    assert ("gaussian", "{}", "vanilla", "{}", "recall") not in found  # no such column

    table = threshold_table(found, ["fid", "artifact_rate"])
    markdown = threshold_markdown(table, ALPHA)
    assert "| corruption | gan | seeds | onset (fid) | onset (artifact_rate) |" in markdown
    assert "| gaussian | vanilla | 3 | 0.3 (+37%, p=" in markdown
    assert "| gaussian | ambient | 3 | none ≤ 0.3 | none ≤ 0.3 |" in markdown
    assert "| 0.3 | fid ±1.2%, artifact_rate ±0 |" in markdown  # the clean spread, per metric

    # one seed: no spread to show
    single_seed = onsets(frame[frame.seed == 0], ["fid"])
    single = threshold_markdown(threshold_table(single_seed, ["fid"]), ALPHA)
    assert "| gaussian | vanilla | 1 | 0.3 (+38%)¹ | 0.3 | — (one seed) |" in single


def test_rules_with_replaces_tolerances_and_rejects_unknown_metrics() -> None:
    assert rules_with({"fid": 0.2})["fid"].tolerance == 0.2
    with pytest.raises(ThresholdError, match=r"unknown metric 'fdi'; accepted: fid, kid"):
        rules_with({"fdi": 0.2})
    with pytest.raises(ThresholdError, match=r"--tolerance fid=0 must be > 0"):
        rules_with({"fid": 0})
