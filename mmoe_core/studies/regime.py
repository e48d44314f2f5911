"""When does MMoE help? The regime map (issue 16): the paired MMoE − Shared-Bottom and MMoE − OMoE gaps over task
correlation p × training rows, each cell judged by `stats.paired_gap` (median per-seed gap, win rate, the sign
test's 95% interval; a failed seed is a loss for its model), a sentence of reading per region, and the
pre-registered rule (docs/REPRODUCTION.md) that picks the teaching default from the map.

A map is an ordinary study with several training sizes (`Study.row_sizes`, preset "regime"):

    python -m mmoe_core sweep --preset regime --json regime.json
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats
from .tables import paired_gaps

COMPARISONS = (("mmoe", "shared_bottom"), ("mmoe", "omoe"))
NAMES = {"mmoe": "MMoE", "omoe": "OMoE", "shared_bottom": "Shared-Bottom"}
MAP_COLUMNS = [
    "rows",
    "correlation",
    "other",
    "median",
    "lo",
    "hi",
    "wins",
    "pairs",
    "win_rate",
    "failed_mmoe",
    "failed_other",
    "verdict",
]
MIN_WIN_RATE = 0.7  # the teaching rule's bar, fixed before the map was run
TEACHING_P = 0.5  # the correlation the teaching default keeps (not selected on the map)


def regime_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per rows × correlation × other model: MMoE − other over paired seeds (MAP_COLUMNS; negative = MMoE
    better; verdict on "MMoE is better"). `final` is `study.final_losses` of one learning rate; a seed missing
    for a model (its run failed) counts as that model's failure."""
    rows = []
    if final.empty:
        return pd.DataFrame(columns=MAP_COLUMNS)
    for (n, p), _, b, gap in paired_gaps(final, ["rows", "correlation"], COMPARISONS):
        rows.append(
            {
                "rows": int(n),
                "correlation": float(p),
                "other": b,
                "median": gap.median,
                "lo": gap.lo,
                "hi": gap.hi,
                "wins": gap.wins,
                "pairs": gap.pairs,
                "win_rate": gap.win_rate,
                "failed_mmoe": gap.failed_a,
                "failed_other": gap.failed_b,
                "verdict": gap.verdict,
            }
        )
    return pd.DataFrame(rows, columns=MAP_COLUMNS)


# ---------------------------------------------------------------------------------------------- reading
REGIONS = (  # (name, rows test, p test): the map read in six blocks
    (
        "little data (up to 5,000 rows), unrelated or opposed tasks (p ≤ 0.25)",
        lambda n: n <= 5_000,
        lambda p: p <= 0.25,
    ),
    ("little data (up to 5,000 rows), related tasks (0.5 ≤ p ≤ 0.9)", lambda n: n <= 5_000, lambda p: 0.5 <= p < 1),
    ("little data (up to 5,000 rows), identical tasks (p = 1)", lambda n: n <= 5_000, lambda p: p >= 1),
    ("more data (over 5,000 rows), unrelated or opposed tasks (p ≤ 0.25)", lambda n: n > 5_000, lambda p: p <= 0.25),
    ("more data (over 5,000 rows), related tasks (0.5 ≤ p ≤ 0.9)", lambda n: n > 5_000, lambda p: 0.5 <= p < 1),
    ("more data (over 5,000 rows), identical tasks (p = 1)", lambda n: n > 5_000, lambda p: p >= 1),
)


def region_readings(table: pd.DataFrame, other: str) -> list[str]:
    """One sentence per region of the map against `other`, from the numbers alone (so a rerun reads itself)."""
    t = table[table["other"] == other]
    out = []
    for name, in_rows, in_p in REGIONS:
        cells = t[[in_rows(n) and in_p(p) for n, p in zip(t["rows"], t["correlation"])]]
        if cells.empty:
            continue
        helps = int((cells["verdict"] == stats.HOLDS).sum())
        hurts = int((cells["verdict"] == stats.CONTRADICTED).sum())
        close = len(cells) - helps - hurts
        wins, pairs = int(cells["wins"].sum()), int(cells["pairs"].sum())
        lead = "MMoE wins" if wins * 2 > pairs else "Shared-Bottom wins" if other == "shared_bottom" else "OMoE wins"
        if wins * 2 == pairs:
            lead = "neither model leads:"
        out.append(
            f"{name[0].upper()}{name[1:]}: {lead} {max(wins, pairs - wins)} of {pairs} seed pairs "
            f"(MMoE {wins / pairs:.0%}); MMoE helps in {helps}, hurts in {hurts} and is too close to call in "
            f"{close} of {len(cells)} cells."
        )
    return out


# ---------------------------------------------------------------------------------------------- teaching rule
@dataclass(frozen=True)
class TeachingChoice:
    rows: int | None  # the chosen training rows (None: no map cell at TEACHING_P)
    met_rule: bool  # whether the choice met the pre-registered bar (else it is the best there was)
    win_rate: float  # MMoE beats Shared-Bottom at TEACHING_P, on the map's seeds
    wins: int
    pairs: int
    reason: str


def teaching_choice(table: pd.DataFrame, p: float = TEACHING_P, min_win_rate: float = MIN_WIN_RATE) -> TeachingChoice:
    """The pre-registered rule: among row counts whose MMoE-beats-Shared-Bottom win rate at `p` is at least
    `min_win_rate` and whose MMoE-beats-OMoE win rate is lower at p = 1 than at `p`, the highest win rate (ties
    to fewer rows); if none qualifies, the highest win rate, flagged as below the bar."""
    sb = table[(table["other"] == "shared_bottom") & np.isclose(table["correlation"], p)].set_index("rows")
    om = table[table["other"] == "omoe"]
    if sb.empty:
        return TeachingChoice(None, False, math.nan, 0, 0, f"the map has no cell at p = {p:g}")

    def shrinks(n: int) -> bool:
        at_p = om[(om["rows"] == n) & np.isclose(om["correlation"], p)]["win_rate"]
        at_1 = om[(om["rows"] == n) & np.isclose(om["correlation"], 1.0)]["win_rate"]
        return bool(len(at_p) and len(at_1) and float(at_1.iloc[0]) < float(at_p.iloc[0]))

    ranked = sb.reset_index().sort_values(["win_rate", "rows"], ascending=[False, True], kind="stable")
    ok = ranked[[(w >= min_win_rate) and shrinks(int(n)) for n, w in zip(ranked["rows"], ranked["win_rate"])]]
    pick, met = (ok.iloc[0], True) if len(ok) else (ranked.iloc[0], False)
    why = (
        f"MMoE beats Shared-Bottom on {int(pick['wins'])} of {int(pick['pairs'])} map seeds at p = {p:g} "
        f"({pick['win_rate']:.0%}) and its lead over OMoE shrinks at p = 1"
        if met
        else f"no row count reached a {min_win_rate:.0%} win rate with a shrinking lead at p = 1; the best was "
        f"{int(pick['wins'])} of {int(pick['pairs'])}"
    )
    return TeachingChoice(int(pick["rows"]), met, float(pick["win_rate"]), int(pick["wins"]), int(pick["pairs"]), why)
