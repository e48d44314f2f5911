"""The OpenMP wait policy is chosen from the machine's load, and a user's own setting always wins."""

from __future__ import annotations

import os

import pytest

from mmoe_core.runtime import openmp


@pytest.fixture
def env(monkeypatch):
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    return monkeypatch


def test_a_quiet_machine_gets_a_short_spin(env):
    env.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert openmp.choose_wait_policy() == "short-spin"
    assert os.environ["GOMP_SPINCOUNT"] == openmp.SHORT_SPIN and "OMP_WAIT_POLICY" not in os.environ


def test_a_busy_machine_gets_sleeping_threads(env):
    env.setattr(os, "getloadavg", lambda: (4.0, 3.0, 2.0))
    assert openmp.choose_wait_policy() == "passive"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_one_thread_and_the_users_setting_are_left_alone(env):
    env.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert openmp.choose_wait_policy(threads=1) == "single-thread"
    assert "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ
    env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert openmp.choose_wait_policy() == "user" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
