"""Studies: the paper's synthetic experiments (Ma et al. 2018, §5.1-§5.2) as a group of ordinary runs.

A study is correlations × learning rates runs. Each run trains every chosen model with all its seeds batched
into one model (the trainer's replica axis), and by default every seed draws its own data (u1, u2, α, β,
inputs, noise), as the paper's repeated runs do. The runs carry the label ``study:<id>``: the study's
settings are read back from their stored configs, so the Runs page, the Experiments page and the
``sweep`` CLI all see the same thing and there is no second source of truth.

    python -m mmoe_core sweep --correlations 0.5,0.9,1.0 --seeds 32 --json study.json

Loss numbers: "final loss" is each seed's test MSE averaged over the tasks after the last step; the curves
(paper Fig. 4) use the held-out *validation* set, which the trainer evaluates at every log step (same
distribution as the test set, drawn per seed).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..config import RunConfig, server_limits_off
from ..runs import FINISHED, RunStore, check_run_id
from .tables import (  # noqa: F401  (re-exported: pages, the CLI and scripts import them from here)
    BEST_LR,
    GAP_COLUMNS,
    GAPS,
    at_best_lr,
    best_lrs,
    gap_table,
    summary_table,
    sweep_results,
)

LABEL_PREFIX = "study:"
PAPER_LRS = (1e-4, 1e-3, 1e-2)  # the paper tunes Adam's learning rate over these
PAPER_CORRELATIONS = (0.5, 0.9, 1.0)  # §5.2, Figs. 4 and 5
REGIME_CORRELATIONS = (-0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0)  # issue 16: when does MMoE help?
REGIME_ROWS = (2_000, 5_000, 20_000, 100_000)


def _study_base(**over: Any) -> RunConfig:
    """The paper's §5.1 sizes (d = 100, 8 experts × 16, towers 8, Shared-Bottom 113: RunConfig's defaults),
    32 seeds, each with its own data draw, 1,500 Adam steps (lr 1e-3) of 256 rows. At 2,000 steps the default
    study took 346 CPU-seconds single-threaded (docs/REPRODUCTION.md); 1,500 keeps it under 5 minutes on a
    2-core CPU even with one thread, and MMoE's lead is already there (it shows from about 1,000 steps)."""
    return RunConfig(**{"seeds": 32, "independent_data": True, "steps": 1_500, "rows": 20_000, **over})


@dataclass(frozen=True)
class Study:
    """What a study varies (correlations, learning rates, training-set sizes) around one base RunConfig that
    fixes the rest. `row_sizes` empty means the base's rows alone (every study before the regime map)."""

    correlations: tuple[float, ...] = PAPER_CORRELATIONS
    lrs: tuple[float, ...] = (1e-3,)
    base: RunConfig = field(default_factory=_study_base)
    row_sizes: tuple[int, ...] = ()
    batched: bool = True  # every correlation in one run per (rows, lr) (RunConfig.sweep): the same numbers, faster

    def __post_init__(self) -> None:
        object.__setattr__(self, "correlations", tuple(float(p) for p in self.correlations))
        object.__setattr__(self, "lrs", tuple(float(v) for v in self.lrs))
        object.__setattr__(self, "row_sizes", tuple(int(n) for n in self.row_sizes))
        for n in self.row_sizes:
            try:
                self.base.with_(rows=n)
            except ValueError as exc:
                raise ValueError(str(exc).replace("rows=", "row_sizes=", 1)) from None
        checks = [("correlations", self.correlations), ("lrs", self.lrs), ("row_sizes", self.row_sizes)]
        for name, values in checks:
            if not values and name == "row_sizes":
                continue
            if not values:
                raise ValueError(f"{name} is empty; choose at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"{name}={','.join(f'{v:g}' for v in values)} repeats a value; list each once")
        for p in self.correlations:
            try:
                self.base.with_(correlation=p)
            except ValueError as exc:  # "correlation=1.5 is out of range" -> "correlations=1.5 ..."
                raise ValueError(str(exc).replace("correlation=", "correlations=", 1)) from None
        for lr in self.lrs:
            try:
                self.base.with_(lr=lr)
            except ValueError as exc:
                raise ValueError(str(exc).replace("lr=", "lrs=", 1)) from None

    @property
    def sizes(self) -> tuple[int, ...]:
        """The training-set sizes run: row_sizes, or the base's rows."""
        return self.row_sizes or (self.base.rows,)

    def configs(self) -> list[RunConfig]:
        """One run per (rows, lr) training every correlation at once when batched (synthetic data, 2 or more
        p: a sweep's replica (p, s) is exactly the single run with seed s at p), else one run per (rows,
        correlation, lr), correlation-major within a size so each panel fills in turn."""
        out = []
        for n in self.sizes:
            batched = self._batched(n)
            out += batched or [
                self.base.with_(rows=n, correlation=p, lr=lr) for p in self.correlations for lr in self.lrs
            ]
        return out

    def _batched(self, rows: int) -> list[RunConfig]:
        """The batched runs at one training size, or [] where one run per correlation and rate is asked for
        or needed. Every p (synthetic data) and every rate in one run when the server's limits allow, else
        every p in one run per rate; a batched run holds all its replicas' targets and models at once, and may
        pass a limit that a smaller run stays under (then the numbers are the same, only slower)."""
        ps = self.correlations if len(self.correlations) > 1 and self.base.dataset == "synthetic" else ()
        rates = self.lrs if len(self.lrs) > 1 else ()
        if not self.batched or not (ps or rates):
            return []
        base = self.base.with_(rows=rows) if rows != self.base.rows else self.base
        layouts = [(rates, (self.lrs[0],)), ((), self.lrs)] if ps else [(rates, (self.lrs[0],))]
        for sweep_lr, lrs in layouts:
            try:
                if ps:
                    return [base.with_(correlation=ps[0], sweep=ps, lr=lr, sweep_lr=sweep_lr) for lr in lrs]
                return [base.with_(correlation=p, lr=self.lrs[0], sweep_lr=rates) for p in self.correlations]
            except ValueError:
                continue
        return []

    def with_(self, **changes: Any) -> Study:
        """Change study fields (correlations, lrs, row_sizes) or base RunConfig fields in one call."""
        own = {k: changes.pop(k) for k in ("correlations", "lrs", "row_sizes", "batched") if k in changes}
        base = self.base.with_(**changes) if changes else self.base
        return replace(self, base=base, **own)

    def to_dict(self) -> dict[str, Any]:
        out = {"correlations": list(self.correlations), "lrs": list(self.lrs), **self.base.to_dict()}
        out["batched"] = self.batched
        return {**out, "row_sizes": list(self.row_sizes)} if self.row_sizes else out

    @classmethod
    def from_configs(cls, configs: Sequence[RunConfig]) -> Study:
        """The study behind a group of stored runs (the inverse of `configs()`)."""
        if not configs:
            raise ValueError("a study needs at least one run")
        correlations = tuple(dict.fromkeys(p for c in configs for p in (c.sweep or (c.correlation,))))
        lrs = tuple(sorted(set(lr for c in configs for lr in (c.sweep_lr or (c.lr,)))))
        sizes = tuple(dict.fromkeys(c.rows for c in configs))
        base = configs[0].with_(sweep=(), sweep_lr=())
        batched = any(c.sweep or c.sweep_lr for c in configs)
        return cls(correlations, lrs, base, row_sizes=sizes if len(sizes) > 1 else (), batched=batched)


with server_limits_off():  # templates: a server's tighter MMOE_MAX_WORK applies when a study is submitted
    PRESETS: dict[str, Study] = {
        # the teaching default's training size (issue 16: the regime map's pre-registered rule, docs/REPRODUCTION.md)
        "quick": Study(base=_study_base(seeds=8, rows=100_000)),
        "default": Study(),
        "paper": Study(base=_study_base(seeds=200)),
        # issue 16: the paper's protocol (rate grid, each model's best on validation) on seeds never used while
        # building, and the regime map (when does MMoE help?) over p x training rows
        "protocol": Study(
            lrs=PAPER_LRS, base=_study_base(seeds=200, seed=7_100_000, data_seed=7_100_000, log_every=100)
        ),
        "regime": Study(
            correlations=REGIME_CORRELATIONS,
            row_sizes=REGIME_ROWS,
            base=_study_base(seeds=96, seed=7_000_000, data_seed=7_000_000, log_every=250),
        ),
    }
PRESET_LABELS = {
    "quick": "Quick look: 8 seeds",
    "default": "Default: 32 seeds",
    "paper": "Paper scale: 200 seeds",
    "protocol": "Paper protocol: 3 learning rates, each model's best, 200 seeds",
    "regime": "Regime map: 7 correlations x 4 training sizes, 96 seeds",
}


# ---------------------------------------------------------------------------------------------- submit / stop
def study_label(study_id: str) -> str:
    return LABEL_PREFIX + check_run_id(study_id)


def new_study_id() -> str:
    return uuid.uuid4().hex[:12]


def submit_study(queue: Any, study: Study, owner: str = "", key_hash: str = "", **who: str) -> str:
    """Queue every run of the study on a JobQueue; all or nothing when the queue has too little room. Every
    run carries the study's one owner-secret hash (`key_hash`), so one owner link stops them all; `who`
    (browser, address) goes to JobQueue.submit for its quotas."""
    configs = study.configs()
    room = queue.max_queued - len(queue.store.queued())
    if len(configs) > room:
        raise ValueError(
            f"this study needs {len(configs)} runs but the queue has room for {room} "
            f"(at most {queue.max_queued} waiting); choose fewer correlations or learning rates, "
            "or wait for queued runs to finish"
        )
    study_id = new_study_id()
    submitted: list[str] = []
    try:
        for config in configs:
            submitted.append(queue.submit(config, owner=owner, label=study_label(study_id), key_hash=key_hash, **who))
    except ValueError:  # another session filled the queue meanwhile: take back what we queued
        for run_id in submitted:
            queue.cancel(run_id)
        raise
    return study_id


def stop_study(queue: Any, store: RunStore, study_id: str) -> int:
    """Stop every run of the study that has not finished; returns how many were asked to stop."""
    runs = study_runs(store, study_id)
    live = runs[~runs["status"].isin(FINISHED)]
    for run_id in live["id"]:
        queue.cancel(run_id)
    return len(live)


# ---------------------------------------------------------------------------------------------- reading
def study_runs(store: RunStore, study_id: str) -> pd.DataFrame:
    """The study's runs, oldest first, with correlation and lr parsed from each stored config."""
    runs = store.runs(limit=100_000, label=study_label(study_id))
    runs = runs.sort_values("created", kind="stable").reset_index(drop=True)
    configs = [json.loads(c) for c in runs["config"]]
    runs["correlation"] = [c["correlation"] for c in configs]  # a batched run's first p; its `sweep` has them all
    runs["lr"] = [c["lr"] for c in configs]
    runs["rows"] = [c["rows"] for c in configs]
    return runs


def list_studies(store: RunStore) -> pd.DataFrame:
    """One row per study, newest first: id, created, runs, seeds, steps, correlations, lrs, status."""
    runs = store.runs(limit=100_000, label_prefix=LABEL_PREFIX)
    rows = []
    for label, group in runs.groupby("label", sort=False):
        configs = [json.loads(c) for c in group["config"]]
        statuses = group["status"].tolist()
        rows.append(
            {
                "study_id": label[len(LABEL_PREFIX) :],
                "created": group["created"].min(),
                "runs": len(group),
                "seeds": configs[0]["seeds"],
                "steps": configs[0]["steps"],
                "correlations": sorted({p for c in configs for p in (c.get("sweep") or [c["correlation"]])}),
                "lrs": sorted({lr for c in configs for lr in (c.get("sweep_lr") or [c["lr"]])}),
                "status": _overall_status(statuses),
            }
        )
    out = pd.DataFrame(rows, columns=["study_id", "created", "runs", "seeds", "steps", "correlations", "lrs", "status"])
    return out.sort_values("created", ascending=False).reset_index(drop=True)


def load_study(store: RunStore, study_id: str) -> Study:
    runs = study_runs(store, study_id)
    if runs.empty:
        raise ValueError(f"study {study_id} has no runs in this run store; it may have been deleted")
    return Study.from_configs([RunConfig.from_json(c) for c in runs["config"]])


def _overall_status(statuses: Iterable[str]) -> str:
    s = set(statuses)
    if s & {"running", "queued"}:
        return "running" if "running" in s else "queued"
    for status in ("failed", "interrupted", "cancelled"):
        if status in s:
            return status
    return "done"


@dataclass(frozen=True)
class StudyProgress:
    """Progress of a whole study: the sum over its runs."""

    status: str  # queued | running | done | cancelled | failed | interrupted (worst finished state wins)
    step: int
    total_steps: int
    runs_finished: int
    runs: int
    eta_s: float | None

    @property
    def fraction(self) -> float:
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def label(self) -> str:
        text = (
            f"{self.status.capitalize()}: {self.runs_finished} of {self.runs} runs finished, step {self.step:,} of "
            f"{self.total_steps:,}"
        )
        if self.eta_s is not None and not self.finished:
            text += f", about {_duration(self.eta_s)} left"
        return text


def study_progress(runs: pd.DataFrame, now: float) -> StudyProgress:
    """Pure: the study's runs -> progress. A finished run counts all its steps, so the bar reaches the end."""
    total = int(runs["total_steps"].fillna(0).sum())
    done_mask = runs["status"].isin(FINISHED)
    step = int(runs["total_steps"].where(done_mask, runs["step"]).fillna(0).sum())
    started = runs["started"].dropna()
    eta = None
    if not done_mask.all() and len(started) and step:
        elapsed = now - float(started.min())
        eta = max(elapsed / step * (total - step), 0.0)
    return StudyProgress(_overall_status(runs["status"]), step, total, int(done_mask.sum()), len(runs), eta)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# ---------------------------------------------------------------------------------------------- aggregation
FINAL_COLUMNS = [
    "correlation",
    "lr",
    "model",
    "replica",
    "seed",
    "data_seed",
    "test_loss",
    "test_loss_mean",
    "val_loss_mean",
    "status",
    "run_id",
    "rows",
    "grad_agreement",  # per task pair at the last recorded point (mmoe_core.gradients), or None
    "routing_specialisation",  # S at the last recorded point (mmoe_core.specialisation), NaN if not recorded
]


def run_results(store: RunStore, run: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One stored run of a study -> (per-seed held-out curve, final test losses), reading its metrics once.

    curve: correlation, lr, model, step, replica, loss: the validation loss averaged over tasks (NaN where a
    seed diverged). final: FINAL_COLUMNS, one row per model × seed of the config, only once the run has test
    metrics (done, or stopped: a stopped run is evaluated on the test set where it stopped). Every seed is
    there: one whose loss is NaN/inf has status "diverged", one with no test metric at all "failed"; the others
    carry the run's status. val_loss_mean is the seed's validation loss at its model's last recorded step.
    """
    everything = store.metrics(run["id"])
    probes = _last_probe_values(everything)
    m = everything[everything["metric"] == "loss"]
    m = m.assign(value=m["value"].astype(float).fillna(np.inf))  # SQLite stores NaN as NULL: one bad task
    val = m[m["split"] == "val"]  # must spoil its seed's mean, not vanish
    curve = val.groupby(["model", "step", "replica"], sort=False)["value"].mean().reset_index(name="loss")
    loss = curve["loss"].astype(float)
    curve["loss"] = loss.where(np.isfinite(loss))  # a diverged seed reads as missing, never as inf
    config = json.loads(run["config"])
    # a batched run: replica (i·P + j)·seeds + s is rate i, p_j, seed s (RunConfig.replica_correlation)
    seeds, ps = int(config["seeds"]), config.get("sweep") or [run["correlation"]]
    rates = config.get("sweep_lr") or [run["lr"]]
    p_of = lambda r: ps[(int(r) // seeds) % len(ps)]  # noqa: E731
    lr_of = lambda r: rates[int(r) // (seeds * len(ps))]  # noqa: E731
    curve.insert(0, "lr", [lr_of(r) for r in curve["replica"]])
    curve.insert(0, "correlation", [p_of(r) for r in curve["replica"]])
    curve["replica"] = curve["replica"].astype(int) % seeds  # the seed's index, the same at every p and rate
    test = m[m["split"] == "test"]
    if test.empty:
        return curve, pd.DataFrame(columns=FINAL_COLUMNS)
    last_val = curve[curve["step"] == curve.groupby("model")["step"].transform("max")]
    val_at = {(r.model, int(r.replica), r.correlation, r.lr): r.loss for r in last_val.itertuples(index=False)}
    tests = {key: g for key, g in test.groupby(["model", "replica"], sort=False)}
    rows = []
    for model in config["models"]:
        for replica in range(seeds * len(ps) * len(rates)):
            g = tests.get((model, replica))
            losses = g.sort_values("task")["value"].to_numpy(dtype=float) if g is not None else np.array([])
            finite = len(losses) > 0 and bool(np.isfinite(losses).all())
            status = run.get("status", "done") if finite else "diverged" if len(losses) else "failed"
            s = replica % seeds  # replica (lr_i, p_j, s) of a batched run is the single run with seed s there
            val_loss = val_at.get((model, s, p_of(replica), lr_of(replica)), np.nan)
            rows.append(
                {
                    "correlation": p_of(replica),
                    "lr": lr_of(replica),
                    "model": model,
                    "replica": s,
                    "seed": config["seed"] + s,
                    "data_seed": config["data_seed"] + (s if config["independent_data"] else 0),
                    "test_loss": [float(v) if math.isfinite(v) else None for v in losses],
                    "test_loss_mean": float(losses.mean()) if finite else np.nan,
                    "val_loss_mean": float(val_loss) if val_loss is not None and math.isfinite(val_loss) else np.nan,
                    "status": status,
                    "run_id": run["id"],
                    "rows": int(config["rows"]),
                    "grad_agreement": probes.get(("grad_agreement", model, replica)),
                    "routing_specialisation": (probes.get(("routing_specialisation", model, replica)) or [np.nan])[0],
                }
            )
    return curve, pd.DataFrame(rows, columns=FINAL_COLUMNS)


def _last_probe_values(metrics: pd.DataFrame) -> dict[tuple[str, str, int], list[float | None]]:
    """(metric, model, replica) -> values by task column at the model's last recorded probe step, for the
    per-seed probe measures a study reports beside the losses."""
    rows = metrics[metrics["metric"].isin(["grad_agreement", "routing_specialisation"])]
    if rows.empty:
        return {}
    rows = rows[rows["step"] == rows.groupby(["metric", "model"])["step"].transform("max")]
    out = {}
    for (metric, model, replica), g in rows.groupby(["metric", "model", "replica"], sort=False):
        values = g.sort_values("task")["value"].astype(float).tolist()
        out[(metric, model, int(replica))] = [v if math.isfinite(v) else None for v in values]
    return out


def curves(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per correlation, lr, model and step: mean and sd over finite seeds, and how many there were."""
    cols = ["correlation", "lr", "model", "step"]
    if per_seed.empty:
        return pd.DataFrame(columns=[*cols, "mean", "sd", "n"])
    g = per_seed.groupby(cols, sort=False)["loss"]
    return g.agg(mean="mean", sd="std", n="count").reset_index().sort_values(cols).reset_index(drop=True)


def final_losses(store: RunStore, runs: pd.DataFrame) -> pd.DataFrame:
    """Final test loss of every seed of every run that has one (FINAL_COLUMNS)."""
    frames = [run_results(store, run)[1] for _, run in runs.iterrows() if run["status"] in ("done", "cancelled")]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FINAL_COLUMNS)


# ---------------------------------------------------------------------------------------------- paper Fig. 2
def label_correlations(
    base: RunConfig,
    correlations: Sequence[float],
    draws: int,
    rows: int = 2_000,
    sine_terms: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Measured Pearson correlation of the two labels for each weight cosine p, over `draws` independent
    draws of u1, u2, α, β and inputs (paper Fig. 2). Data only, no training: a second or two.

    Returns p, sine_terms, draw, label_correlation; by default for linear tasks (m = 0) and the base's m.
    """
    import torch

    from ..data import make_synthetic_tasks

    terms = sine_terms if sine_terms is not None else sorted({0, base.sine_terms})
    seeds = [base.data_seed + i for i in range(draws)]
    out = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny ops: on a busy 2-core server, 2 threads ran this 30x slower
    try:
        for m in terms:
            for p in correlations:
                data = make_synthetic_tasks(
                    n_train=rows,
                    n_val=1,
                    n_test=1,
                    n_features=base.input_dim,
                    correlation=p,
                    scale=base.scale,
                    n_sine=m,
                    noise_std=base.noise_std,
                    n_tasks=2,
                    random_state=seeds,
                )
                out += [
                    {"p": p, "sine_terms": m, "draw": i, "label_correlation": c}
                    for i, c in enumerate(data.label_correlation)
                ]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(out)
