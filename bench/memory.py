"""Peak memory and time of the paper-scale study (Ma et al. 2018 §5: 3 correlations x 3 models x 200 seeds).

    python -m bench.memory                      # one correlation, 200 seeds, 300 steps: ~5 min on 2 cores
    python -m bench.memory --correlations 0.5,0.9,1.0 --steps 3000    # the whole study (hours on 2 cores)

Runs the real CLI sweep in a child process and reads the child's peak resident set size from the kernel
(getrusage RUSAGE_CHILDREN). Memory does not grow with steps (data, weights, optimizer state and one batch
of activations are allocated up front and reused), so a few hundred steps show the peak; the time of the
full 3000-step study is extrapolated from the measured steps/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--correlations", default="0.5", help="comma-separated p values (default 0.5)")
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--full-steps", type=int, default=3000, help="steps of the study to extrapolate to")
    parser.add_argument("--json", default=str(ROOT / "bench" / "memory.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep.json"
        cmd = [
            sys.executable,
            "-m",
            "mmoe_core",
            "sweep",
            "--correlations",
            args.correlations,
            "--seeds",
            str(args.seeds),
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--quiet",
            "--no-store",
            "--json",
            str(out),
        ]
        t0 = time.perf_counter()
        env = {**os.environ, "MMOE_HOME": tmp}  # `python -m mmoe_core` picks the OpenMP wait policy itself
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
        wall = time.perf_counter() - t0
        sweep = json.loads(out.read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    n_corr = len(args.correlations.split(","))
    per_corr_s = sweep["seconds"] / n_corr
    # 3 correlations at full steps. Data generation is scaled along with the steps, so this is an upper bound.
    full_s = 3 * per_corr_s * args.full_steps / args.steps
    result = {
        "command": " ".join(cmd[1:]),
        "peak_rss_mb": round(peak_mb),
        "wall_s": round(wall, 1),
        "sweep_seconds": sweep["seconds"],
        "model_rows_per_s": sweep["model_rows_per_s"],
        "threads": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
        "full_study_estimate_s_upper": round(full_s),
        "full_study": f"3 correlations x 3 models x {args.seeds} seeds "
        f"x {args.full_steps} steps x batch {args.batch_size}",
    }
    print(json.dumps(result, indent=2))
    Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
