"""Onset thresholds: the smallest severity at which a GAN's metric is measurably worse than clean.

For each (corruption, its params, gan, its params, metric), every severity is
compared with severity 0 across seeds. The degradation is signed so that
positive is worse, relative to the clean mean for FID and KID, absolute for the
shares (precision, recall, coverage, artifact rate). The onset is the smallest
severity whose mean degradation exceeds the metric's tolerance and, with two or
more seeds on both sides, is significant by a one-sided Welch t-test. The
p-values are Bonferroni-adjusted over the severities of the row, so the chance
of a false onset anywhere in the row stays at or below alpha. With one seed the
onset rests on a single run and says so. The noise floor is the spread of the
clean cell across seeds, in the tolerance's units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from corruptions.registry import BenchmarkError

ALPHA = 0.05


@dataclass(frozen=True)
class Rule:
    """How a metric's degradation is measured and how much of it counts.

    Attributes:
        worse: +1 where higher is worse (FID), -1 where lower is worse (recall).
        relative: the degradation is a fraction of the clean mean (else absolute).
        tolerance: the degradation that must be exceeded.
    """

    worse: int
    relative: bool
    tolerance: float


RULES: dict[str, Rule] = {
    "fid": Rule(+1, True, 0.10),
    "kid": Rule(+1, True, 0.10),
    "precision": Rule(-1, False, 0.05),
    "recall": Rule(-1, False, 0.05),
    "density": Rule(-1, False, 0.05),
    "coverage": Rule(-1, False, 0.05),
    "isc": Rule(-1, True, 0.05),
    "artifact_rate": Rule(+1, False, 0.02),
}
DEFAULT_METRICS = ("fid", "artifact_rate", "precision", "recall", "coverage", "kid")


class ThresholdError(BenchmarkError):
    """A threshold option names an unknown metric or a bad value."""


def rules_with(tolerances: Mapping[str, float]) -> dict[str, Rule]:
    """`RULES` with some tolerances replaced.

    Raises:
        ThresholdError: for an unknown metric or a tolerance that is not positive.
    """
    rules = dict(RULES)
    for metric, tolerance in tolerances.items():
        if metric not in rules:
            raise ThresholdError(
                f"--tolerance names unknown metric {metric!r}; accepted: {', '.join(rules)}"
            )
        if not tolerance > 0:
            raise ThresholdError(f"--tolerance {metric}={tolerance!r} must be > 0")
        rules[metric] = replace(rules[metric], tolerance=tolerance)
    return rules


@dataclass(frozen=True)
class Onset:
    """The threshold of one (corruption, params, gan, params, metric).

    Attributes:
        severity: the onset, or None when nothing crosses up to `worst_tested`.
        effect: the degradation at the onset (or at the worst severity, if none).
        p_value: Bonferroni-adjusted one-sided Welch p at that severity; None
            with fewer than two seeds on either side.
        single_run: the comparison rests on one seed.
        floor: the clean cell's spread across seeds (std), in the tolerance's
            units; None with one seed.
        tolerance: the tolerance applied.
        worst_tested: the largest severity with results.
        seeds: the number of seeds of the clean cell.
    """

    severity: float | None
    effect: float
    p_value: float | None
    single_run: bool
    floor: float | None
    tolerance: float
    relative: bool
    worst_tested: float
    seeds: int

    @property
    def below_floor(self) -> bool:
        """The tolerance is smaller than the clean cell's own spread."""
        return self.floor is not None and self.tolerance < self.floor


def find_onset(
    clean: Sequence[float], by_severity: Mapping[float, Sequence[float]], rule: Rule,
    alpha: float = ALPHA,
) -> Onset | None:  # fmt: skip
    """The onset of one row from its per-seed values; None without a clean value or severities."""
    clean_values = np.asarray([v for v in clean if not math.isnan(v)], dtype=float)
    tested = {s: np.asarray([v for v in vals if not math.isnan(v)], dtype=float)
              for s, vals in sorted(by_severity.items()) if s > 0}  # fmt: skip
    tested = {s: vals for s, vals in tested.items() if len(vals)}
    if not len(clean_values) or not tested:
        return None

    reference = clean_values.mean()
    scale = abs(reference) if rule.relative and reference != 0 else 1.0
    floor = clean_values.std(ddof=1) / scale if len(clean_values) >= 2 else None
    single_run = len(clean_values) < 2 or any(len(v) < 2 for v in tested.values())

    effect, p_value = 0.0, None
    for severity, values in tested.items():
        effect = rule.worse * (values.mean() - reference) / scale
        p_value = None
        if len(clean_values) >= 2 and len(values) >= 2:
            p_value = min(1.0, _welch_greater(rule.worse * values, rule.worse * clean_values)
                          * len(tested))  # fmt: skip
        significant = p_value is None or p_value < alpha
        if effect > rule.tolerance and significant:
            return Onset(severity, effect, p_value, single_run, floor, rule.tolerance,
                         rule.relative, max(tested), len(clean_values))  # fmt: skip
    return Onset(None, effect, p_value, single_run, floor, rule.tolerance, rule.relative,
                 max(tested), len(clean_values))  # fmt: skip


def _welch_greater(worse: np.ndarray, clean: np.ndarray) -> float:
    """One-sided Welch p that `worse` has the larger mean; exact data decides by the means."""
    if worse.std() == 0 and clean.std() == 0:
        return 0.0 if worse.mean() > clean.mean() else 1.0
    return float(stats.ttest_ind(worse, clean, equal_var=False, alternative="greater").pvalue)


KEYS = ["corruption", "corruption_params", "gan", "gan_params"]


def onsets(
    per_seed: pd.DataFrame, metrics: Sequence[str], rules: Mapping[str, Rule] | None = None,
    alpha: float = ALPHA,
) -> dict[tuple[str, str, str, str, str], Onset]:  # fmt: skip
    """Every row's onset per metric.

    Args:
        per_seed: one row per role and seed: `KEYS`, `severity`, `seed` and a
            column per metric (`reports.tables.per_seed_table`).
        metrics: the metrics to decide on; absent columns are skipped.
        rules: direction, scale and tolerance per metric (default `RULES`).
        alpha: significance level of the (Bonferroni-adjusted) test.

    Returns:
        `(corruption, corruption_params, gan, gan_params, metric)` -> `Onset`.
    """
    rules = rules or RULES
    found = {}
    for key, group in per_seed.groupby(KEYS, sort=True):
        for metric in metrics:
            if metric not in group:
                continue
            values = {s: g[metric].tolist() for s, g in group.groupby("severity")}
            onset = find_onset(values.get(0.0, []), values, rules[metric], alpha)
            if onset is not None:
                found[(*key, metric)] = onset
    return found


def describe(onset: Onset) -> str:
    """`0.3 (+23%, p=0.004)`, `none ≤ 0.5`, with `¹` where one run decides."""
    mark = "¹" if onset.single_run else ""
    if onset.severity is None:
        return f"none ≤ {onset.worst_tested:g}{mark}"
    effect = f"{onset.effect:+.0%}" if onset.relative else f"{onset.effect:+.3g}"
    p = "" if onset.p_value is None else f", p={onset.p_value:.2g}"
    return f"{onset.severity:g} ({effect}{p}){mark}"


def describe_floor(onset: Onset) -> str:
    """The clean spread as `±2.1%` or `±0.004`, with `†` where the tolerance lies below it."""
    if onset.floor is None:
        return "—"
    text = f"±{onset.floor:.1%}" if onset.relative else f"±{onset.floor:.2g}"
    return text + ("†" if onset.below_floor else "")
