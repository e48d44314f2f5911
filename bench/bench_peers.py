"""Rows per second of our trainer against the peer libraries' MMoE (issue 6), in one process, alternating.

    pip install --no-deps torch-rechub==0.9.0 deepctr-torch==0.3.0   # the `bench` extra, without its deps
    python -m bench.bench_peers                  # about 10 minutes on 2 busy cores; writes bench/peers.json
    python -m bench.bench_peers --rounds 3 --rows 20000 --only rechub_fit,ours_mmoe   # a quick look

One synthetic data set (Ma et al. 2018 §3.2; d = 100, p = 0.5) is drawn once. Every round then runs every
contender once, in an order rotated each round, for one epoch of the training rows (batch 1024, Adam 1e-3,
8 experts x 16 units, towers of 8):

    rechub_fit       torch-rechub 0.9.0: MMOE + DataGenerator + MTLTrainer.fit (its documented pipeline)
    rechub_loop      the same torch-rechub MMOE fed by plain tensor slices (no DataLoader)
    rechub_loop_nobn the same, its BatchNorm layers replaced by identities: like for like with ours. torch-rechub's
                     MLP puts BatchNorm1d after every Linear, experts, gates and towers alike (its basic/layers.py,
                     class MLP), so its model does more work per row than the paper's, which ours implements
    deepctr_fit      deepctr-torch 0.3.0: MMOE.compile + fit (its documented pipeline)
    deepctr_loop     the same deepctr-torch MMOE fed by plain tensor slices
    naive_loop       bench/naive_mmoe.py: experts in an nn.ModuleList, a Python loop
    ours_mmoe        mmoe_core Trainer.run, MMoE alone (evaluation every 50 steps included)
    ours_3models     Shared-Bottom, OMoE and MMoE in lock-step: rows/s counts each row once
    ours_sweep32     the three models x 32 seeds as one batched run: model-rows/s = rows x models x seeds
    rechub_loop_e32, ours_mmoe_e32   the same two at 32 experts

`--process NAME` runs one contender once as this whole process (data drawn, one epoch, exit): what
bench/bench_process.py times against our CLI, start-up included.

The machines are shared and noisy (±30 % between runs), so the headline numbers are ratios ours/peer taken
within each round (runs seconds apart) and their median over rounds, never two separate medians divided.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from mmoe_core.runtime.openmp import choose_wait_policy  # noqa: E402

# Before torch loads, the same choice `python -m mmoe_core` makes (a short spin on a quiet machine, PASSIVE on
# a busy one), applied to every contender alike; --spin keeps OpenMP's own default instead.
WAIT_POLICY = "openmp-default" if "--spin" in sys.argv else choose_wait_policy()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.naive_mmoe import NaiveMMoE  # noqa: E402
from mmoe_core.data import TaskData, make_synthetic_tasks  # noqa: E402

# (name, ours, peer, target): the ratios the issue asks for, then context.
PAIRS: list[tuple[str, str, str, float | None]] = [
    ("3 models lock-step / torch-rechub pipeline (MMoE alone)", "ours_3models", "rechub_fit", 4.0),
    ("MMoE / torch-rechub model, tensor loop (8 experts)", "ours_mmoe", "rechub_loop", 2.0),
    ("MMoE / torch-rechub model without BatchNorm, tensor loop", "ours_mmoe", "rechub_loop_nobn", None),
    ("3 models lock-step / torch-rechub without BatchNorm, tensor loop", "ours_3models", "rechub_loop_nobn", None),
    ("MMoE / torch-rechub model, tensor loop (32 experts)", "ours_mmoe_e32", "rechub_loop_e32", 2.0),
    ("32-seed sweep model-rows / torch-rechub pipeline", "ours_sweep32", "rechub_fit", 10.0),
    ("MMoE / torch-rechub pipeline", "ours_mmoe", "rechub_fit", None),
    ("MMoE / deepctr-torch pipeline", "ours_mmoe", "deepctr_fit", None),
    ("MMoE / deepctr-torch model, tensor loop", "ours_mmoe", "deepctr_loop", None),
    ("MMoE / naive ModuleList MMoE, tensor loop", "ours_mmoe", "naive_loop", None),
    ("3 models lock-step / deepctr-torch pipeline", "ours_3models", "deepctr_fit", None),
    ("32-seed sweep model-rows / deepctr-torch pipeline", "ours_sweep32", "deepctr_fit", None),
]
PAPER_MODELS = ("shared_bottom", "omoe", "mmoe")


@dataclass(frozen=True)
class Setup:
    rows: int = 100_000  # training rows; one epoch per run
    eval_rows: int = 2_000  # validation rows every pipeline evaluates on
    input_dim: int = 100
    n_tasks: int = 2
    experts: int = 8
    expert_units: int = 16
    tower_units: int = 8
    batch_size: int = 1024
    lr: float = 1e-3
    sweep_seeds: int = 32
    threads: int = 2


@dataclass
class Arrays:
    """The one data draw, as our TaskData and as the float32 arrays the peers take."""

    data: TaskData
    x: np.ndarray  # (n, d)
    y: np.ndarray  # (n, k)
    x_val: np.ndarray
    y_val: np.ndarray


def make_arrays(s: Setup) -> Arrays:
    data = make_synthetic_tasks(
        n_train=s.rows,
        n_val=s.eval_rows,
        n_test=s.eval_rows,
        n_features=s.input_dim,
        n_tasks=s.n_tasks,
        correlation=0.5,
        random_state=0,
    )
    return Arrays(
        data,
        data.x_train[0].numpy().copy(),
        data.y_train[0].numpy().copy(),
        data.x_val[0].numpy().copy(),
        data.y_val[0].numpy().copy(),
    )


# ---------------------------------------------------------------------------------------------- peers
def _tensor_loop(model: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], a: Arrays, s: Setup) -> int:
    """One epoch of plain tensor slices: shuffle once, slice batches, MSE per task summed, Adam."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    x, y = torch.from_numpy(a.x), torch.from_numpy(a.y)
    perm = torch.randperm(x.shape[0])
    x, y = x[perm], y[perm]
    rows = 0
    for start in range(0, x.shape[0] - s.batch_size + 1, s.batch_size):
        xb, yb = x[start : start + s.batch_size], y[start : start + s.batch_size]
        loss = F.mse_loss(forward(xb), yb, reduction="none").mean(dim=0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows += xb.shape[0]
    return rows


def _rechub_model(s: Setup, experts: int):
    from torch_rechub.basic.features import DenseFeature
    from torch_rechub.models.multi_task import MMOE

    features = [DenseFeature("x", embed_dim=s.input_dim)]  # one dense vector feature, as its docs allow
    return MMOE(
        features,
        ["regression"] * s.n_tasks,
        n_expert=experts,
        expert_params={"dims": [s.expert_units]},
        tower_params_list=[{"dims": [s.tower_units]}] * s.n_tasks,
    )


def rechub_fit(a: Arrays, s: Setup) -> int:
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    model = _rechub_model(s, s.experts)
    gen = DataGenerator({"x": a.x}, a.y)
    train_dl, val_dl, _ = gen.generate_dataloader(
        x_val={"x": a.x_val}, y_val=a.y_val, x_test={"x": a.x_val}, y_test=a.y_val, batch_size=s.batch_size
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MTLTrainer(
            model,
            task_types=["regression"] * s.n_tasks,
            n_epoch=1,
            device="cpu",
            optimizer_params={"lr": s.lr, "weight_decay": 0.0},
            model_path=tmp,
        )
        trainer.fit(train_dl, val_dl)
    return a.x.shape[0]


def _rechub_loop(a: Arrays, s: Setup, experts: int) -> int:
    model = _rechub_model(s, experts)
    return _tensor_loop(model, lambda xb: model({"x": xb}), a, s)


def rechub_loop(a: Arrays, s: Setup) -> int:
    return _rechub_loop(a, s, s.experts)


def rechub_loop_nobn(a: Arrays, s: Setup) -> int:
    model = _without_batchnorm(_rechub_model(s, s.experts))
    return _tensor_loop(model, lambda xb: model({"x": xb}), a, s)


def _without_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm1d replaced by an identity: Linear, ReLU in experts and towers, Linear, softmax in gates,
    as the paper's MMoE and ours (whose gates have no bias; torch-rechub's keep theirs)."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.BatchNorm1d):
                setattr(module, name, torch.nn.Identity())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    return model


def rechub_loop_e32(a: Arrays, s: Setup) -> int:
    return _rechub_loop(a, s, 32)


def _deepctr_model(s: Setup):
    from deepctr_torch.inputs import DenseFeat
    from deepctr_torch.models import MMOE

    return MMOE(
        [DenseFeat("x", s.input_dim)],
        num_experts=s.experts,
        expert_dnn_hidden_units=(s.expert_units,),
        gate_dnn_hidden_units=(),
        tower_dnn_hidden_units=(s.tower_units,),
        task_types=("regression",) * s.n_tasks,
        task_names=tuple(f"y{i}" for i in range(s.n_tasks)),
        device="cpu",
    )


def deepctr_fit(a: Arrays, s: Setup) -> int:
    model = _deepctr_model(s)
    model.compile(torch.optim.Adam(model.parameters(), lr=s.lr), loss=["mse"] * s.n_tasks)
    model.fit({"x": a.x}, a.y, batch_size=s.batch_size, epochs=1, verbose=0, validation_data=({"x": a.x_val}, a.y_val))
    return a.x.shape[0]


def deepctr_loop(a: Arrays, s: Setup) -> int:
    model = _deepctr_model(s)
    return _tensor_loop(model, model, a, s)


def naive_loop(a: Arrays, s: Setup) -> int:
    model = NaiveMMoE(s.input_dim, s.experts, s.expert_units, s.n_tasks, s.tower_units)
    return _tensor_loop(model, model, a, s)


# ---------------------------------------------------------------------------------------------- ours
def _ours(a: Arrays, s: Setup, models: tuple[str, ...], seeds: int = 1, experts: int | None = None) -> int:
    """Trainer.run for one epoch, evaluation every 50 steps included; returns model-rows trained."""
    from mmoe_core.config import RunConfig  # here, so that a peer's --process run does not import our trainer
    from mmoe_core.training import Trainer

    config = RunConfig(
        rows=s.rows,
        eval_rows=s.eval_rows,
        input_dim=s.input_dim,
        n_tasks=s.n_tasks,
        n_experts=experts or s.experts,
        expert_units=s.expert_units,
        tower_units=s.tower_units,
        models=models,
        seeds=seeds,
        steps=s.rows // s.batch_size,
        batch_size=s.batch_size,
        lr=s.lr,
        log_every=50,
        device="cpu",
    )
    trainer = Trainer(config, a.data)
    trainer.run()
    return trainer.step_count * s.batch_size * len(models) * seeds


def ours_mmoe(a: Arrays, s: Setup) -> int:
    return _ours(a, s, ("mmoe",))


def ours_mmoe_e32(a: Arrays, s: Setup) -> int:
    return _ours(a, s, ("mmoe",), experts=32)


def ours_3models(a: Arrays, s: Setup) -> int:
    return _ours(a, s, PAPER_MODELS) // len(PAPER_MODELS)  # rows: each row trains all three


def ours_sweep32(a: Arrays, s: Setup) -> int:
    return _ours(a, s, PAPER_MODELS, seeds=s.sweep_seeds)  # model-rows


CONTENDERS: dict[str, Callable[[Arrays, Setup], int]] = {
    f.__name__: f
    for f in (
        rechub_fit,
        rechub_loop,
        rechub_loop_nobn,
        deepctr_fit,
        deepctr_loop,
        naive_loop,
        ours_mmoe,
        ours_3models,
        ours_sweep32,
        rechub_loop_e32,
        ours_mmoe_e32,
    )
}


# ---------------------------------------------------------------------------------------------- harness
def time_one(fn: Callable[[Arrays, Setup], int], a: Arrays, s: Setup) -> dict[str, float]:
    """Wall and CPU seconds of one run, the peers' progress prints swallowed."""
    torch.manual_seed(0)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        t0, c0 = time.perf_counter(), time.process_time()
        units = fn(a, s)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"units": units, "wall_s": wall, "cpu_s": cpu, "per_s": units / wall}


def run(s: Setup, names: list[str], rounds: int, warmup: bool = True, log=print) -> dict:
    torch.set_num_threads(s.threads)
    t_data = time.perf_counter()
    a = make_arrays(s)
    log(
        f"data: {s.rows:,} rows x {s.input_dim} drawn in {time.perf_counter() - t_data:.1f} s; "
        f"{s.threads} threads, load average {os.getloadavg()[0]:.1f}"
    )
    if warmup:  # first calls pay imports and allocator growth
        small = Setup(**{**asdict(s), "rows": 4 * s.batch_size, "sweep_seeds": 2})
        small_a = make_arrays(small)
        for name in names:
            time_one(CONTENDERS[name], small_a, small)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            runs[name].append(time_one(CONTENDERS[name], a, s))
        log(
            f"round {r + 1}/{rounds}: "
            + ", ".join(f"{n} {runs[n][-1]['per_s']:,.0f}" for n in names)
            + f"  (load {os.getloadavg()[0]:.1f})"
        )
    ratios = {}
    for label, ours, peer, target in PAIRS:
        if ours in runs and peer in runs:
            per_round = [o["per_s"] / p["per_s"] for o, p in zip(runs[ours], runs[peer])]
            ratios[label] = {
                "ours": ours,
                "peer": peer,
                "target": target,
                "per_round": per_round,
                "median": statistics.median(per_round),
            }
    return {
        "setup": asdict(s),
        "rounds": rounds,
        "versions": _versions(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_end": os.getloadavg(),
            "omp_wait_policy": WAIT_POLICY,
        },
        "runs": runs,
        "median_per_s": {n: statistics.median(v["per_s"] for v in runs[n]) for n in names},
        "ratios": ratios,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "torch-rechub", "deepctr-torch"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def table(result: dict) -> str:
    units = {"ours_sweep32": "model-rows/s", "ours_3models": "rows/s (x3 models)"}
    lines = [f"{'contender':<18} {'median':>12}  unit", "-" * 48]
    for name, v in result["median_per_s"].items():
        lines.append(f"{name:<18} {v:>12,.0f}  {units.get(name, 'rows/s')}")
    lines += [
        "",
        f"{'ratio ours/peer (median of per-round ratios)':<58} {'median':>7} {'range':>13} {'target':>7}",
        "-" * 90,
    ]
    for label, r in result["ratios"].items():
        lo, hi = min(r["per_round"]), max(r["per_round"])
        target = f">= {r['target']:g}" if r["target"] else ""
        lines.append(f"{label:<58} {r['median']:>6.2f}x {lo:>5.2f}-{hi:<5.2f}x {target:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--rows", type=int, default=Setup.rows, help="training rows, one epoch per run")
    parser.add_argument("--threads", type=int, default=Setup.threads, help="torch threads (default 2)")
    parser.add_argument("--only", default="", help="comma-separated contenders (default: all)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "peers.json"), help="where to write results")
    parser.add_argument("--spin", action="store_true", help="keep OpenMP's default wait policy (quiet machines)")
    parser.add_argument("--process", default="", help="run this one contender once and exit (bench_process.py)")
    args = parser.parse_args(argv)
    if args.process:
        if args.process not in CONTENDERS:
            parser.error(f"unknown contender {args.process}; choose from {', '.join(CONTENDERS)}")
        setup = Setup(rows=args.rows, threads=args.threads)
        torch.set_num_threads(setup.threads)
        rows = CONTENDERS[args.process](make_arrays(setup), setup)
        print(f"{args.process}: {rows:,} rows")
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONTENDERS)
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    missing = [
        p
        for p, n in (("torch_rechub", "rechub"), ("deepctr_torch", "deepctr"))
        if any(n in x for x in names) and not _importable(p)
    ]
    if missing:
        parser.error(
            f"{', '.join(missing)} not installed: pip install --no-deps torch-rechub==0.9.0 deepctr-torch==0.3.0"
        )
    setup = Setup(rows=args.rows, threads=args.threads)
    result = run(setup, names, args.rounds)
    print(table(result))
    Path(args.json).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
