"""What the per-log-step probes cost the live view (issue #19: within 10% of the rows/s without them).

At the Playground's defaults (one seed, the three models, a point every 50 steps) a run is trained with the
gradient-agreement and routing-specialisation probes and without them, alternated round by round in one process
so both share the machine's load; prints rows/s per round and the median ratio.

    python -m bench.bench_probes                  # 5 rounds of 600 steps
    python -m bench.bench_probes --rounds 7 --steps 1000 --seeds 8
"""

from __future__ import annotations

import argparse
import statistics
import time

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.training import Trainer


def rows_per_s(config: RunConfig, data, probes: bool) -> float:
    trainer = Trainer(config, data)
    if not probes:
        trainer.probe_agreement = lambda: []  # type: ignore[method-assign]
        trainer.probe_specialisation = lambda: []  # type: ignore[method-assign]
    t0 = time.perf_counter()
    trainer.run()
    return config.steps * config.batch_size / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args(argv)
    config = RunConfig(steps=args.steps, seeds=args.seeds)
    data = load_data(config)
    rows_per_s(config, data, True)  # warm-up: first-call allocations and kernels
    ratios = []
    for i in range(args.rounds):
        order = (True, False) if i % 2 == 0 else (False, True)
        speed = {probes: rows_per_s(config, data, probes) for probes in order}
        ratios.append(speed[True] / speed[False])
        print(
            f"round {i + 1}: with probes {speed[True]:,.0f} rows/s, without {speed[False]:,.0f}, ratio {ratios[-1]:.3f}"
        )
    print(
        f"median ratio with/without probes: {statistics.median(ratios):.3f} "
        f"(log_every {config.log_every}, {args.seeds} seed(s), goal >= 0.90)"
    )


if __name__ == "__main__":
    main()
