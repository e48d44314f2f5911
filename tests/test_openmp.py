"""The OpenMP wait policy is chosen from how busy the cores are now, and a user's own setting always wins."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from mmoe_core.runtime import openmp


@pytest.fixture
def env(monkeypatch):
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(openmp, "SAMPLE_S", 0.0)
    return monkeypatch


def _ticks(env, *reads):
    """/proc/stat as a sequence of (busy, total) reads."""
    it = iter(reads)
    env.setattr(openmp, "_cpu_times", lambda: next(it))


def test_a_quiet_machine_gets_a_short_spin_even_after_a_busy_minute(env):
    env.setattr(os, "getloadavg", lambda: (4.0, 3.0, 2.0))  # the last minute was busy; now it is not
    _ticks(env, (1_000, 10_000), (1_005, 10_020))  # 5 of 20 ticks busy
    assert openmp.choose_wait_policy() == "short-spin"
    assert os.environ["GOMP_SPINCOUNT"] == openmp.SHORT_SPIN and "OMP_WAIT_POLICY" not in os.environ


def test_a_busy_machine_gets_sleeping_threads(env):
    _ticks(env, (1_000, 10_000), (1_019, 10_020))  # 19 of 20 ticks busy
    assert openmp.choose_wait_policy() == "passive"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_without_proc_stat_the_load_average_decides(env):
    env.setattr(openmp, "_cpu_times", lambda: None)
    env.setattr(os, "getloadavg", lambda: (4.0, 3.0, 2.0))
    assert openmp.busy_share() == 1.0
    env.setattr(os, "getloadavg", lambda: (1.0, 3.0, 2.0))
    assert openmp.busy_share() == 0.25


def test_one_thread_and_the_users_setting_are_left_alone(env):
    _ticks(env, (0, 100), (100, 200))
    assert openmp.choose_wait_policy(threads=1) == "single-thread"
    assert "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert openmp.choose_wait_policy() == "user" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc/stat")
def test_the_real_sample_sees_busy_cores():
    cores = os.cpu_count() or 1
    spin = "import time\nt = time.time()\nwhile time.time() - t < 3: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(cores)]
    try:
        time.sleep(0.3)
        busy = max(openmp.busy_share() for _ in range(3))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    time.sleep(0.2)
    quiet = min(openmp.busy_share() for _ in range(3))
    assert busy >= openmp.BUSY_SHARE > quiet, (busy, quiet)
