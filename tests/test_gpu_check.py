"""Keeps bench/gpu_check.py working where there is no GPU (issue #18 item 5): its device checks pass on the CPU
and its timings print, so the script a GPU machine runs is the one CI ran (the device tests included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_its_checks_and_timings_on_the_cpu():
    out = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith(("PASS", "FAIL"))] == [
        "PASS  device tests on cpu",
        "PASS  FlatAdam = torch fused Adam",
        "PASS  sweep replica = its single run",
        "PASS  cpu = cpu",
    ]
    assert sum(line.startswith("TIME") and "model-rows/s" in line for line in lines) == 2
