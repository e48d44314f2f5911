"""Load test against a real server (issue 7): N browser sessions press Start at once.

    python bench/load_test.py                  # 8 sessions, tiny runs; prints and writes bench/load.json
    python bench/load_test.py --sessions 12 --steps 200 --json /tmp/load.json

It starts `streamlit run app.py` with its own MMOE_HOME (MMOE_MAX_JOBS=1 unless set), opens N pages in one
headless chromium (at nice 19: those users' browsers would not run on the server), presses Start in each as
fast as it can, and measures: what every page shows just after (running, or waiting with its queue position),
the load time of one more page, in a browser of its own, while they train (navigation to a drawn, enabled
Start button, and when the server had sent its last message by then), the time until every run is done, and
the resident memory of the server and its workers before, at the peak and after. tests/test_load.py runs
the same functions with CI sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from bench/
    sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PROGRESS = re.compile(r"Waiting in the queue, position (\d+)|step [\d,]+ of [\d,]+")


# ---------------------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, env: dict[str, str] | None = None, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port with its own MMOE_HOME; returns (process, base url) once healthy."""
    port = free_port()
    log = open(Path(home) / f"server-{port}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "MMOE_HOME": str(home), **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise TimeoutError(f"{url} not healthy after {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the server, its warm worker and training workers)."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(line.split()[1]) for line in fh if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1024


class PeakRss:
    """Samples rss_mb(pid) on a thread until stopped; .peak is the largest seen."""

    def __init__(self, pid: int, every: float = 0.5):
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


# ---------------------------------------------------------------------------------------------- pages
def open_playground(page: Any, url: str, timeout_s: float = 90.0, timings: dict[str, float] | None = None) -> float:
    """Navigate and wait for an enabled Start button; returns the seconds it took. `timings`, when given, also
    gets `connected_s`, when the page's websocket opened (the browser has loaded the app's scripts), and
    `server_s`, when the last websocket message before Start was drawn arrived (so the server had answered);
    the rest is the browser drawing the page."""
    t0 = time.monotonic()
    frames: list[float] = []
    opened: list[float] = []

    def watch(ws: Any) -> None:
        opened.append(time.monotonic())
        ws.on("framereceived", lambda _: frames.append(time.monotonic()))

    page.on("websocket", watch)
    page.goto(url)
    button = page.locator(".st-key-start button")
    button.wait_for(timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while not button.is_enabled():
        if time.monotonic() > deadline:
            raise TimeoutError("Start never became enabled")
        time.sleep(0.05)
    done = time.monotonic()
    if timings is not None:
        timings["server_s"] = round(max([f for f in frames if f <= done], default=done) - t0, 2)
        timings["connected_s"] = round((opened[0] if opened else done) - t0, 2)
    return done - t0


def run_id_of(page: Any, timeout_s: float = 180.0) -> str:
    """The run a page watches: the Playground writes it into the address (?run=...)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = re.search(r"[?&]run=([0-9a-f]{12})", page.url)
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise TimeoutError("the page never showed a run id in its address")


def progress_line(page: Any, timeout_s: float = 180.0) -> str:
    """The text under the page's progress bar once it says running or waiting (or 'finished' if it ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        texts = page.locator("[data-testid='stProgress']").all_inner_texts()
        for text in texts:
            if PROGRESS.search(text):
                return PROGRESS.search(text).group(0)
        if page.locator("[data-testid='stAlertContentSuccess']").count():
            return "finished"
        time.sleep(0.1)
    return "nothing shown"


def exceptions_on(page: Any) -> int:
    return page.locator("[data-testid='stException']").count()


def wait_all_done(home: Path, run_ids: list[str], timeout_s: float) -> dict[str, str]:
    from mmoe_core.runs import FINISHED, RunStore

    store = RunStore(home)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = {r: store.run(r)["status"] for r in run_ids}
        if all(s in FINISHED for s in status.values()):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"runs not finished after {timeout_s:.0f} s: {status}")


def niced_chromium(home: Path, nice: int) -> str:
    """A chromium that starts at CPU priority `nice` (a wrapper script Playwright can launch)."""
    if nice <= 0:
        return CHROMIUM
    wrapper = Path(home) / "chromium-niced"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def load_test(sessions: int = 8, query: str = "?rows=500&eval_rows=100&steps=30&log_every=10&batch_size=64"
              "&models=mmoe", home: Path | None = None, finish_timeout_s: float = 600.0,
              others_nice: int = 19) -> dict[str, Any]:
    """The whole measurement; returns the figures (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    home = Path(home or tempfile.mkdtemp(prefix="mmoe_load_"))
    env = {"MMOE_MAX_JOBS": os.environ.get("MMOE_MAX_JOBS", "1")}
    proc, base = start_server(home, env)
    out: dict[str, Any] = {"sessions": sessions, "query": query, "max_jobs": int(env["MMOE_MAX_JOBS"]),
                           "others_nice": others_nice,
                           "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    try:
        with sync_playwright() as p:
            # The 8 users' browsers would run on their own machines, not on the server's 2 cores: here they
            # share one chromium at the lowest CPU priority, and the ninth user gets a browser of their own.
            browser = p.chromium.launch(executable_path=niced_chromium(home, others_nice), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1200, "height": 1000})
            ninth_browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ninth_context = ninth_browser.new_context(viewport={"width": 1200, "height": 1000})
            warm = ninth_context.new_page()  # the first visit imports torch into the server: not part of the baseline
            out["first_page_s"] = open_playground(warm, base + "/")
            warm.close()
            warm = context.new_page()  # and the sessions' browser has the app's scripts in its cache
            open_playground(warm, base + "/")
            warm.close()
            time.sleep(2.0)
            out["rss_start_mb"] = rss_mb(proc.pid)
            peak = PeakRss(proc.pid)

            pages = [context.new_page() for _ in range(sessions)]
            out["open_s"] = [round(open_playground(pg, base + "/" + query), 2) for pg in pages]
            t0 = time.monotonic()
            for pg in pages:  # as close to "at once" as one driver thread gets
                pg.locator(".st-key-start button").click(no_wait_after=True)
            from mmoe_core.runs import RunStore

            store = RunStore(home)
            deadline = time.monotonic() + 240
            while len(store.runs()) < sessions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(store.runs())} of {sessions} runs were created")
                time.sleep(0.25)
            out["all_submitted_s"] = round(time.monotonic() - t0, 1)
            run_ids = list(store.runs().sort_values("created")["id"])
            out["shown"] = [progress_line(pg) for pg in pages]

            ninth = ninth_context.new_page()
            ninth_timings: dict[str, float] = {}
            out["ninth_page_s"] = round(open_playground(ninth, base + "/" + query, timings=ninth_timings), 2)
            out["ninth_page_server_s"] = ninth_timings["server_s"]
            out["ninth_page_connected_s"] = ninth_timings["connected_s"]
            out["statuses_while_ninth_loaded"] = [store.run(r)["status"] for r in run_ids]

            status = wait_all_done(home, run_ids, finish_timeout_s)
            out["all_done_s"] = round(time.monotonic() - t0, 1)
            out["final_status"] = sorted(set(status.values()))
            out["exceptions_on_pages"] = sum(exceptions_on(pg) for pg in pages + [ninth])
            out["run_ids"] = run_ids
            for pg in pages + [ninth]:
                pg.close()
            for b in (context, ninth_context, browser, ninth_browser):
                b.close()
        time.sleep(3.0)  # workers have exited; let the server drop the closed sessions
        out["rss_peak_mb"] = round(peak.stop(), 1)
        out["rss_end_mb"] = round(rss_mb(proc.pid), 1)
        out["rss_start_mb"] = round(out["rss_start_mb"], 1)
        out["loadavg_end"] = os.getloadavg()[0]
    finally:
        stop_server(proc)
    out["home"] = str(home)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--json", default=str(ROOT / "bench" / "load.json"))
    parser.add_argument("--others-nice", type=int, default=19,
                        help="CPU priority of the browser that holds the N sessions (0: same as the ninth's)")
    args = parser.parse_args()
    query = f"?rows={args.rows}&eval_rows=100&steps={args.steps}&log_every=10&batch_size=64&models=mmoe"
    figures = load_test(args.sessions, query, others_nice=args.others_nice)
    print(json.dumps(figures, indent=2))
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
