"""Tables and choices over a study's per-seed results (`study.final_losses`, `study.run_results` curves): each
model's best learning rate on validation data, the summary per model, the paired gaps between models and the
sweep CLI's JSON rows. Every verdict goes through `stats` (medians, sign-test intervals, failed seeds counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..config import MODEL_KINDS
from . import stats

BEST_LR = 0.0  # in an lr column: "each model at its own best learning rate" (no real lr is 0: lr >= 1e-6)


def best_lrs(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per correlation × model, the learning rate with the lowest *median* validation loss over seeds at its last
    recorded step, a diverged seed counting as +inf (the paper tuned Adam's rate per model; choosing on
    validation keeps the test numbers honest). Failures are counted, never skipped: a rate where most seeds
    diverged has an infinite median and loses to any rate where most trained; equal medians go to the rate with
    fewer failures. Columns: correlation, model, lr, val_median, failed (seeds that diverged at that rate), seeds."""
    cols = ["correlation", "model", "lr", "val_median", "failed", "seeds"]
    if per_seed.empty:
        return pd.DataFrame(columns=cols)
    last = per_seed[per_seed["step"] == per_seed.groupby(["correlation", "lr", "model"])["step"].transform("max")]
    rows = []
    for (p, lr, model), g in last.groupby(["correlation", "lr", "model"], sort=False):
        losses = stats.as_losses(g["loss"].to_numpy(dtype=float))
        failed = int(np.isinf(losses).sum())
        rows.append(
            {
                "correlation": p,
                "model": model,
                "lr": lr,
                "val_median": stats.median(losses),
                "failed": failed,
                "seeds": len(losses),
            }
        )
    scored = pd.DataFrame(rows, columns=cols)
    scored = scored[np.isfinite(scored["val_median"].astype(float))]  # every rate all but failed: no choice
    if scored.empty:
        return pd.DataFrame(columns=cols)
    scored = scored.sort_values(["correlation", "model", "val_median", "failed", "lr"], kind="stable")
    best = scored.groupby(["correlation", "model"], sort=False).head(1)
    order = best["model"].map({m: i for i, m in enumerate(MODEL_KINDS)})
    return best.assign(_o=order).sort_values(["correlation", "_o"]).drop(columns="_o").reset_index(drop=True)[cols]


def at_best_lr(frame: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` (curves or final losses) at each model's best lr, relabelled lr = BEST_LR; seeds
    stay paired across models because a seed's data and initialisation do not depend on the lr."""
    keep = frame.merge(best[["correlation", "model", "lr"]], on=["correlation", "model", "lr"], how="inner")
    return keep.assign(lr=BEST_LR)[frame.columns]


def summary_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per correlation × lr × model: median, mean, sd, min, max of the final test loss over the seeds that
    trained, how many did (seeds) and how many diverged or failed (diverged): counted apart, never averaged in.
    Read the median: a mean is ruled by a few bad seeds."""
    cols = ["correlation", "lr", "model", "median", "mean", "sd", "min", "max", "seeds", "diverged"]
    if final.empty:
        return pd.DataFrame(columns=cols)
    g = final.groupby(["correlation", "lr", "model"], sort=False)["test_loss_mean"]
    out = g.agg(median="median", mean="mean", sd="std", min="min", max="max", seeds="count").reset_index()
    out["diverged"] = g.size().to_numpy() - out["seeds"].to_numpy()
    out["_order"] = out["model"].map({m: i for i, m in enumerate(MODEL_KINDS)})
    return out.sort_values(["correlation", "lr", "_order"]).drop(columns="_order").reset_index(drop=True)[cols]


GAPS = (("mmoe", "omoe"), ("mmoe", "shared_bottom"), ("omoe", "shared_bottom"), ("cgc", "mmoe"), ("ple", "mmoe"))
GAP_COLUMNS = [
    "correlation",
    "lr",
    "gap",
    "median",
    "lo",
    "hi",
    "wins",
    "pairs",
    "win_rate",
    "failed_a",
    "failed_b",
    "p_value",
    "verdict",
]


def paired_gaps(final: pd.DataFrame, by: list[str], pairs: Sequence[tuple[str, str]]) -> Iterator[tuple]:
    """Per group of `by` and per pair (a, b) present in it: (group keys, a, b, stats.paired_gap of a − b over the
    seeds). A seed missing for a model (its run failed) is NaN there, so it counts as that model's failure."""
    for keys, g in final.groupby(by, sort=True):
        wide = g.pivot_table(index="replica", columns="model", values="test_loss_mean", dropna=False, aggfunc="first")
        for a, b in pairs:
            if a in wide and b in wide:
                yield keys, a, b, stats.paired_gap(wide[a].to_numpy(dtype=float), wide[b].to_numpy(dtype=float))


def gap_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per correlation × lr: the paired per-seed gap a − b for each pair in GAPS (both models of a seed saw the
    same data and batches; negative = `a` better), by `stats.paired_gap`: median, its 95% sign-test interval
    [lo, hi], seeds `a` won out of pairs, failed seeds of each model (counted as that model's losses, never
    dropped), sign-test p-value and the verdict on "a is better than b"."""
    rows = []
    if final.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    for (p, lr), a, b, gap in paired_gaps(final, ["correlation", "lr"], GAPS):
        rows.append(
            {
                "correlation": p,
                "lr": lr,
                "gap": f"{MODEL_KINDS[a]} − {MODEL_KINDS[b]}",
                "median": gap.median,
                "lo": gap.lo,
                "hi": gap.hi,
                "wins": gap.wins,
                "pairs": gap.pairs,
                "win_rate": gap.win_rate,
                "failed_a": gap.failed_a,
                "failed_b": gap.failed_b,
                "p_value": gap.p_value,
                "verdict": gap.verdict,
            }
        )
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def _probe_fields(row: Any) -> dict[str, Any]:
    """grad_agreement (one number per task pair) and routing_specialisation of one seed, where recorded."""
    out: dict[str, Any] = {}
    agreement = getattr(row, "grad_agreement", None)
    if isinstance(agreement, list):
        out["grad_agreement"] = agreement
    s = getattr(row, "routing_specialisation", None)
    if s is not None and math.isfinite(s):
        out["routing_specialisation"] = float(s)
    return out


def sweep_results(final: pd.DataFrame) -> list[dict[str, Any]]:
    """The CLI's JSON contract: one entry per correlation × lr × model × seed, every seed included (a diverged
    one with "status": "diverged" and null losses), with the validation loss a script can pick the rate on."""
    out = []
    for row in final.itertuples(index=False):
        mean, val = row.test_loss_mean, row.val_loss_mean
        out.append(
            {
                "correlation": row.correlation,
                "lr": row.lr,
                "model": row.model,
                "seed": row.seed,
                "data_seed": row.data_seed,
                "status": row.status,
                "test_loss": row.test_loss,
                "test_loss_mean": None if not math.isfinite(mean) else mean,
                "val_loss_mean": None if not math.isfinite(val) else val,
                "run_id": row.run_id,
                **({"rows": int(row.rows)} if getattr(row, "rows", None) is not None else {}),
                **_probe_fields(row),
            }
        )
    return out
