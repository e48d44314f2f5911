"""The paper's three synthetic-data claims (Ma et al. 2018, §5.1-§5.2), judged on a study's per-seed final test
losses (`study.final_losses`, FINAL_COLUMNS) with the robust statistics of `stats`: paired per-seed gaps,
medians and distribution-free intervals, failed seeds counted as losses for their model, never dropped.

Each claim's criterion, fixed before looking at results (verdicts: holds | too close to call | contradicted |
not enough data; a gap inside its interval is "too close to call", never a refutation):

1. **Ordering** — "at p < 1, MMoE < OMoE < Shared-Bottom in final loss". At each p < 1 with all three models,
   the paired gaps MMoE − OMoE and OMoE − Shared-Bottom are each judged by `stats.paired_gap` (95% sign-test
   interval of the median gap below zero = holds, above zero = contradicted). The claim holds only if every gap
   at every such p holds; it is contradicted if any gap is.
2. **Gap trend** — "the MMoE − OMoE gap grows as p falls and is near zero at p = 1". The testable content is the
   trend: the median paired gap at the lowest p minus the median paired gap at the highest p (seeded bootstrap
   over seeds, each p resampled on its own: the correlations' runs are separate draws), together with the paired
   MMoE − OMoE gap at the lowest p (a gap that "grows" must be MMoE's lead). Both below zero = holds; either
   above zero = contradicted; otherwise too close to call. "Near zero at p = 1" is reported (its median and
   interval) and is what the trend compares against; it is not judged on its own, since "no difference" can
   only be failed to reject, never shown.
3. **Trainability** — "Shared-Bottom's final losses spread more over seeds than either MoE model's". Spread is
   the 10-90% width of the per-seed final losses with failed seeds as +inf (a failure is the worst outcome, so
   it widens the spread rather than vanishing, as the sd of finite seeds let it). At each p, the paired
   bootstrap interval of spread(Shared-Bottom) − spread(M) for M in OMoE, MMoE: above zero for both = holds,
   below zero for either = contradicted. Combined over p like claim 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats
from .stats import CLOSE, CONTRADICTED, HOLDS, NOT_ENOUGH, fmt

ORDER_GAPS = (("mmoe", "omoe"), ("omoe", "shared_bottom"))
LABELS = {"mmoe": "MMoE", "omoe": "OMoE", "shared_bottom": "Shared-Bottom"}


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    verdict: str  # holds | too close to call | contradicted | not enough data
    detail: str


def check_claims(final: pd.DataFrame, lr: float) -> list[ClaimCheck]:
    """The paper's three claims on one learning rate's per-seed final losses (columns correlation, lr, model,
    replica, test_loss_mean; NaN = a failed seed). `lr` may be study.BEST_LR for each model's best rate."""
    wide = _per_seed(final, lr)
    return [_claim_order(wide), _claim_gap(wide), _claim_spread(wide)]


def _per_seed(final: pd.DataFrame, lr: float) -> dict[float, pd.DataFrame]:
    """p -> (seeds × models) final loss, failures as +inf; a seed missing for a model counts as failed."""
    if final.empty:
        return {}
    rows = final[final["lr"] == lr]
    out = {}
    for p, g in rows.groupby("correlation", sort=True):
        wide = g.pivot_table(index="replica", columns="model", values="test_loss_mean", dropna=False, aggfunc="first")
        out[float(p)] = wide.apply(stats.as_losses)
    return out


def _has(wide: pd.DataFrame, *models: str) -> bool:
    return all(m in wide.columns for m in models)


def _claim_order(per_p: dict[float, pd.DataFrame]) -> ClaimCheck:
    claim = "At p < 1 the final loss orders MMoE < OMoE < Shared-Bottom"
    checked = {p: w for p, w in per_p.items() if p < 1 and _has(w, "mmoe", "omoe", "shared_bottom")}
    if not checked:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of all three models at some p < 1")
    verdicts, parts = [], []
    for p, w in checked.items():
        for a, b in ORDER_GAPS:
            gap = stats.paired_gap(w[a].to_numpy(), w[b].to_numpy())
            verdicts.append(gap.verdict)
            parts.append(f"p = {p:g}, {LABELS[a]} − {LABELS[b]}: {gap.text()} → {gap.verdict}")
    return ClaimCheck(claim, stats.verdict_of_all(verdicts), "; ".join(parts))


def _claim_gap(per_p: dict[float, pd.DataFrame]) -> ClaimCheck:
    claim = "The MMoE − OMoE gap grows as p falls and is near zero at p = 1"
    gaps = {p: _gap_values(w) for p, w in per_p.items() if _has(w, "mmoe", "omoe")}
    if len(gaps) < 2:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of MMoE and OMoE at two or more correlations")
    lo_p, hi_p = min(gaps), max(gaps)
    est = stats.median(gaps[lo_p]) - stats.median(gaps[hi_p]) if len(gaps[lo_p]) and len(gaps[hi_p]) else np.nan
    lo, hi = stats.bootstrap_interval([gaps[lo_p], gaps[hi_p]], lambda x, y: stats.row_median(x) - stats.row_median(y))
    trend = stats.interval_verdict(lo, hi)
    paired = {p: stats.paired_gap(per_p[p]["mmoe"].to_numpy(), per_p[p]["omoe"].to_numpy()) for p in sorted(gaps)}
    verdict = stats.verdict_of_all([trend, paired[lo_p].verdict])
    medians = ", ".join(f"p = {p:g}: {g.text()}" for p, g in paired.items())
    detail = (
        f"median gap at p = {lo_p:g} minus at p = {hi_p:g}: {fmt(est)} [{fmt(lo)}, {fmt(hi)}] (bootstrap) → "
        f"{trend}; MMoE − OMoE at p = {lo_p:g} → {paired[lo_p].verdict}; {medians}"
    )
    return ClaimCheck(claim, verdict, detail)


def _gap_values(w: pd.DataFrame) -> np.ndarray:
    """Per-seed MMoE − OMoE with failures as ±inf (both failed: 0), as stats.paired_gap counts them."""
    a, b = w["mmoe"].to_numpy(), w["omoe"].to_numpy()
    fa, fb = np.isinf(a), np.isinf(b)
    return np.where(fa & fb, 0.0, np.where(fa, np.inf, np.where(fb, -np.inf, a - b)))


def _claim_spread(per_p: dict[float, pd.DataFrame]) -> ClaimCheck:
    claim = "Shared-Bottom's final losses spread more over seeds than either MoE model's"
    checked = {p: w for p, w in per_p.items() if _has(w, "mmoe", "omoe", "shared_bottom") and len(w) > 2}
    if not checked:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of all three models with 3+ seeds")
    verdicts, parts = [], []
    for p, w in checked.items():
        sb = w["shared_bottom"].to_numpy()
        for m in ("omoe", "mmoe"):
            lo, hi = stats.bootstrap_interval(
                [w[m].to_numpy(), sb], lambda x, y: stats.row_spread(x) - stats.row_spread(y), paired=True
            )  # spread(M) − spread(SB): below zero = Shared-Bottom spreads more
            with np.errstate(invalid="ignore"):
                est = stats.spread(w[m].to_numpy()) - stats.spread(sb)
            v = stats.interval_verdict(lo, hi)
            verdicts.append(v)
            parts.append(
                f"p = {p:g}, {LABELS[m]}: 10-90% width {_width(w[m])} vs Shared-Bottom {_width(w['shared_bottom'])}, "
                f"difference {fmt(est)} [{fmt(lo)}, {fmt(hi)}] → {v}"
            )
    return ClaimCheck(claim, stats.verdict_of_all(verdicts), "; ".join(parts))


def _width(col: pd.Series) -> str:
    failed = int(np.isinf(col.to_numpy()).sum())
    w = stats.spread(col.to_numpy())
    text = "∞" if np.isinf(w) else f"{w:.4f}"
    return text + (f" ({failed} failed)" if failed else "")


__all__ = ["ClaimCheck", "check_claims", "HOLDS", "CLOSE", "CONTRADICTED", "NOT_ENOUGH"]
