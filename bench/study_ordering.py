"""How reliable is the paper's model ordering at a small budget? One line of JSON per master seed.

    OMP_NUM_THREADS=1 python -m bench.study_ordering P SEEDS STEPS ROWS LR MASTER [MASTER ...]
    OMP_NUM_THREADS=1 python -m bench.study_ordering 0.5 24 1000 20000 1e-3 100 200 300 400

Each master seed m trains Shared-Bottom, OMoE and MMoE on SEEDS seeds (seed m + r, each with its own data
draw m + r) and prints per-model mean/sd/min of the final test loss and the paired gaps (mean, standard
error; median, wins of pairs and the sign-test verdict of mmoe_core.studies.stats) MMoE − OMoE, MMoE − Shared-Bottom,
OMoE − Shared-Bottom. docs/REPRODUCTION.md tabulates the runs
that chose the budget of tests/test_study.py::test_mmoe_has_the_lowest_mean_final_loss_at_p_05.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.studies.stats import paired_gap
from mmoe_core.training import Trainer


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    p, seeds, steps, rows, lr = float(argv[0]), int(argv[1]), int(argv[2]), int(argv[3]), float(argv[4])
    for ms in (int(a) for a in argv[5:]):
        c = RunConfig(
            correlation=p,
            steps=steps,
            rows=rows,
            seeds=seeds,
            independent_data=True,
            seed=ms,
            data_seed=ms,
            log_every=steps,
            eval_rows=1_000,
            lr=lr,
        )
        t = time.time()
        res = Trainer(c, load_data(c)).run()
        loss = {k: r.test_loss.mean(axis=1) for k, r in res.items()}  # (seeds,) mean over tasks

        def gap(a: str, b: str, loss: dict = loss) -> dict:
            """Mean ± se over finite pairs (as before), and the robust view: median gap, wins, verdict."""
            d = loss[a] - loss[b]
            g = paired_gap(loss[a], loss[b])
            return {
                "mean": round(float(np.nanmean(d)), 4),
                "se": round(float(np.nanstd(d, ddof=1) / np.sqrt(np.isfinite(d).sum())), 4),
                "median": round(g.median, 4),
                "wins": g.wins,
                "pairs": g.pairs,
                "verdict": g.verdict,
            }

        print(
            json.dumps(
                {
                    "p": p,
                    "seeds": seeds,
                    "steps": steps,
                    "rows": rows,
                    "lr": lr,
                    "master_seed": ms,
                    "mean_sd_min": {
                        k: [round(float(f(v)), 4) for f in (np.nanmean, np.nanstd, np.nanmin)] for k, v in loss.items()
                    },
                    "mmoe-omoe": gap("mmoe", "omoe"),
                    "mmoe-shared_bottom": gap("mmoe", "shared_bottom"),
                    "omoe-shared_bottom": gap("omoe", "shared_bottom"),
                    "seconds": round(time.time() - t, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
