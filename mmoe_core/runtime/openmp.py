"""How torch's OpenMP threads wait between operations, chosen before torch loads (it reads the setting once).

Our steps are many small operations, so threads wait often. Spinning while waiting is fastest when the
cores are ours and ruinous when they are shared: with 2 threads on 2 cores under 3 other busy processes,
OpenMP's default spin made MMoE training 5x slower than sleeping, while on a quiet machine sleeping costs
40% (bench/README.md, "OpenMP wait policy"). A short spin (GOMP_SPINCOUNT=10000) keeps 95% of the quiet
speed and limits the damage under load; an already busy machine gets PASSIVE outright.
"""

from __future__ import annotations

import os

SHORT_SPIN = "10000"  # GNU OpenMP spins this many times, then sleeps


def choose_wait_policy(threads: int | None = None) -> str:
    """Set the policy in os.environ unless the user set one; returns what applies ('user', 'short-spin',
    'passive' or 'single-thread'). Call before importing torch."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "user"
    cores = os.cpu_count() or 1
    if threads == 1:
        return "single-thread"  # no team of threads, nothing waits
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if busy >= cores:  # the cores are already taken: spinning threads would steal time from each other
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return "passive"
    os.environ["GOMP_SPINCOUNT"] = SHORT_SPIN
    return "short-spin"
