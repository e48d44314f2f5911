"""Markdown tables (and PNGs) of the issue-16 studies for docs/REPRODUCTION.md: the regime map, the held-out check of
the teaching default, and the paper's protocol (each model's best learning rate on validation data).

    python -m bench.study_report --home DIR --regime ID [ID ...] --heldout ID [ID ...] --protocol ID [ID ...] \
        [--figures docs/figures]

Several study ids of one kind are blocks of seeds of the same study (e.g. seeds 7,100,000-15 and 7,100,016-31):
their seeds are pooled, each seed keeping its own number, so pairs stay paired. Only finished runs count.
PNGs need kaleido (`pip install kaleido`) and BROWSER_PATH=/usr/bin/chromium.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mmoe_core.config import MODEL_KINDS
from mmoe_core.runs import RunStore
from mmoe_core.studies import stats
from mmoe_core.studies.claims import check_claims
from mmoe_core.studies.regime import regime_table, region_readings, teaching_choice
from mmoe_core.studies.study import (
    BEST_LR,
    at_best_lr,
    best_lrs,
    gap_table,
    run_results,
    study_runs,
    summary_table,
)

MARK = {"holds": "✓", "contradicted": "✗", "too close to call": "·", "not enough data": "?"}


def pooled(store: RunStore, ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(per-seed validation curves, per-seed final losses, notes) of the finished runs of several studies, replica
    renumbered as the seed so blocks of seeds pool without colliding."""
    curves, finals, notes = [], [], []
    for sid in ids:
        runs = study_runs(store, sid)
        for run in runs.to_dict("records"):
            if run["status"] != "done":
                notes.append(
                    f"study {sid}: run {run['id']} (rows {run['rows']}, p {run['correlation']:g}, "
                    f"lr {run['lr']:g}) {run['status']}, left out"
                )
                continue
            curve, final = run_results(store, run)
            seed0 = int(final["seed"].min() - final["replica"].min()) if len(final) else 0
            curve = curve.assign(replica=curve["replica"] + seed0, rows=run["rows"])
            finals.append(final.assign(replica=final["seed"]))
            curves.append(curve)
    cat = lambda frames: pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()  # noqa: E731
    return cat(curves), cat(finals), notes


def grid(table: pd.DataFrame, other: str) -> str:
    t = table[table["other"] == other].set_index(["rows", "correlation"])
    ps = sorted(table["correlation"].unique())
    lines = ["| rows \\ p | " + " | ".join(f"{p:g}" for p in ps) + " |", "|---|" + "---|" * len(ps)]
    for n in sorted(table["rows"].unique()):
        cells = []
        for p in ps:
            if (n, p) not in t.index:
                cells.append("not run")
                continue
            c = t.loc[(n, p)]
            fails = c["failed_mmoe"] + c["failed_other"]
            cells.append(
                f"{int(c['wins'])}/{int(c['pairs'])} {MARK[c['verdict']]} ({stats.fmt(c['median'], 3)})"
                + (f" [{int(c['failed_mmoe'])}/{int(c['failed_other'])} failed]" if fails else "")
            )
        lines.append(f"| {int(n):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def regime_section(final: pd.DataFrame, figures: Path | None) -> None:
    table = regime_table(final)
    for other in ("shared_bottom", "omoe"):
        print(f"\nMMoE vs {MODEL_KINDS[other]}: MMoE won / seeds, verdict, (median gap)\n")
        print(grid(table, other))
        print()
        for s in region_readings(table, other):
            print(f"- {s}")
    choice = teaching_choice(table)
    print(f"\nteaching rule: rows {choice.rows}, met {choice.met_rule}: {choice.reason}")
    if figures is not None:
        from mmoe_core.studies.plots import regime_heatmap

        regime_heatmap(table, height=420).write_image(str(figures / "regime_map.png"), width=1200, height=420)


def heldout_section(final: pd.DataFrame) -> None:
    table = regime_table(final)
    print("\nheld-out seeds at p = 0.5\n\n| rows | MMoE vs Shared-Bottom | MMoE vs OMoE |\n|---|---|---|")
    for n, g in table.groupby("rows"):
        cells = {
            r.other: f"won {r.wins} of {r.pairs}, median {stats.fmt(r.median, 4)} → {r.verdict}" for r in g.itertuples()
        }
        print(f"| {int(n):,} | {cells.get('shared_bottom', '')} | {cells.get('omoe', '')} |")


def spread_iqr(x: np.ndarray) -> float:
    s = stats.as_losses(x)
    q1, q3 = np.quantile(np.where(np.isinf(s), 1e9, s), [0.25, 0.75])
    return float(q3 - q1)


def protocol_section(curves: pd.DataFrame, final: pd.DataFrame, figures: Path | None) -> None:
    best = best_lrs(curves)
    print("\nbest learning rate per model (median validation loss at the last step, failures as +inf)\n")
    print("| p | model | best lr | median val loss | failed at that lr |\n|---|---|---|---|---|")
    for r in best.itertuples():
        print(
            f"| {r.correlation:g} | {MODEL_KINDS[r.model]} | {r.lr:g} | {r.val_median:.4f} | {r.failed} of {r.seeds} |"
        )
    print("\nmedian validation loss per rate (failed seeds)\n")
    last = curves[curves["step"] == curves.groupby(["correlation", "lr", "model"])["step"].transform("max")]
    for (p, model), g in last.groupby(["correlation", "model"]):
        parts = []
        for lr, h in g.groupby("lr"):
            losses = stats.as_losses(h["loss"].to_numpy(dtype=float))
            parts.append(f"{lr:g}: {stats.median(losses):.4f} ({int(np.isinf(losses).sum())})")
        print(f"- p = {p:g}, {MODEL_KINDS[model]}: " + "; ".join(parts))
    at_best = at_best_lr(final, best)
    for lr, frame in (("each model's best", at_best), ("1e-3 for all", final[np.isclose(final["lr"], 1e-3)])):
        print(f"\n### {lr}\n")
        s = summary_table(frame)
        print("| p | model | median | mean | sd | seeds | diverged |\n|---|---|---|---|---|---|---|")
        for r in s.itertuples():
            print(
                f"| {r.correlation:g} | {MODEL_KINDS[r.model]} | {r.median:.4f} | {r.mean:.4f} | {r.sd:.4f} | "
                f"{r.seeds} | {r.diverged} |"
            )
        g = gap_table(frame)
        g = g[g["gap"].isin(["MMoE − OMoE", "MMoE − Shared-Bottom", "OMoE − Shared-Bottom"])]
        print("\n| p | gap | median [95% interval] | first won | verdict |\n|---|---|---|---|---|")
        for r in g.itertuples():
            print(
                f"| {r.correlation:g} | {r.gap} | {stats.fmt(r.median)} [{stats.fmt(r.lo)}, {stats.fmt(r.hi)}] | "
                f"{r.wins} of {r.pairs} | {r.verdict} |"
            )
        lr_value = BEST_LR if lr.startswith("each") else 1e-3
        print("\napp's claims (mmoe_core/studies/claims.py):")
        for c in check_claims(frame, lr_value):
            print(f"- {c.claim}: **{c.verdict}** — {c.detail}")
        print("\npre-registered spread (IQR, failures as +inf) and failures per p:")
        for p, h in frame.groupby("correlation"):
            w = h.pivot_table(index="replica", columns="model", values="test_loss_mean", dropna=False, aggfunc="first")
            print(
                f"- p = {p:g}: "
                + ", ".join(
                    f"{MODEL_KINDS[m]} IQR {spread_iqr(w[m].to_numpy()):.4f}"
                    f" failed {int((~np.isfinite(w[m].to_numpy(dtype=float))).sum())}"
                    for m in ("shared_bottom", "omoe", "mmoe")
                    if m in w
                )
            )
    if figures is not None:
        from mmoe_core.studies.plots import curves_figure, trainability_figure
        from mmoe_core.studies.study import curves as curve_stats

        ps = tuple(sorted(final["correlation"].unique()))
        shown = at_best_lr(curves, best)
        curves_figure(curve_stats(shown), ps, steps=int(curves["step"].max())).write_image(
            str(figures / "protocol_fig4_best_lr.png"), width=1100, height=420
        )
        trainability_figure(at_best, ps, kind="violin", log_y=True).write_image(
            str(figures / "protocol_fig5_best_lr.png"), width=1100, height=420
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--regime", nargs="*", default=[])
    parser.add_argument("--heldout", nargs="*", default=[])
    parser.add_argument("--protocol", nargs="*", default=[])
    parser.add_argument("--figures", default=None, help="folder for PNGs (needs kaleido)")
    args = parser.parse_args()
    store = RunStore(args.home)
    figures = Path(args.figures) if args.figures else None
    for kind, ids in (("regime", args.regime), ("heldout", args.heldout), ("protocol", args.protocol)):
        if not ids:
            continue
        curves, final, notes = pooled(store, ids)
        print(f"\n## {kind}: {final['seed'].nunique() if len(final) else 0} seeds, {len(notes)} runs left out")
        for n in notes:
            print(f"- {n}")
        if final.empty:
            continue
        if kind == "regime":
            regime_section(final, figures)
        elif kind == "heldout":
            heldout_section(final)
        else:
            protocol_section(curves, final, figures)


if __name__ == "__main__":
    main()
