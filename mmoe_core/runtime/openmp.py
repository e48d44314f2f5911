"""How torch's OpenMP threads wait between operations, chosen before torch loads (it reads the setting once).

Our steps are many small operations, so threads wait often. Spinning while waiting is fastest when the
cores are ours and ruinous when they are shared: with 2 threads on 2 cores under 3 other busy processes,
OpenMP's default spin made MMoE training 5x slower than sleeping, while on a quiet machine sleeping costs
40% (bench/README.md, "OpenMP wait policy"). A short spin (GOMP_SPINCOUNT=10000) keeps 95% of the quiet
speed and limits the damage under load; a machine whose cores are busy right now gets PASSIVE outright.

"Right now" is two reads of /proc/stat SAMPLE_S apart, not the 1-minute load average: that average stays
above the core count for a minute after any 2-thread job ends, so a user's second run (and every benchmark
run back to back) was handed the slow policy on an idle machine.
"""

from __future__ import annotations

import os
import time

SHORT_SPIN = "10000"  # GNU OpenMP spins this many times, then sleeps
SAMPLE_S = 0.05  # 5 scheduler ticks per core at Linux's 100 Hz: enough to tell busy from idle
BUSY_SHARE = 0.75  # other processes use this share of every core -> sleep instead of spin


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) ticks of all CPUs since boot from /proc/stat, or None where there is none (macOS, Windows)."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])  # guest time is already in user time


def busy_share() -> float:
    """The share of all cores that other processes keep busy now (0-1). This process sleeps while it samples,
    so it does not count itself. Without /proc/stat, the 1-minute load average per core stands in."""
    first = _cpu_times()
    if first is None:
        cores = os.cpu_count() or 1
        return min(os.getloadavg()[0] / cores, 1.0) if hasattr(os, "getloadavg") else 0.0
    time.sleep(SAMPLE_S)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return 0.0
    return (second[0] - first[0]) / (second[1] - first[1])


def choose_wait_policy(threads: int | None = None) -> str:
    """Set the policy in os.environ unless the user set one; returns what applies ('user', 'short-spin',
    'passive' or 'single-thread'). Call before importing torch."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "user"
    if threads == 1:
        return "single-thread"  # no team of threads, nothing waits
    if busy_share() >= BUSY_SHARE:  # the cores are taken: spinning threads would steal time from each other
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "passive"
    os.environ["GOMP_SPINCOUNT"] = SHORT_SPIN
    return "short-spin"
