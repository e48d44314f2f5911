"""One batched run over every correlation against one run per correlation (issue #18 item 2).

A study of P correlations × S seeds trains either as P runs of S replicas (the old layout) or as one run of
P·S replicas (RunConfig.sweep); the per-replica numbers are identical (tests/test_sweep.py), so only time
differs. Alternated round by round in one process, data made beforehand (not timed), training plus the
evaluations and probes at each log step timed; prints wall seconds per round and the median ratio.

    python -m bench.bench_sweep                                # 5 p x 8 seeds, 300 steps, 3 rounds
    python -m bench.bench_sweep --seeds 32 --steps 600 --rounds 3
    python -m bench.bench_sweep --correlations 0.5,0.9,1 --lrs 1e-4,1e-3,1e-2   # the protocol's 9 runs as one
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.training import Trainer


def seconds(configs: list[RunConfig], data: list) -> float:
    t0 = time.perf_counter()
    for config, d in zip(configs, data):
        Trainer(config, d, device="cpu").run()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--correlations", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lrs", default="", help="comma-separated rates: batch them too (one run per p and rate)")
    args = parser.parse_args(argv)
    ps = tuple(float(p) for p in args.correlations.split(","))
    lrs = tuple(float(v) for v in args.lrs.split(",") if v) or (1e-3,)
    base = RunConfig(seeds=args.seeds, steps=args.steps, rows=args.rows, independent_data=True, log_every=50)
    separate = [base.with_(correlation=p, lr=lr) for p in ps for lr in lrs]
    batched = [base.with_(correlation=ps[0], sweep=ps, lr=lrs[0], sweep_lr=lrs if len(lrs) > 1 else ())]
    data = {"separate": [load_data(c) for c in separate], "batched": [load_data(c) for c in batched]}
    layouts = {"separate": separate, "batched": batched}
    print(
        f"{len(ps)} p x {len(lrs)} rates x {args.seeds} seeds x 3 models, {args.steps} steps of 256, "
        f"torch threads {torch.get_num_threads()}"
    )
    seconds(batched, data["batched"])  # warm-up
    ratios = []
    for i in range(args.rounds):
        order = ("separate", "batched") if i % 2 == 0 else ("batched", "separate")
        took = {name: seconds(layouts[name], data[name]) for name in order}
        ratios.append(took["separate"] / took["batched"])
        print(
            f"round {i + 1}: {len(separate)} runs {took['separate']:.1f} s, one batched run {took['batched']:.1f} s, "
            f"speed-up {ratios[-1]:.2f}x"
        )
    print(f"median speed-up of one batched run over one run per p and rate: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
