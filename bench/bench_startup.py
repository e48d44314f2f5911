"""Start-up as a user of the CLI waits for it (issue #18 item 1): a one-step `train` as a whole process against
a bare `python -c "import torch"`, alternated round by round so both share the machine's load at that moment.

    python -m bench.bench_startup            # 7 rounds; prints each round and the median ratio
    python -m bench.bench_startup --rounds 11 --rows 2000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2_000, help="training rows of the one-step run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.json")
        bare = [sys.executable, "-c", "import torch"]
        train = [sys.executable, "-m", "mmoe_core", "train", "--steps", "1", "--rows", str(args.rows)]
        train += ["--eval-rows", "500", "--no-store", "--json", out]
        timed(bare), timed(train)  # warm the file cache: the first process of a session reads torch from disk
        ratios, bare_s, train_s = [], [], []
        for i in range(args.rounds):
            pair = (timed(bare), timed(train)) if i % 2 == 0 else tuple(reversed((timed(train), timed(bare))))
            bare_s.append(pair[0])
            train_s.append(pair[1])
            ratios.append(pair[1] / pair[0])
            print(
                f"round {i + 1}: import torch {pair[0]:.2f} s, one-step train {pair[1]:.2f} s, ratio {ratios[-1]:.2f}"
            )
    print(
        f"median: import torch {statistics.median(bare_s):.2f} s, one-step train {statistics.median(train_s):.2f} s, "
        f"ratio {statistics.median(ratios):.2f}x (goal <= 1.6x)"
    )


if __name__ == "__main__":
    main()
