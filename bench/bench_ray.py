"""One sweep on the local backend against the ray backend: wall time and CPU seconds (docs/SCALING.md).

    python -m bench.bench_ray --backend local -- --correlations 0.25,0.5,0.9,1.0 --seeds 32 --steps 500
    python -m bench.bench_ray --backend ray --ray-cpus 2 -- --correlations 0.25,0.5,0.9,1.0 --seeds 32 --steps 500

Everything after `--` goes to `python -m mmoe_core sweep`. CPU seconds count this process and, on ray, every
Ray worker process (read from /proc before Ray shuts down), so a comparison on a busy shared machine can say
how much work each backend did, not only how long it waited for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from mmoe_core.runtime.openmp import choose_wait_policy  # noqa: E402

choose_wait_policy()  # as `python -m mmoe_core` does, before torch loads
from mmoe_core import cli  # noqa: E402


def _ray_worker_cpu_s() -> float:
    """utime + stime of every live process titled ray::… (the workers that ran the tasks)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("local", "ray"), required=True)
    parser.add_argument("--ray-cpus", type=int, default=None, help="size of the local Ray instance")
    parser.add_argument("--out", default=None, help="write the measurement as JSON here")
    args, sweep = parser.parse_known_args()
    sweep = [a for a in sweep if a != "--"]
    if args.backend == "ray":
        import ray

        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    load_before = os.getloadavg()
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory() as home:
        code = cli.main(
            [
                "sweep",
                *sweep,
                "--quiet",
                "--home",
                home,
                "--backend",
                args.backend,
                "--json",
                os.path.join(home, "out.json"),
            ]
        )
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        results = json.loads(Path(home, "out.json").read_text())["results"] if code == 0 else []
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    workers = 0.0
    if args.backend == "ray":
        workers = _ray_worker_cpu_s()
        ray.shutdown()
    out = {
        "backend": args.backend,
        "ray_cpus": args.ray_cpus,
        "sweep": sweep,
        "exit": code,
        "wall_s": round(wall, 1),
        "driver_cpu_s": round(cpu, 1),
        "worker_cpu_s": round(workers, 1),
        "results": len(results),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    print(json.dumps(out))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
