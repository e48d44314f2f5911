"""The paper's three synthetic-data claims (Ma et al. 2018, §5.1-§5.2), checked against a study's tables
(`study.summary_table`, `study.gap_table`), with a verdict a reader can trust: an ordering of means counts as
"holds" only when each paired gap is at least 2 standard errors; otherwise "holds, within noise".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ClaimCheck:
    claim: str
    verdict: str  # "holds" | "holds, within noise" | "does not hold" | "not enough data"
    detail: str


NOT_ENOUGH = "not enough data"


def check_claims(summary: pd.DataFrame, gaps: pd.DataFrame, lr: float) -> list[ClaimCheck]:
    """The paper's three synthetic-data claims (§5.1, §5.2), checked on one learning rate's results.
    "Within noise" means the ordering of means holds but a paired gap is under 2 standard errors."""
    summary = summary.reindex(columns=["correlation", "lr", "model", "mean", "sd", "seeds"])
    gaps = gaps.reindex(columns=["correlation", "lr", "gap", "mean", "se"])
    s = summary[summary["lr"] == lr].set_index(["correlation", "model"])
    g = gaps[gaps["lr"] == lr].set_index(["correlation", "gap"])
    ps = sorted(set(s.index.get_level_values(0))) if len(s) else []
    return [_claim_order(s, g, ps), _claim_gap(g, ps), _claim_spread(s, ps)]


def _has(s: pd.DataFrame, p: float, *models: str) -> bool:
    return all((p, m) in s.index for m in models)


def _claim_order(s: pd.DataFrame, g: pd.DataFrame, ps: list[float]) -> ClaimCheck:
    claim = "At p < 1 the mean final loss orders MMoE < OMoE < Shared-Bottom"
    checked = [p for p in ps if p < 1 and _has(s, p, "mmoe", "omoe", "shared_bottom")]
    if not checked:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of all three models at some p < 1")
    verdicts, parts = [], []
    for p in checked:
        mm, om, sb = (s.loc[(p, m), "mean"] for m in ("mmoe", "omoe", "shared_bottom"))
        ordered = mm < om < sb
        sure = ordered and all(_z(g, p, gap) < -2 for gap in ("MMoE − OMoE", "OMoE − Shared-Bottom"))
        verdicts.append("holds" if sure else "holds, within noise" if ordered else "does not hold")
        measured = sorted([(mm, "MMoE"), (om, "OMoE"), (sb, "Shared-Bottom")])  # as measured, best first
        parts.append(f"p = {p:g}: " + " < ".join(f"{name} {v:.4f}" for v, name in measured))
    return ClaimCheck(claim, _worst(verdicts), "; ".join(parts))


def _claim_gap(g: pd.DataFrame, ps: list[float]) -> ClaimCheck:
    claim = "The MMoE − OMoE gap grows as p falls and is near zero at p = 1"
    key = "MMoE − OMoE"
    have = [p for p in ps if (p, key) in g.index]
    if len(have) < 2:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of MMoE and OMoE at two or more correlations")
    gap = {p: float(g.loc[(p, key), "mean"]) for p in have}
    se = {p: float(g.loc[(p, key), "se"]) for p in have}
    pairs = list(zip(have, have[1:]))
    grows = all(gap[lo] < gap[hi] for lo, hi in pairs)  # more negative (MMoE further ahead) at lower p
    near_zero = abs(_z(g, 1.0, key)) < 2 if 1.0 in gap else True
    detail = ", ".join(f"p = {p:g}: {gap[p]:+.4f} ± {se[p]:.4f}" for p in have)
    if not (grows and near_zero):
        return ClaimCheck(claim, "does not hold", detail)
    # each step of the trend must exceed 2 standard errors of the difference (conservative: the runs share seeds)
    sure = all(
        (gap[hi] - gap[lo]) > 2 * math.hypot(se[lo], se[hi])
        for lo, hi in pairs
        if math.isfinite(se[lo]) and math.isfinite(se[hi])
    ) and all(math.isfinite(se[p]) for p in have)
    return ClaimCheck(claim, "holds" if sure else "holds, within noise", detail)


def _claim_spread(s: pd.DataFrame, ps: list[float]) -> ClaimCheck:
    claim = "Shared-Bottom's spread (sd) over seeds is larger than either MoE model's"
    checked = [p for p in ps if _has(s, p, "mmoe", "omoe", "shared_bottom") and s.loc[(p, "mmoe"), "seeds"] > 1]
    if not checked:
        return ClaimCheck(claim, NOT_ENOUGH, "needs finished runs of all three models with 2+ seeds")
    verdicts, parts = [], []
    for p in checked:
        sd = {m: s.loc[(p, m), "sd"] for m in ("shared_bottom", "omoe", "mmoe")}
        verdicts.append("holds" if sd["shared_bottom"] > max(sd["omoe"], sd["mmoe"]) else "does not hold")
        parts.append(
            f"p = {p:g}: sd Shared-Bottom {sd['shared_bottom']:.4f}, OMoE {sd['omoe']:.4f}, MMoE {sd['mmoe']:.4f}"
        )
    return ClaimCheck(claim, _worst(verdicts), "; ".join(parts))


def _z(g: pd.DataFrame, p: float, gap: str) -> float:
    """Paired gap in standard errors (NaN-safe: an unknown se counts as no evidence)."""
    if (p, gap) not in g.index:
        return 0.0
    mean, se = g.loc[(p, gap), "mean"], g.loc[(p, gap), "se"]
    return float(mean / se) if se and math.isfinite(se) and se > 0 else 0.0


def _worst(verdicts: list[str]) -> str:
    for v in ("does not hold", "holds, within noise"):
        if v in verdicts:
            return v
    return "holds"
