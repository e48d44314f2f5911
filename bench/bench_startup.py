"""Start-up as a user of the CLI waits for it (issue #18 item 1): a one-step `train` as a whole process against
a bare `python -c "import torch"`, alternated round by round so both share the machine's load at that moment.

    python -m bench.bench_startup            # 7 rounds; prints each round and the median ratio
    python -m bench.bench_startup --rounds 11 --rows 1000000
    git worktree add /tmp/before <commit>    # then, alternated with this checkout's:
    python -m bench.bench_startup --baseline /tmp/before

--baseline runs the same one-step train from another checkout (its own mmoe_core, this Python environment) in
the same rounds, for a before/after ratio taken side by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from .bench_process import ROOT, timed  # one way to time a whole process, for both benchmarks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2_000, help="training rows of the one-step run")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time alongside")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        train = [sys.executable, "-m", "mmoe_core", "train", "--steps", "1", "--rows", str(args.rows)]
        train += ["--eval-rows", "500", "--no-store", "--json", str(Path(tmp) / "out.json")]
        runs = {"import torch": ([sys.executable, "-c", "import torch"], ROOT), "one-step train": (train, ROOT)}
        if args.baseline:
            runs["baseline train"] = (train, args.baseline.resolve())
        for cmd, cwd in runs.values():  # warm the file cache: the first process of a session reads from disk
            timed(cmd, cwd)
        took: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for i in range(args.rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                took[name].append(timed(*runs[name]))
            print(f"round {i + 1}: " + ", ".join(f"{n} {took[n][-1]:.2f} s" for n in names))

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(took[a], took[b]))

    print(", ".join(f"median {n} {statistics.median(took[n]):.2f} s" for n in names))
    print(f"one-step train / import torch: {ratio('one-step train', 'import torch'):.2f}x (goal <= 1.6x)")
    if args.baseline:
        print(f"baseline train / import torch: {ratio('baseline train', 'import torch'):.2f}x")
        print(f"baseline train / one-step train: {ratio('baseline train', 'one-step train'):.2f}x")


if __name__ == "__main__":
    main()
