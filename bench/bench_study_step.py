"""A paper-scale study step against the machine's matmul peak, measured in one run (issue #18 item 3).

The study: 3 correlations × 200 seeds (600 replicas) × Shared-Bottom, OMoE and MMoE, batches of 256, as one
batched computation (RunConfig.sweep). Each round times `--steps` training steps per replica-chunk setting
(0 = one pass over all replicas, 'auto' = the trainer's choice, or a number), alternated round by round, and a
1024² float32 matmul (sgemm) on the same threads between them, so every ratio compares figures taken minutes
apart under the same load. FLOPs follow the issue's convention: 6 per multiply-add per row (forward 2,
backward 4) over SB 13,124, OMoE 14,000 and MMoE 14,928 multiply-adds per row; it overstates the arithmetic
actually done (the first layer needs no input gradient), so the fraction is an upper bound of the real use.

    python -m bench.bench_study_step                         # chunk settings 0 and auto, 3 rounds
    python -m bench.bench_study_step --chunks 0,auto,25,50,100 --steps 10 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.training import Trainer

MACS_PER_ROW = {"shared_bottom": 13_124, "omoe": 14_000, "mmoe": 14_928}
STUDY_STEPS = 1_500


def sgemm_gflops(n: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - t0) / 1e9


def step_seconds(trainer: Trainer, steps: int) -> float:
    trainer.step()  # warm-up: first-touch allocations
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - t0) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--correlations", default="0.5,0.9,1")
    parser.add_argument("--chunks", default="0,auto", help="replicas per pass: 0 (off), auto, or numbers")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ps = tuple(float(p) for p in args.correlations.split(","))
    config = RunConfig(
        correlation=ps[0],
        sweep=ps,
        seeds=args.seeds,
        batch_size=256,
        rows=20_000,
        independent_data=True,
        models=tuple(MACS_PER_ROW),
    )
    data = load_data(config)
    flop_per_step = 6 * config.replicas * config.batch_size * sum(MACS_PER_ROW.values())
    settings = [None if c == "auto" else int(c) for c in args.chunks.split(",")]
    trainers = {c: Trainer(config, data, device="cpu", replica_chunk=c) for c in settings}
    label = {c: "auto" if c is None else "off" if c == 0 else str(c) for c in settings}
    print(
        f"{len(ps)} p x {args.seeds} seeds = {config.replicas} replicas x 3 models, batch 256, "
        f"{flop_per_step / 1e9:.1f} GFLOP per step, torch threads {torch.get_num_threads()}"
    )
    for c, tr in trainers.items():
        sizes = sorted({b - a for a, b in tr._chunks})
        print(f"  setting {label[c]}: {len(tr._chunks)} pass(es) of {sizes} replicas")
    fractions: dict = {c: [] for c in settings}
    per_step: dict = {c: [] for c in settings}
    for i in range(args.rounds):
        order = settings if i % 2 == 0 else settings[::-1]
        peak = [sgemm_gflops()]
        took = {}
        for c in order:
            took[c] = step_seconds(trainers[c], args.steps)
        peak.append(sgemm_gflops())
        sgemm = statistics.mean(peak)
        line = [f"round {i + 1}: sgemm {sgemm:.0f} GFLOP/s"]
        for c in settings:
            gflops = flop_per_step / took[c] / 1e9
            fractions[c].append(gflops / sgemm)
            per_step[c].append(took[c])
            line.append(f"{label[c]} {took[c] * 1e3:.0f} ms/step {gflops:.0f} GFLOP/s ({gflops / sgemm:.0%})")
        print("; ".join(line))
    base = settings[0]
    for c in settings:
        s = statistics.median(per_step[c])
        print(
            f"{label[c]:>5}: median {s * 1e3:.0f} ms/step, {statistics.median(fractions[c]):.0%} of sgemm, "
            f"{STUDY_STEPS} steps = {STUDY_STEPS * s / 60:.1f} min of training, "
            f"{statistics.median(per_step[base]) / s:.2f}x setting {label[base]}"
        )


if __name__ == "__main__":
    main()
