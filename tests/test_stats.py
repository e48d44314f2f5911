"""Protects the statistics behind every verdict: paired per-seed gaps (median, wins, sign test, interval), failed
seeds counted as losses, the three verdicts and their boundaries, and reproducible bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmoe_core.studies import stats
from mmoe_core.studies.stats import CLOSE, CONTRADICTED, HOLDS, NOT_ENOUGH


def test_paired_gap_numbers_match_a_hand_count():
    a = [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80]
    b = [0.15, 0.22, 0.29, 0.50, 0.55, 0.61, 0.75, 0.80]
    g = stats.paired_gap(a, b)
    d = np.array(a) - np.array(b)
    assert g.pairs == 8 and (g.wins, g.losses, g.ties) == (6, 1, 1)
    assert g.median == pytest.approx(np.median(d))
    assert g.win_rate == pytest.approx(6.5 / 8)
    assert g.p_value == pytest.approx(2 * (1 + 7) / 2**7)  # exact sign test: 6 wins vs 1 loss, ties out
    assert (g.failed_a, g.failed_b) == (0, 0)


def test_sign_interval_uses_the_binomial_order_statistics():
    d = np.arange(20, dtype=float)  # n = 20: the 95% interval is [d_(6), d_(15)] (1-indexed)
    assert stats.sign_interval(d) == (5.0, 14.0)
    assert stats.sign_interval(np.arange(5.0)) == (-math.inf, math.inf)  # n < 6: no 95% interval exists
    assert stats.sign_interval(np.arange(6.0)) == (0.0, 5.0)  # n = 6: the extremes (P = 2/64 < 0.05)


def test_verdict_boundaries():
    assert stats.paired_gap([0.1] * 8, [0.2] * 8).verdict == HOLDS  # every seed won
    assert stats.paired_gap([0.3] * 8, [0.2] * 8).verdict == CONTRADICTED  # every seed lost
    assert stats.paired_gap([0.1] * 5, [0.2] * 5).verdict == CLOSE  # 5 of 5: p = 0.0625, still open
    mixed = stats.paired_gap([0.1, 0.3, 0.1, 0.3, 0.1, 0.3, 0.1, 0.3], [0.2] * 8)
    assert mixed.lo < 0 < mixed.hi and mixed.verdict == CLOSE  # gap inside its interval: never "contradicted"
    assert stats.paired_gap([], []).verdict == NOT_ENOUGH
    # one loss in 8 reaches the interval [d_(1), d_(8)]; one in 10 does not reach [d_(2), d_(9)]
    assert stats.paired_gap([0.1] * 7 + [0.3], [0.2] * 8).verdict == CLOSE
    assert stats.paired_gap([0.1] * 9 + [0.3], [0.2] * 10).verdict == HOLDS


def test_failed_seeds_count_as_losses_for_their_model():
    a = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, float("nan"), None]
    b = [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, float("inf")]
    g = stats.paired_gap(a, b)
    assert g.pairs == 8  # nothing dropped
    assert (g.failed_a, g.failed_b) == (2, 1)
    assert (g.wins, g.losses, g.ties) == (6, 1, 1)  # a's NaN is a loss; both failed is a tie
    # dropping the failed seeds would have read "6 of 6 won, holds"; counted, the interval reaches past 0
    assert g.verdict == CLOSE and g.hi > 0
    assert stats.paired_gap([float("nan")] * 8, [0.2] * 8).median == math.inf
    assert "2 failed for the first" in g.text()


def test_median_tolerates_infinities_and_verdict_of_all_combines_parts():
    assert stats.median([1.0, 3.0]) == 2.0 and stats.median([-math.inf, math.inf]) == 0.0
    assert stats.median([1.0, math.inf]) == math.inf and math.isnan(stats.median([]))
    assert stats.verdict_of_all([HOLDS, HOLDS]) == HOLDS
    assert stats.verdict_of_all([HOLDS, CLOSE]) == CLOSE
    assert stats.verdict_of_all([HOLDS, CONTRADICTED, CLOSE]) == CONTRADICTED
    assert stats.verdict_of_all([NOT_ENOUGH, HOLDS]) == HOLDS and stats.verdict_of_all([]) == NOT_ENOUGH


def test_higher_is_better_flips_the_sign_for_scores():
    g = stats.paired_gap([0.9] * 8, [0.8] * 8, higher_is_better=True)  # AUC: a higher
    assert g.verdict == HOLDS and g.median == pytest.approx(-0.1)


def test_bootstrap_interval_is_reproducible_and_seeded():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.0, 1.0, 40), rng.normal(1.0, 1.0, 40)

    def diff(u, v):
        return stats.row_median(u) - stats.row_median(v)

    first = stats.bootstrap_interval([x, y], diff)
    assert stats.bootstrap_interval([x, y], diff) == first  # same inputs, same seed: the same interval
    assert stats.bootstrap_interval([x, y], diff, seed=7) != first
    lo, hi = first
    assert lo < np.median(x) - np.median(y) < hi and hi < 0  # a difference of 1 sd with 40 seeds: clear
    assert stats.interval_verdict(lo, hi) == HOLDS
    with pytest.raises(ValueError, match="paired bootstrap needs samples of equal length"):
        stats.bootstrap_interval([x, y[:3]], diff, paired=True)


def test_spread_sees_failed_seeds():
    ok = np.linspace(0.1, 0.2, 10)
    assert stats.spread(ok) == pytest.approx(np.quantile(ok, 0.9) - np.quantile(ok, 0.1))
    assert stats.spread(np.r_[ok[:8], np.inf, np.inf]) == math.inf  # 2 of 10 failed: inside the middle 80%
    assert stats.spread(stats.as_losses([0.1, None, float("nan")])) == math.inf
