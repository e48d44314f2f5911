"""Does watching a run live cost training speed, and how soon does the first point appear?

    python -m bench.bench_live                 # rows/s at the defaults, then time to the first point
    python -m bench.bench_live --steps 600 --repeat 3

1. rows/s: the same config trained by the CLI (`python -m mmoe_core train`) and from the Playground in a live
   headless-chromium page that redraws every second; both read the worker's own rows/s from the run store
   (training steps x batch / training seconds, data loading excluded), so they are measured the same way.
   The CLI runs with the app's worker thread count (OMP_NUM_THREADS), so the ratio is the cost of watching;
   it also runs with torch's default threads, for reference. Aim: browser >= 90% of the CLI.
2. Start -> first plotted point, at the default config: the time from clicking Start to the loss chart having a
   point in the browser's DOM (includes claiming the warm worker, generating the data, the step-0 evaluation
   and one page refresh). Aim: < 3 s.

Each part uses its own temporary MMOE_HOME and server. Needs Debian's chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from tests.browser_kit import CHROMIUM, CHROMIUM_ARGS, niced_chromium, start_server, stop_server
from ui.server import worker_threads  # the app's torch threads per worker

ROOT = Path(__file__).resolve().parents[1]

LOSS_POINTS_JS = """() => Math.max(0, ...Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(p => ((((p.layout || {}).yaxis || {}).title || {}).text || '') === 'loss')
    .flatMap(p => (p.data || []).filter(t => t.type === 'scatter' && !t.fill)
    .map(t => (t.x || []).filter(v => v !== null).length)))"""


@contextlib.contextmanager
def app_server(home: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port with its own run store; yields its url."""
    proc, url = start_server(home)
    try:
        yield url
    finally:
        stop_server(proc)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def training_sample(home: str, config: RunConfig) -> dict:
    """While the run trains (10% to 90% of its steps): its wall rows/s and rows per CPU-second of the process
    that trains it. The second barely depends on what else the machine runs, so it shows the cost of being
    watched even on a busy machine."""
    store = RunStore(home)
    lo, hi = config.steps // 10, config.steps * 9 // 10
    marks = []
    while len(marks) < 2:
        runs = store.runs()
        row = store.run(runs.iloc[0]["id"]) if len(runs) else None
        if row and row["pid"] and row["status"] == "running" and row["step"] >= (lo if not marks else hi):
            marks.append((time.perf_counter(), row["step"], _cpu_s(int(row["pid"]))))
        elif row and row["status"] not in ("queued", "running"):
            raise RuntimeError(f"the run ended early: {row['status']} {row['error']}")
        time.sleep(0.05)
    (t0, s0, c0), (t1, s1, c1) = marks
    rows = (s1 - s0) * config.batch_size
    return {"rows_per_s": rows / (t1 - t0), "rows_per_cpu_s": rows / max(c1 - c0, 1e-9)}


def cli_sample(config: RunConfig, threads: int | None) -> dict:
    """The CLI in a fresh process; threads=None keeps torch's default (one per CPU)."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    with tempfile.TemporaryDirectory() as home:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in config.to_query().items()]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmoe_core", "train", "--quiet", "--home", home, *flags],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        sample = training_sample(home, config)
        proc.wait()
        return sample


def open_and_start(page, url: str, config: RunConfig) -> float:
    query = "&".join(f"{k}={v}" for k, v in config.to_query().items())
    page.goto(f"{url}/?{query}")
    start = page.locator(".st-key-start button")
    start.wait_for(timeout=90_000)
    while not start.is_enabled():
        time.sleep(0.1)
    time.sleep(10.0)  # the warm worker imports torch and warms up while a user reads the page
    t0 = time.time()
    start.click()
    return t0


def launch(p, nice: int):
    """Chromium, optionally at a lower CPU priority: it stands in for a user's own machine, which in real use
    does not share the server's cores."""
    path = niced_chromium(Path(tempfile.mkdtemp()), "chromium-live", nice) if nice else CHROMIUM
    return p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def browser_sample(browser, config: RunConfig) -> dict:
    with tempfile.TemporaryDirectory() as home, app_server(Path(home)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        open_and_start(page, url, config)
        sample = training_sample(home, config)  # the page redraws every second meanwhile
        page.get_by_text("Results on the test set").wait_for(timeout=3_600_000)
        page.close()
        return sample


def first_point_s(browser) -> float:
    with tempfile.TemporaryDirectory() as home, app_server(Path(home)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        t0 = open_and_start(page, url, RunConfig())
        while page.evaluate(LOSS_POINTS_JS) < 1:
            assert time.time() - t0 < 120, "no point after 120 s"
            time.sleep(0.02)
        elapsed = time.time() - t0
        store = RunStore(home)
        row = store.run(store.runs().iloc[0]["id"])
        print(
            f"    click -> run stored {row['created'] - t0:.2f} s, -> claimed by a worker "
            f"{row['started'] - t0:.2f} s, -> point drawn {elapsed:.2f} s",
            flush=True,
        )
        page.locator(".st-key-stop button").click()
        page.get_by_text("Stopped at step").wait_for(timeout=30_000)
        page.close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=RunConfig().steps, help="steps of the rows/s comparison (the defaults otherwise)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="alternating CLI/browser pairs; medians reported")
    parser.add_argument(
        "--default-threads",
        action="store_true",
        help="also time the CLI with torch's default thread count (slow on a busy machine)",
    )
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=0,
        help="run chromium at this nice level (e.g. 19) to mimic a browser on another machine",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    config = RunConfig(steps=args.steps)
    threads = worker_threads()
    print(
        f"config: defaults with steps={args.steps} ({config.steps * config.batch_size:,} rows per model); "
        f"{os.cpu_count()} CPUs; the app's workers use {threads} torch thread(s); chromium at nice "
        f"{args.browser_nice}",
        flush=True,
    )
    cli, cli_default, live, first = [], [], [], []
    with sync_playwright() as p:
        browser = launch(p, args.browser_nice)
        for i in range(args.repeat):
            cli.append(cli_sample(config, threads))
            live.append(browser_sample(browser, config))
            print(
                f"  round {i + 1}: CLI {cli[-1]['rows_per_s']:,.0f} rows/s ({cli[-1]['rows_per_cpu_s']:,.0f} per "
                f"CPU-s), live browser {live[-1]['rows_per_s']:,.0f} rows/s ({live[-1]['rows_per_cpu_s']:,.0f} "
                "per CPU-s)",
                flush=True,
            )
            if args.default_threads:
                cli_default.append(cli_sample(config, None))
                print(f"  CLI with torch's default threads: {cli_default[-1]['rows_per_s']:,.0f} rows/s", flush=True)
        for _ in range(args.repeat):
            first.append(first_point_s(browser))
            print(f"  Start -> first point at the defaults: {first[-1]:.2f} s", flush=True)
        browser.close()

    def med(samples: list[dict], key: str = "rows_per_s") -> float:
        return statistics.median(s[key] for s in samples)

    print(
        f"rows/s watched live in the browser: {med(live):,.0f} vs the CLI at the same threads {med(cli):,.0f} "
        f"= {med(live) / med(cli):.0%} (aim >= 90%)"
    )
    print(
        f"rows per CPU-second of the training process: live {med(live, 'rows_per_cpu_s'):,.0f} vs CLI "
        f"{med(cli, 'rows_per_cpu_s'):,.0f} = {med(live, 'rows_per_cpu_s') / med(cli, 'rows_per_cpu_s'):.0%}"
    )
    if cli_default:
        print(f"  vs the CLI at torch's default threads {med(cli_default):,.0f} = {med(live) / med(cli_default):.0%}")
    print(f"Start -> first plotted point at the defaults: {statistics.median(first):.2f} s (aim < 3 s)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
