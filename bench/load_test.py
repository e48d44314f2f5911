"""Load test against a real server (issue 7): N browser sessions press Start at once. From the repository root:

    python -m bench.load_test                   # 8 sessions, tiny runs; prints and writes bench/load.json
    python -m bench.load_test --sessions 12 --steps 200 --json /tmp/load.json

The measurement itself (what it does, what it reports) is tests/browser_kit.py's load_test(), which
tests/test_load.py runs with CI sizes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from tests.browser_kit import load_test

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--ninth-loads", type=int, default=5, help="how many times to load the ninth page")
    parser.add_argument("--json", default=str(ROOT / "bench" / "load.json"))
    parser.add_argument(
        "--others-nice", type=int, default=0, help="CPU priority (nice) of the browser that holds the N sessions"
    )
    parser.add_argument(
        "--ninth-nice",
        type=int,
        default=-10,
        help="CPU priority (nice) of the ninth user's browser (negative needs root)",
    )
    args = parser.parse_args()
    query = f"?rows={args.rows}&eval_rows=100&steps={args.steps}&log_every=10&batch_size=64&models=mmoe"
    figures = load_test(
        args.sessions, query, others_nice=args.others_nice, ninth_nice=args.ninth_nice, ninth_loads=args.ninth_loads
    )
    print(json.dumps(figures, indent=2))
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
