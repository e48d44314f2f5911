"""Server time to open the Runs page over a store of many runs (issue 14: 10,000 runs in under 2 s).

    python bench/runs_page.py --runs 10000

Fills a temporary MMOE_HOME with N finished runs, then times Streamlit AppTest script runs of /runs (the time
the server spends building the page; the browser's drawing is not included): the list, a page far back, a search
by id, and a link to the oldest run. Prints the median of --repeats warm runs of each and the old page's cost
(every run read and summarised: what RunStore.runs(limit=N) + runs_table did before paging) for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fill(store, n: int) -> None:
    from mmoe_core.config import RunConfig

    config = RunConfig(steps=10, models=("mmoe",)).to_json()
    now = time.time()
    with store._tx() as db:
        db.executemany(
            "INSERT INTO runs (id, kind, config, status, created, total_steps, owner, label, key_hash) "
            "VALUES (?, 'train', ?, 'done', ?, 10, '', '', '')",
            [(f"{(i * 2654435761) % 16**12:012x}", config, now - n + i) for i in range(n)],
        )


def timed(at, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, [e.message for e in at.exception]
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ["MMOE_HOME"] = tempfile.mkdtemp(prefix="mmoe_runs_page_")
    from streamlit.testing.v1 import AppTest

    from mmoe_core.runs import RunStore
    from mmoe_core.views import runs_table
    from ui.server import shutdown_queues

    store = RunStore()
    fill(store, args.runs)
    oldest = store.runs(limit=1, offset=args.runs - 1)["id"][0]
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/runs.py").run()  # cold: imports, queue start
        results = {"list (page 1)": timed(at, args.repeats)}
        at.number_input(key="runs_page").set_value(args.runs // 100).run()
        results["last page"] = timed(at, args.repeats)
        at.text_input(key="runs_search").set_value(oldest).run()
        results["search by id"] = timed(at, args.repeats)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.query_params.clear()
        at.query_params["run"] = oldest
        at.switch_page("pages/runs.py").run()
        assert at.subheader[0].value == f"Run {oldest}"
        results["link to the oldest run"] = timed(at, args.repeats)
        t0 = time.perf_counter()
        runs_table(store.runs(limit=args.runs))
        results["before: read + summarise every run"] = time.perf_counter() - t0
    finally:
        shutdown_queues()
    print(f"Runs page over {args.runs:,} stored runs, server time per script run (median of {args.repeats}):")
    for what, seconds in results.items():
        print(f"  {what:<38} {seconds:6.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
