"""`sweep`: a study (mmoe_core.studies) run from the command line, its tables and the paper's claims as text.
Apart from cli.py so that `train` starts without the studies' pandas."""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import fields
from typing import Any

from .cli import INTERRUPT, CliError, _flag, _run_all, _store, config_from_args
from .config import RunConfig
from .studies.claims import check_claims
from .studies.regime import regime_table, region_readings
from .studies.study import (
    PRESETS,
    Study,
    final_losses,
    gap_table,
    new_study_id,
    study_label,
    study_runs,
    summary_table,
    sweep_results,
)


def cmd_sweep(args: argparse.Namespace) -> dict:
    """A study (mmoe_core.studies.study) run in this process: one stored run per correlation x lr, labelled
    study:<id>, so the Experiments page can open it."""
    template = PRESETS[args.preset]
    preset = template.base
    correlations = (
        _float_list(args.correlations, "--correlations", "in [-1, 1] such as 0.5,0.9,1.0")
        if args.correlations
        else list(template.correlations)
    )
    base = config_from_args(args, {**_sweep_defaults(preset), "independent_data": not args.fixed_data})
    if args.lrs:
        lrs = _float_list(args.lrs, "--lrs", "such as 1e-4,1e-3,1e-2")
    else:  # the preset's grid, unless it has one rate: then --lr (or the preset's) decides
        lrs = list(template.lrs) if len(template.lrs) > 1 and args.lr is None else [base.lr]
    if args.row_sizes:
        sizes = [int(v) for v in _float_list(args.row_sizes, "--row-sizes", "such as 2000,20000,100000")]
    else:
        sizes = list(template.row_sizes) if args.rows is None else []
    try:
        study = Study(
            correlations=tuple(correlations),
            lrs=tuple(lrs),
            base=base,
            row_sizes=tuple(sizes),
            batched=not args.separate_runs,
        )
    except ValueError as exc:
        raise CliError(
            re.sub(r"^(correlations|lrs|row_sizes)\b=?", lambda m: _flag(m.group(1)) + " ", str(exc))
        ) from None
    store = _store(args)
    study_id = new_study_id()
    t0 = time.perf_counter()
    _run_all(
        store,
        study.configs(),
        [
            f"rows={c.rows} p={','.join(f'{p:g}' for p in c.sweep or (c.correlation,))} "
            f"lr={','.join(f'{lr:g}' for lr in c.sweep_lr or (c.lr,))}"
            for c in study.configs()
        ],
        args,
        label=study_label(study_id),
    )
    seconds = time.perf_counter() - t0
    if INTERRUPT.requested():
        return {"status": "cancelled", "config": study.to_dict(), "study_id": study_id, "seconds": round(seconds, 3)}
    final = final_losses(store, study_runs(store, study_id))
    replicas = sum(c.replicas for c in study.configs())  # seeds x correlations, batched or not
    out = {
        "status": "done",
        "config": study.to_dict(),
        "study_id": study_id,
        "seconds": round(seconds, 3),
        "model_rows_per_s": round(replicas * len(base.models) * base.steps * base.batch_size / seconds, 1),
        "results": sweep_results(final),
    }
    if len(study.sizes) > 1:  # a regime map: per rows x p cell, MMoE against each baseline
        table = regime_table(final[final["lr"] == study.lrs[0]])
        out["regime"] = table.replace({float("inf"): None, float("-inf"): None}).to_dict("records")
        print(f"{_regime_text(table)}\n{seconds:.1f} s, study {study_id}")
    else:
        print(_sweep_table(final, seconds, study_id))
    return out


def _regime_text(table) -> str:
    """The regime map as text: per cell MMoE's wins of pairs and the verdict, then the reading per region."""
    lines = ["regime map (MMoE won / seeds; + helps, - hurts, ~ too close to call)"]
    mark = {"holds": "+", "contradicted": "-", "too close to call": "~", "not enough data": "?"}
    for other in ("shared_bottom", "omoe"):
        t = table[table["other"] == other]
        if t.empty:
            continue
        ps = sorted(t["correlation"].unique())
        lines.append(f"\nMMoE vs {other}: rows \\ p " + " ".join(f"{p:>8g}" for p in ps))
        cells = t.set_index(["rows", "correlation"])
        for n in sorted(t["rows"].unique()):
            row = [
                f"{int(cells.loc[(n, p), 'wins']):>3}/{int(cells.loc[(n, p), 'pairs']):<3}{mark[cells.loc[(n, p), 'verdict']]}"
                if (n, p) in cells.index
                else f"{'':>8}"
                for p in ps
            ]
            lines.append(f"{int(n):>16,} " + " ".join(f"{c:>8}" for c in row))
        lines += [f"  {s}" for s in region_readings(table, other)]
    return "\n".join(lines)


def _sweep_defaults(preset: RunConfig) -> dict[str, Any]:
    """The preset's fields that differ from RunConfig's defaults: `sweep` alone runs the default study."""
    plain = RunConfig()
    return {
        f.name: getattr(preset, f.name) for f in fields(RunConfig) if getattr(preset, f.name) != getattr(plain, f.name)
    }


def _float_list(raw: str, flag: str, example: str) -> list[float]:
    try:
        values = [float(v) for v in raw.split(",") if v.strip()]
    except ValueError:
        raise CliError(f"{flag} {raw!r} must be comma-separated numbers {example}") from None
    if not values:
        raise CliError(f"{flag} is empty; give comma-separated numbers {example}")
    return values


def _sweep_table(final, seconds: float, study_id: str) -> str:
    stats = summary_table(final).set_index(["correlation", "lr", "model"])
    gaps = gap_table(final).set_index(["correlation", "lr", "gap"])
    fmt = lambda v: f"{v:.4f}"  # noqa: E731
    claims = [f"lr {lr:g}: {c.claim}: {c.verdict}" for lr in sorted(set(final["lr"])) for c in check_claims(final, lr)]
    return (
        f"{stats.to_string(float_format=fmt)}\n\npaired gaps (negative: the first model is better; lo-hi: 95% "
        "sign-test interval of the median gap; verdict on 'the first model is better'; a failed seed is a loss for "
        f"its model)\n{gaps.to_string(float_format=fmt)}\n\nthe paper's claims (mmoe_core/studies/claims.py)\n"
        + "\n".join(claims)
        + f"\n{seconds:.1f} s, study {study_id}"
    )
