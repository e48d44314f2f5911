"""The harness for tests against a real server: start and stop `streamlit run app.py`, drive Debian's chromium,
and the load test of issue 7 (N browser sessions press Start at once). tests/conftest.py and tests/test_load.py
use it with CI sizes; `python -m bench.load_test` runs the full-size measurement.

load_test() starts `streamlit run app.py` with its own MMOE_HOME (MMOE_MAX_JOBS=1 unless set), opens N pages in one
headless chromium (at the lowest CPU priority, nice 19 for it and its session: those users' browsers would
not run on the server), presses Start in each as fast as it can, and measures: what every page shows just after
(running, or waiting with its queue position), the load time of one more page, in a browser of its own, while
they train (navigation to a drawn, enabled Start button, and when the server had sent its last message by then;
5 loads, median and worst), the time until every run is done, and
the resident memory of the server and its workers before, at the peak and after. tests/test_load.py runs
the same function with CI sizes.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env={**os.environ, "MMOE_HOME": str(home), **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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
# Timestamps taken inside the page (performance.now(): ms since its navigation started), so the figures are
# what the browser saw, not when Playwright's driver, itself competing for the same CPUs, got round to them.
_WATCH_SOCKETS = """(() => {
  const seen = window.__mmoeSocket = {opened: null, frames: []};
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener("open", () => { seen.opened = seen.opened ?? performance.now(); });
    ws.addEventListener("message", () => seen.frames.push(performance.now()));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
})()"""
_START_ENABLED = """() => {
  const b = document.querySelector(".st-key-start button");
  return b && !b.disabled ? performance.now() : false;
}"""


def open_playground(page: Any, url: str, timeout_s: float = 90.0, timings: dict[str, float] | None = None) -> float:
    """Navigate and wait for an enabled Start button; returns the seconds it took, by the page's own clock.
    `timings`, when given, also gets `connected_s`, when the page's websocket opened (the browser has loaded
    the app's scripts), and `server_s`, when the last websocket message before Start was drawn arrived (so the
    server had answered); the rest is the browser drawing the page."""
    page.add_init_script(_WATCH_SOCKETS)
    page.goto(url)
    drawn_ms = page.wait_for_function(_START_ENABLED, polling=10, timeout=timeout_s * 1000).json_value()
    if timings is not None:
        seen = page.evaluate("window.__mmoeSocket")
        timings["server_s"] = round(max([f for f in seen["frames"] if f <= drawn_ms], default=drawn_ms) / 1000, 2)
        timings["connected_s"] = round((seen["opened"] or drawn_ms) / 1000, 2)
    return drawn_ms / 1000


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


def niced_chromium(home: Path, name: str, nice: int) -> str:
    """A chromium that runs at CPU priority `nice` (a wrapper script Playwright can launch). The priority it
    really got is written to `<home>/<name>.priority` (see `priority_of`)."""
    wrapper = Path(home) / name
    # Playwright starts each browser in a session of its own, and with the kernel's autogroup scheduling
    # (/proc/sys/kernel/sched_autogroup_enabled) a nice value only ranks a process inside its session: the
    # session as a whole takes an equal share of the CPU against the server's. So the wrapper sets its
    # session's priority too (/proc/self/autogroup, sched(7)). A negative nice needs root; without it the
    # browser stays at 0, and the figures say so.
    wrapper.write_text(f"""#!/bin/sh
echo {int(nice)} > /proc/self/autogroup 2>/dev/null
renice -n {int(nice)} -p $$ >/dev/null 2>&1
echo "nice $(cut -d' ' -f19 /proc/self/stat) $(cat /proc/self/autogroup 2>/dev/null)" > "{wrapper}.priority"
exec {CHROMIUM} "$@"
""")
    wrapper.chmod(0o755)
    return str(wrapper)


def priority_of(wrapper: str) -> str:
    try:
        return Path(wrapper + ".priority").read_text().strip()
    except OSError:
        return "unknown"


def load_test(
    sessions: int = 8,
    query: str = "?rows=500&eval_rows=100&steps=30&log_every=10&batch_size=64&models=mmoe",
    home: Path | None = None,
    finish_timeout_s: float = 600.0,
    others_nice: int = 0,
    ninth_nice: int = -10,
    ninth_loads: int = 5,
) -> dict[str, Any]:
    """The whole measurement; returns the figures (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    home = Path(home or tempfile.mkdtemp(prefix="mmoe_load_"))
    env = {"MMOE_MAX_JOBS": os.environ.get("MMOE_MAX_JOBS", "1")}
    proc, base = start_server(home, env)
    out: dict[str, Any] = {
        "sessions": sessions,
        "query": query,
        "max_jobs": int(env["MMOE_MAX_JOBS"]),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg()[0],
    }
    try:
        with sync_playwright() as p:
            # On a real server each user's browser runs on their own machine. Here they share its two cores:
            # the 8 sessions' browser at `others_nice` (0, the default: it competes with the server as an equal,
            # which is harder on the server than reality and keeps their live refreshes at full pace), and the
            # ninth user's browser, whose load time is measured, at `ninth_nice` (-10: it stands for a machine
            # of its own, so its page is not slowed by training it would never share a CPU with).
            sessions_exe, ninth_exe = (
                niced_chromium(home, "chromium-sessions", others_nice),
                niced_chromium(home, "chromium-ninth", ninth_nice),
            )
            browser = p.chromium.launch(executable_path=sessions_exe, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1200, "height": 1000})
            ninth_browser = p.chromium.launch(executable_path=ninth_exe, args=CHROMIUM_ARGS)
            ninth_context = ninth_browser.new_context(viewport={"width": 1200, "height": 1000})
            out["sessions_browser_priority"] = priority_of(sessions_exe)
            out["ninth_browser_priority"] = priority_of(ninth_exe)
            warm = ninth_context.new_page()  # the first visit imports torch into the server: not part of the baseline
            out["first_page_s"] = open_playground(warm, base + "/")
            warm.close()
            warm = context.new_page()  # and the sessions' browser has the app's scripts in its cache
            open_playground(warm, base + "/")
            warm.close()
            time.sleep(2.0)
            out["rss_start_mb"] = rss_mb(proc.pid)
            peak = PeakRss(proc.pid)

            # eight users: eight browsers (contexts: own cookies), since the queue's quota counts a browser's tabs
            # together (MMOE_MAX_QUEUED_PER_SESSION); all from 127.0.0.1, under MMOE_MAX_QUEUED_PER_ADDRESS
            users = [browser.new_context(viewport={"width": 1200, "height": 1000}) for _ in range(sessions)]
            pages = [user.new_page() for user in users]
            sent: list[float] = []  # when the sessions' pages sent the server a message (mostly fragment reruns)
            for pg in pages:
                pg.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(time.monotonic())))
            out["open_s"] = [round(open_playground(pg, base + "/" + query), 2) for pg in pages]
            t0 = time.monotonic()
            for pg in pages:  # as close to "at once" as one driver thread gets
                pg.locator(".st-key-start button").click(no_wait_after=True)
            from mmoe_core.runs import FINISHED, RunStore

            store = RunStore(home)
            deadline = time.monotonic() + 240
            while len(store.runs()) < sessions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(store.runs())} of {sessions} runs were created")
                time.sleep(0.25)
            out["all_submitted_s"] = round(time.monotonic() - t0, 1)
            run_ids = list(store.runs().sort_values("created")["id"])
            out["shown"] = [progress_line(pg) for pg in pages]

            # One load is one sample of a noisy figure: load the ninth page several times while the runs train
            # (each in a fresh tab of the ninth user's browser) and report the median and the worst.
            loads: list[dict[str, Any]] = []
            window = time.monotonic()
            for i in range(ninth_loads):
                ninth = ninth_context.new_page()
                timings: dict[str, float] = {}
                timings["drawn_s"] = round(open_playground(ninth, base + "/" + query, timings=timings), 2)
                timings["unfinished_runs"] = sum(store.run(r)["status"] not in FINISHED for r in run_ids)
                loads.append(timings)
                if i < ninth_loads - 1:
                    ninth.close()
            out["ninth_pages"] = loads
            for name, field in (
                ("ninth_page_s", "drawn_s"),
                ("ninth_page_server_s", "server_s"),
                ("ninth_page_connected_s", "connected_s"),
            ):
                out[name] = round(statistics.median(t[field] for t in loads), 2)
            out["ninth_page_max_s"] = max(t["drawn_s"] for t in loads)
            # the load the sessions kept up meanwhile: a browser starved of CPU would send fewer reruns
            window = (window, time.monotonic())
            out["sessions_messages_per_s"] = round(
                sum(window[0] <= t <= window[1] for t in sent) / (window[1] - window[0]), 1
            )
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
