"""Does watching a run live cost training speed, and how soon does the first point appear?

    python bench/bench_live.py                 # rows/s at the defaults, then time to the first point
    python bench/bench_live.py --steps 600 --repeat 3

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
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmoe_core.config import RunConfig  # noqa: E402
from mmoe_core.runs import RunStore  # noqa: E402
from ui_common import worker_threads  # noqa: E402  (the app's torch threads per worker)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOSS_POINTS_JS = """() => Math.max(0, ...Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(p => ((((p.layout || {}).yaxis || {}).title || {}).text || '') === 'loss')
    .flatMap(p => (p.data || []).filter(t => t.type === 'scatter' && !t.fill)
    .map(t => (t.x || []).filter(v => v !== null).length)))"""


class Server:
    """`streamlit run app.py` on a free port with its own run store."""

    def __init__(self, home: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1"],
            cwd=ROOT, env={**os.environ, "MMOE_HOME": str(home)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("streamlit did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def cli_rows_per_s(config: RunConfig, threads: int | None) -> float:
    """The CLI in a fresh process; threads=None keeps torch's default (one per CPU)."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    with tempfile.TemporaryDirectory() as home:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in config.to_query().items()]
        subprocess.run([sys.executable, "-m", "mmoe_core", "train", "--quiet", "--home", home, *flags],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=env)
        store = RunStore(home)
        return float(store.runs().iloc[0]["rows_per_s"])


def open_and_start(page, server: Server, config: RunConfig) -> float:
    query = "&".join(f"{k}={v}" for k, v in config.to_query().items())
    page.goto(f"{server.url}/?{query}")
    start = page.locator(".st-key-start button")
    start.wait_for(timeout=90_000)
    while not start.is_enabled():
        time.sleep(0.1)
    time.sleep(10.0)  # the warm worker imports torch and warms up while a user reads the page
    t0 = time.perf_counter()
    start.click()
    return t0


def launch(p, nice: int):
    """Chromium, optionally at a lower CPU priority: it stands in for a user's own machine, which in real use
    does not share the server's cores."""
    path = CHROMIUM
    if nice:
        wrapper = Path(tempfile.mkdtemp()) / "chromium-nice"
        wrapper.write_text(f'#!/bin/sh\nexec nice -n {nice} {CHROMIUM} "$@"\n')
        wrapper.chmod(0o755)
        path = str(wrapper)
    return p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def browser_rows_per_s(browser, config: RunConfig) -> float:
    with tempfile.TemporaryDirectory() as home:
        server = Server(Path(home))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            open_and_start(page, server, config)
            page.get_by_text("Results on the test set").wait_for(timeout=3_600_000)  # watched live until done
            page.close()
            return float(RunStore(home).runs().iloc[0]["rows_per_s"])
        finally:
            server.close()


def first_point_s(browser) -> float:
    with tempfile.TemporaryDirectory() as home:
        server = Server(Path(home))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            t0 = open_and_start(page, server, RunConfig())
            while page.evaluate(LOSS_POINTS_JS) < 1:
                assert time.perf_counter() - t0 < 120, "no point after 120 s"
                time.sleep(0.02)
            elapsed = time.perf_counter() - t0
            page.locator(".st-key-stop button").click()
            page.get_by_text("Stopped at step").wait_for(timeout=30_000)
            page.close()
            return elapsed
        finally:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=RunConfig().steps,
                        help="steps of the rows/s comparison (the defaults otherwise)")
    parser.add_argument("--repeat", type=int, default=1, help="alternating CLI/browser pairs; medians reported")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="run chromium at this nice level (e.g. 19) to mimic a browser on another machine")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    config = RunConfig(steps=args.steps)
    threads = worker_threads()
    print(f"config: defaults with steps={args.steps} ({config.steps * config.batch_size:,} rows per model); "
          f"{os.cpu_count()} CPUs; the app's workers use {threads} torch thread(s); chromium at nice "
          f"{args.browser_nice}", flush=True)
    cli, cli_default, live, first = [], [], [], []
    with sync_playwright() as p:
        browser = launch(p, args.browser_nice)
        for i in range(args.repeat):
            cli.append(cli_rows_per_s(config, threads))
            live.append(browser_rows_per_s(browser, config))
            cli_default.append(cli_rows_per_s(config, None))
            print(f"  round {i + 1}: CLI {cli[-1]:,.0f} rows/s ({threads} thread(s)), live browser {live[-1]:,.0f}"
                  f" rows/s, CLI with torch's default threads {cli_default[-1]:,.0f} rows/s", flush=True)
        for i in range(args.repeat):
            first.append(first_point_s(browser))
            print(f"  Start -> first point at the defaults: {first[-1]:.2f} s", flush=True)
        browser.close()
    med = statistics.median
    print(f"rows/s watched live in the browser: {med(live):,.0f} vs the CLI at the same threads {med(cli):,.0f} "
          f"= {med(live) / med(cli):.0%} (aim >= 90%); vs the CLI at torch's default threads "
          f"{med(cli_default):,.0f} = {med(live) / med(cli_default):.0%}")
    print(f"Start -> first plotted point at the defaults: {med(first):.2f} s (aim < 3 s)")


if __name__ == "__main__":
    main()
