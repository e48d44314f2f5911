"""Whole processes, as a user waits for them (issue #18 item 4): our CLI training Shared-Bottom, OMoE and MMoE in
lock-step against torch-rechub's MMOE alone on as many rows, each a fresh `python` process from start to exit
(imports, data draw, one epoch at batch 1024, evaluation, exit). Alternated round by round; the ratio is taken
within each round and its median reported, as in bench_peers.py.

    pip install --no-deps torch-rechub==0.9.0 deepctr-torch==0.3.0
    python -m bench.bench_process                       # 1,000,000 rows, 5 rounds
    python -m bench.bench_process --rows 200000 --rounds 3
    python -m bench.bench_process --baseline /tmp/before --peers rechub_fit   # + another checkout's CLI

Contenders: `ours` = `python -m mmoe_core train --models shared_bottom,omoe,mmoe` (evaluation every 50 steps,
no store); `rechub_fit` = its documented pipeline (DataGenerator + MTLTrainer.fit, BatchNorm in every layer);
`rechub_loop_nobn` = its MMOE without BatchNorm fed by tensor slices (the like-for-like model). Both peers
draw the same synthetic data as ours, with our generator, inside their process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1024


def timed(cmd: list[str], cwd: Path = ROOT) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--peers", default="rechub_fit,rechub_loop_nobn")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout whose CLI to time alongside")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ours = [sys.executable, "-m", "mmoe_core", "train", "--models", "shared_bottom,omoe,mmoe"]
        ours += ["--rows", str(args.rows), "--steps", str(args.rows // BATCH), "--batch-size", str(BATCH)]
        ours += ["--eval-rows", "2000", "--log-every", "50", "--correlation", "0.5", "--no-store", "--quiet"]
        ours += ["--home", tmp, "--json", str(Path(tmp) / "out.json")]
        cmds = {"ours": ours}
        where = {"baseline": args.baseline.resolve()} if args.baseline else {}
        if args.baseline:
            cmds["baseline"] = ours
        for peer in args.peers.split(","):
            cmds[peer] = [sys.executable, "-m", "bench.bench_peers", "--process", peer, "--rows", str(args.rows)]
        names = list(cmds)
        for name in names:  # warm the file cache: a session's first process reads torch from disk
            timed(cmds[name][:3] + ["--help"], where.get(name, ROOT))
        took: dict[str, list[float]] = {n: [] for n in names}
        for i in range(args.rounds):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                took[name].append(timed(cmds[name], where.get(name, ROOT)))
            print(f"round {i + 1}: " + ", ".join(f"{n} {took[n][-1]:.1f} s" for n in names))
    print(f"{args.rows:,} rows, one epoch at batch {BATCH}, whole processes, median of {args.rounds} rounds:")
    for name in names:
        print(f"  {name:<18} {statistics.median(took[name]):6.1f} s")
    for contender in (n for n in ("ours", "baseline") if n in took):
        for peer in (n for n in names if n not in ("ours", "baseline")):
            ratios = [p / o for p, o in zip(took[peer], took[contender])]
            print(
                f"  {contender}, 3 models lock-step / {peer} (MMoE alone), rows/s: median "
                f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x)"
                + ("  goal >= 3x" if peer == "rechub_fit" else "")
            )
    if "baseline" in took:
        ratios = [b / o for b, o in zip(took["baseline"], took["ours"])]
        print(f"  baseline wall / ours: median {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)")


if __name__ == "__main__":
    main()
