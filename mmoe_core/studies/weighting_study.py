"""Does a loss-weighting method close Shared-Bottom's gap to MMoE when tasks are unrelated? (#19)

    python -m mmoe_core.studies.weighting_study --json docs/weighting_study.json

Design, fixed before any result was seen (docs/REPRODUCTION.md, "Loss weighting"): p ∈ {0, 0.5, 0.9, 1}; for each
weighting (equal, uncertainty, gradnorm, pcgrad) one batched run of Shared-Bottom and MMoE with the same seeds,
data draws (independent per seed) and batches, so every comparison is paired by seed. Per seed the score is the
test loss averaged over tasks. Two paired comparisons per (method, p), judged by mmoe_core.studies.stats:
- helps: Shared-Bottom with the method against Shared-Bottom with equal weights ("holds" = the method improves it);
- gap left: Shared-Bottom with the method against MMoE with equal weights ("contradicted" = MMoE still better).
The method "closes the gap" at p when `helps` holds and the gap left is no longer "contradicted".
Gradient agreement (final, per seed) is reported beside each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..data import load_data
from ..training import Trainer
from ..weighting import WEIGHTINGS
from .stats import paired_gap

CORRELATIONS = (0.0, 1.0, 0.5, 0.9)  # the ends first: a study cut short still answers the question
# OMoE joins the equal-weight runs only: its gradient agreement completes the table of #19 (lock-step models
# are independent, so adding it changes nothing else).
MODELS = {False: ("shared_bottom", "mmoe"), True: ("shared_bottom", "omoe", "mmoe")}
MASTER_SEED = 9_100_000  # fresh: never used while building (previous studies used 3000, 7,000,000+)


def run_cell(p: float, weighting: str, seeds: int, steps: int, rows: int) -> dict:
    """One batched run: Shared-Bottom and MMoE at correlation p with this weighting; per-seed scores."""
    config = RunConfig(
        correlation=p,
        weighting=weighting,
        models=MODELS[weighting == "equal"],
        seeds=seeds,
        steps=steps,
        rows=rows,
        seed=MASTER_SEED,
        data_seed=MASTER_SEED,
        independent_data=True,
        log_every=steps,
        device="cpu",
    )
    t0 = time.perf_counter()
    results = Trainer(config, load_data(config)).run()
    out = {"p": p, "weighting": weighting, "seconds": round(time.perf_counter() - t0, 1)}
    for name, res in results.items():
        loss = res.test_loss.mean(axis=1)  # (r,) NaN stays NaN: a failed seed, counted by the statistics
        out[name] = {
            "test_loss": [float(v) for v in loss],
            "grad_agreement": [float(v) for v in res.grad_agreement[:, 0]] if res.grad_agreement is not None else [],
        }
    return out


def judge(cells: list[dict]) -> list[dict]:
    """Per (method, p): the two paired comparisons and the verdict on closing the gap."""
    by = {(c["p"], c["weighting"]): c for c in cells}
    rows = []
    for (p, w), c in sorted(by.items()):
        equal = by.get((p, "equal"))
        if equal is None or w == "equal":
            continue
        helps = paired_gap(c["shared_bottom"]["test_loss"], equal["shared_bottom"]["test_loss"])
        left = paired_gap(c["shared_bottom"]["test_loss"], equal["mmoe"]["test_loss"])
        before = paired_gap(equal["shared_bottom"]["test_loss"], equal["mmoe"]["test_loss"])
        closes = helps.verdict == "holds" and left.verdict != "contradicted"
        rows.append(
            {
                "p": p,
                "weighting": w,
                "helps": helps.verdict,
                "helps_text": helps.text(),
                "gap_before": before.verdict,
                "gap_before_text": before.text(),
                "gap_left": left.verdict,
                "gap_left_text": left.text(),
                "closes_gap": closes,
                "sb_agreement_median": float(np.nanmedian(c["shared_bottom"]["grad_agreement"])),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--rows", type=int, default=RunConfig().rows)
    parser.add_argument("--methods", default="equal,uncertainty,pcgrad,gradnorm", help="weightings, equal first")
    parser.add_argument("--json", type=Path, help="write cells and verdicts here (rewritten after every cell)")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in WEIGHTINGS]
    if bad or not methods or methods[0] != "equal":
        parser.error(f"--methods must start with equal and name only {', '.join(WEIGHTINGS)}")
    cells: list[dict] = []
    for p in CORRELATIONS:
        for w in methods:
            cells.append(run_cell(p, w, args.seeds, args.steps, args.rows))
            sb, mm = cells[-1]["shared_bottom"], cells[-1]["mmoe"]
            print(
                f"p={p:g} {w:12s} SB {np.nanmedian(sb['test_loss']):.4f} MMoE {np.nanmedian(mm['test_loss']):.4f} "
                f"agree SB {np.nanmedian(sb['grad_agreement']):.2f} MMoE {np.nanmedian(mm['grad_agreement']):.2f} "
                f"({cells[-1]['seconds']} s)",
                flush=True,
            )
            _write(args, cells)
    verdicts = _write(args, cells)
    for v in verdicts:
        print(
            f"p={v['p']:g} {v['weighting']:12s} helps SB: {v['helps']} ({v['helps_text']}); "
            f"gap to MMoE before: {v['gap_before']}, after: {v['gap_left']} ({v['gap_left_text']})"
            f"{' -> closes the gap' if v['closes_gap'] else ''}"
        )
    return 0


def _write(args: argparse.Namespace, cells: list[dict]) -> list[dict]:
    verdicts = judge(cells)
    if args.json:
        meta = {"seeds": args.seeds, "steps": args.steps, "rows": args.rows, "master_seed": MASTER_SEED}
        args.json.write_text(json.dumps({**meta, "cells": cells, "verdicts": verdicts}, indent=1))
    return verdicts


if __name__ == "__main__":
    raise SystemExit(main())
