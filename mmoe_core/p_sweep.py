"""The Playground's p-sweep read back from a run's metric rows: for each model and p, the latest recorded value
of the measures that track task relatedness, over the seeds. Replica j·seeds + s of a sweep is p_j with seed s
(RunConfig.replica_correlation), so grouping replicas by p is all the paper's Fig. 4 needs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import RunConfig

DEFAULT_PS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)  # the paper's Fig. 4 range, finer where the gap opens
DEFAULT_SEEDS = 4  # seeds a sweep starts with when one was set: enough for a band
# (split, metric, panel title): what the sweep chart shows, one panel each
MEASURES = (
    ("val", "loss", "Validation loss (mean of the tasks)"),
    ("probe", "grad_agreement", "Gradient agreement"),
    ("probe", "gate_task_difference", "Gate task difference"),
    ("probe", "routing_specialisation", "Routing specialisation S"),
)
FRAME_COLUMNS = ["model", "step", "task", "mean", "sd", "n", "failed", "at_step"]


def per_replica(metrics: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """One value per (model, replica) at each model's latest recorded step: the mean over tasks (NaN if any
    task's value is not finite, so a diverged seed stays visible as a failure)."""
    rows = metrics[(metrics["split"] == split) & (metrics["metric"] == metric)]
    if rows.empty:
        return pd.DataFrame(columns=["model", "replica", "value", "at_step"])
    latest = rows.groupby("model")["step"].transform("max")
    rows = rows[rows["step"] == latest]
    out = rows.groupby(["model", "replica"])["value"].agg(lambda v: v.mean() if np.isfinite(v).all() else np.nan)
    out = out.reset_index()
    out["at_step"] = out["model"].map(rows.groupby("model")["step"].max())
    return out


def sweep_frame(metrics: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Rows of (model, p as `step`, measure index as `task`, mean, sd, n, failed, at_step), the layout of
    views.curve_frame so the probe-curve figure draws it: mean and sd over the seeds whose value is finite,
    `failed` the seeds whose value is not."""
    parts = []
    for panel, (split, metric, _) in enumerate(MEASURES):
        values = per_replica(metrics, split, metric)
        if values.empty:
            continue
        values["p"] = [config.replica_correlation(int(r)) for r in values["replica"]]
        finite = np.isfinite(values["value"].to_numpy(dtype=float))
        grouped = values.assign(ok=finite).groupby(["model", "p"])
        table = grouped.agg(
            mean=("value", "mean"),
            sd=("value", "std"),
            n=("ok", "sum"),
            failed=("ok", lambda ok: int((~ok).sum())),
            at_step=("at_step", "max"),
        ).reset_index()
        table["sd"] = table["sd"].fillna(0.0)
        parts.append(table.rename(columns={"p": "step"}).assign(task=panel))
    if not parts:
        return pd.DataFrame(columns=FRAME_COLUMNS)
    return pd.concat(parts, ignore_index=True)[FRAME_COLUMNS]


def sweep_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The chart's numbers as a table a student can read: one row per model and p."""
    if frame.empty:
        return pd.DataFrame()
    names = {i: title for i, (_, _, title) in enumerate(MEASURES)}
    wide = frame.assign(measure=frame["task"].map(names))
    wide["text"] = [
        f"{m:.4f} ± {s:.4f}" if n > 1 else (f"{m:.4f}" if n else "failed")
        for m, s, n in zip(wide["mean"], wide["sd"], wide["n"])
    ]
    table = wide.pivot_table(index=["model", "step"], columns="measure", values="text", aggfunc="first").reset_index()
    failed = wide[wide["task"] == 0].set_index(["model", "step"])["failed"]
    table["failed seeds"] = [int(failed.get((m, p), 0)) for m, p in zip(table["model"], table["step"])]
    return table.rename(columns={"step": "p"})
