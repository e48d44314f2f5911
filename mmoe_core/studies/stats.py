"""Robust statistics for every verdict the app makes: paired per-seed gaps between two models, judged on the
median with a distribution-free interval, so a few failed seeds cannot rule the result and a gap inside its
noise is never called a refutation.

The rules, decided before looking at any study's numbers:
- A gap is a − b per seed (both models saw that seed's data and batches), lower = better for `a` (for a score
  where higher is better, such as AUC, pass `higher_is_better=True` and the sign is flipped for you).
- A failed seed (NaN/inf: diverged, or never finished) is a *loss for its model*, never dropped: its value
  counts as +inf, so its gap is +inf (a failed) or −inf (b failed); both failed is a tie (gap 0). Failures are
  reported as counts beside the statistics.
- Median gap, wins / losses / ties, the exact two-sided sign test, and the sign test's own 95% interval for the
  median gap (order statistics of the binomial: exact, no resampling, unchanged by failed seeds' magnitudes).
- Verdict on "a is better than b": the interval's upper end below zero -> "holds"; lower end above zero ->
  "contradicted"; otherwise -> "too close to call". With fewer than 6 pairs no 95% interval excludes zero
  (all-won 5 of 5 has p = 0.0625), so a handful of seeds is always "too close to call".
- A comparison of two *statistics* of independent samples (the gap at two correlations, the spread of two
  models) uses a seeded percentile bootstrap (`bootstrap_interval`): the same inputs and seed give the same
  interval.

Pure numpy; no pandas needed by callers beyond passing arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

HOLDS = "holds"
CLOSE = "too close to call"
CONTRADICTED = "contradicted"
NOT_ENOUGH = "not enough data"
VERDICTS = (HOLDS, CLOSE, CONTRADICTED, NOT_ENOUGH)
LEVEL = 0.95  # interval coverage for every verdict
BOOT_SEED = 0  # default bootstrap seed: reproducible intervals
N_BOOT = 2_000


@dataclass(frozen=True)
class PairedGap:
    """a − b over paired seeds (lower = a better), with failures counted."""

    pairs: int  # seeds compared (every seed, failed ones included)
    median: float  # median gap; ±inf when failures reach the middle
    lo: float  # LEVEL interval for the median gap (sign-test order statistics); -inf/inf when too few pairs
    hi: float
    wins: int  # seeds where a is better
    losses: int  # seeds where b is better
    ties: int
    failed_a: int  # seeds where a failed (counted as losses for a)
    failed_b: int
    p_value: float  # exact two-sided sign test (ties left out), 1.0 with no untied pair

    @property
    def win_rate(self) -> float:
        """Share of seeds `a` won (a tie counts half); NaN with no pairs."""
        return (self.wins + 0.5 * self.ties) / self.pairs if self.pairs else math.nan

    @property
    def verdict(self) -> str:
        """Verdict on "a is better than b"."""
        if self.pairs == 0:
            return NOT_ENOUGH
        if self.hi < 0:
            return HOLDS
        if self.lo > 0:
            return CONTRADICTED
        return CLOSE

    def text(self, digits: int = 4) -> str:
        """'median −0.0123 [−0.0201, −0.0040], won 14 of 16 (2 failed for b)'."""
        failed = []
        if self.failed_a:
            failed.append(f"{self.failed_a} failed for the first")
        if self.failed_b:
            failed.append(f"{self.failed_b} failed for the second")
        extra = f" ({', '.join(failed)})" if failed else ""
        return (
            f"median {fmt(self.median, digits)} [{fmt(self.lo, digits)}, {fmt(self.hi, digits)}], "
            f"won {self.wins} of {self.pairs}{extra}"
        )


def fmt(v: float, digits: int = 4) -> str:
    """A signed number, with ±∞ for a failure-dominated value."""
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return f"{v:+.{digits}f}".replace("-", "−")


def as_losses(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per-seed losses with every failure (NaN, ±inf, None) as +inf: a failed seed is the worst result."""
    a = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return np.where(np.isfinite(a), a, np.inf)


def paired_gap(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, higher_is_better: bool = False
) -> PairedGap:
    """Per-seed a − b (seed i of a paired with seed i of b) -> median, interval, wins, sign test, failures.

    >>> paired_gap([0.1] * 8, [0.2] * 8).verdict
    'holds'
    """
    a = np.asarray([np.nan if v is None else v for v in a], dtype=float)
    b = np.asarray([np.nan if v is None else v for v in b], dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired seeds need two equal-length 1-d arrays; got shapes {a.shape} and {b.shape}")
    if higher_is_better:  # a score: the gap b − a is then "lower = a better" like a loss
        a, b = -a, -b
    fa, fb = ~np.isfinite(a), ~np.isfinite(b)
    d = np.where(fa & fb, 0.0, np.where(fa, np.inf, np.where(fb, -np.inf, a - b)))
    n = len(d)
    wins, losses = int((d < 0).sum()), int((d > 0).sum())
    lo, hi = sign_interval(d)
    return PairedGap(
        pairs=n,
        median=median(d),
        lo=lo,
        hi=hi,
        wins=wins,
        losses=losses,
        ties=n - wins - losses,
        failed_a=int(fa.sum()),
        failed_b=int(fb.sum()),
        p_value=sign_test(wins, losses),
    )


def median(x: Sequence[float] | np.ndarray) -> float:
    """Median that tolerates ±inf (two middle values +inf and −inf meet at 0); NaN for an empty sample."""
    s = np.sort(np.asarray(x, dtype=float))
    n = len(s)
    if n == 0:
        return math.nan
    if n % 2:
        return float(s[n // 2])
    lo, hi = float(s[n // 2 - 1]), float(s[n // 2])
    if math.isinf(lo) and math.isinf(hi) and lo != hi:
        return 0.0
    return lo if lo == hi else (lo + hi) / 2


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test of wins vs losses (ties already left out): P(as lopsided | no difference)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def sign_interval(d: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Distribution-free interval for the median of d: [d_(k), d_(n+1−k)] with k the largest rank such that
    P(Binomial(n, ½) < k) ≤ (1 − level)/2. (−inf, inf) when n is too small for any k ≥ 1."""
    s = np.sort(np.asarray(d, dtype=float))
    n = len(s)
    alpha = (1 - level) / 2
    k, cdf = 0, 0.0
    while k < n:
        nxt = cdf + math.comb(n, k) / 2**n  # P(X <= k)
        if nxt > alpha:
            break
        cdf, k = nxt, k + 1
    if k == 0:
        return -math.inf, math.inf
    return float(s[k - 1]), float(s[n - k])


def verdict_of_all(verdicts: Sequence[str]) -> str:
    """A claim made of parts: contradicted if any part is, holds only if every part does."""
    judged = [v for v in verdicts if v != NOT_ENOUGH]  # parts without data say nothing either way
    if not judged:
        return NOT_ENOUGH
    if CONTRADICTED in judged:
        return CONTRADICTED
    return HOLDS if all(v == HOLDS for v in judged) else CLOSE


def interval_verdict(lo: float, hi: float) -> str:
    """Verdict on "the quantity is below zero" from its interval."""
    if math.isnan(lo) or math.isnan(hi):
        return NOT_ENOUGH
    return HOLDS if hi < 0 else CONTRADICTED if lo > 0 else CLOSE


def bootstrap_interval(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
    paired: bool = False,
) -> tuple[float, float]:
    """(lo, hi): percentile bootstrap interval of `statistic(*samples)`, resampling seeds with a seeded generator
    (same inputs + seed -> same interval). `statistic` maps arrays of shape (n_boot, n) to (n_boot,) (reduce
    along the last axis, e.g. `row_median`). `paired=True` resamples the same seed indices in every sample (they
    must be equally long); otherwise each sample is resampled on its own. Infinite values (failed seeds) stand
    as a large finite value beyond every real one, so each resample's statistic stays defined."""
    raw = [np.asarray(s, dtype=float) for s in samples]
    if any(len(s) == 0 for s in raw):
        return math.nan, math.nan
    if paired and len({len(s) for s in raw}) != 1:
        raise ValueError("paired bootstrap needs samples of equal length")
    big = _standin(np.concatenate(raw))
    arrays = [np.where(np.isposinf(s), big, np.where(np.isneginf(s), -big, s)) for s in raw]
    rng = np.random.default_rng(seed)
    if paired:
        idx = rng.integers(0, len(arrays[0]), (n_boot, len(arrays[0])))
        stats = statistic(*(s[idx] for s in arrays))
    else:
        stats = statistic(*(s[rng.integers(0, len(s), (n_boot, len(s)))] for s in arrays))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha], method="inverted_cdf")
    return float(lo), float(hi)


def row_median(x: np.ndarray) -> np.ndarray:
    """Median along the last axis (for `bootstrap_interval`)."""
    return np.median(x, axis=-1)


def row_spread(x: np.ndarray) -> np.ndarray:
    """`spread` along the last axis (for `bootstrap_interval`)."""
    return np.quantile(x, 0.9, axis=-1) - np.quantile(x, 0.1, axis=-1)


def _standin(x: np.ndarray) -> float:
    """The value that stands for ±inf: 10 × the largest finite magnitude + 1, beyond every real value, yet
    arithmetic on it stays finite."""
    finite = x[np.isfinite(x)]
    return 10 * (float(np.abs(finite).max()) if len(finite) else 1.0) + 1


def _finite_standin(x: np.ndarray) -> np.ndarray:
    big = _standin(x)
    return np.where(np.isposinf(x), big, np.where(np.isneginf(x), -big, x))


def spread(x: Sequence[float] | np.ndarray) -> float:
    """Width of the middle 80% of seeds (10th to 90th percentile): sees a bad tail (trainability, the paper's
    Fig. 5) without letting a single extreme seed decide it, as the sd does."""
    a = np.asarray(x, dtype=float)
    if len(a) == 0:
        return math.nan
    s = _finite_standin(a)
    width = float(np.quantile(s, 0.9) - np.quantile(s, 0.1))
    finite = a[np.isfinite(a)]
    real = float(finite.max() - finite.min()) if len(finite) else 0.0
    return math.inf if width > real else width  # a failed seed inside the middle 80%: no finite spread
