"""GPU readiness (issue #18 item 5): on a machine with CUDA, run the device tests there and check that the device
paths compute what the CPU paths do, then time a one-run p-sweep and the paper-scale study there. Prints one line
per check and figure; exits 1 if a check fails. Runs on the CPU too (`--device cpu`), which is how CI keeps it
working. Needs pytest (`pip install -e ".[dev]"`) for the device tests.

    python -m bench.gpu_check                       # CUDA: checks, the Playground's default sweep, paper scale
    python -m bench.gpu_check --device cpu --quick  # the same code path, tiny sizes (tests/test_gpu_check.py)

Checks: tests/test_device.py passes with MMOE_TEST_DEVICE set to the device (every model kind, weighting, probe
and binary tasks there, against the CPU); FlatAdam equals torch's fused Adam bit for bit on the device; each replica of a batched p-sweep equals
its single run on the device (to float32 rounding: kernels may block a batched matmul differently, on the CPU
too at some shapes); the
device's test losses equal the CPU's for the same run (to rounding).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.flat_adam import FlatAdam
from mmoe_core.training import Trainer

TOL = 2e-4  # relative: float32 losses after training, kernels blocked differently
ROOT = Path(__file__).resolve().parents[1]


def check(name: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
    return ok


def device_tests(device: str) -> bool:
    """tests/test_device.py in a child pytest on `device`; its summary line is the detail."""
    env = {**os.environ, "MMOE_TEST_DEVICE": device}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_device.py"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = (out.stdout + out.stderr).strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    detail = lines[-1] if lines else "no output"
    return check(f"device tests on {device}", out.returncode == 0, "; ".join([*failed, detail])[:2000])


def adam_matches(device: str) -> bool:
    g = torch.Generator().manual_seed(0)
    start = torch.randn(10_000, generator=g).to(device)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    reference, adam = torch.optim.Adam([theirs], lr=3e-3, fused=True), FlatAdam(ours, lr=3e-3)
    for _ in range(40):
        grad = torch.randn(10_000, generator=g).to(device)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        adam.step()
        reference.step()
    return check("FlatAdam = torch fused Adam", torch.equal(ours.data, theirs.data), "40 steps, bit for bit")


def test_losses(config: RunConfig, device: str) -> dict[str, np.ndarray]:
    trainer = Trainer(config, load_data(config), device=device)
    trainer.run()
    return {name: r.test_loss for name, r in trainer.results.items()}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def sweep_replicas_match(device: str) -> bool:
    small = dict(rows=800, eval_rows=200, input_dim=20, steps=60, log_every=20, batch_size=64)
    sweep = RunConfig(**small, seeds=2, independent_data=True, sweep=(0.0, 1.0), device=device)
    batched = test_losses(sweep, device)
    worst = 0.0
    for r in range(sweep.replicas):
        j, s = divmod(r, sweep.seeds)
        single = RunConfig(**small, seed=s, data_seed=s, correlation=sweep.sweep[j], device=device)
        for name, losses in test_losses(single, device).items():
            worst = max(worst, relative(batched[name][r], losses[0]))
    return check(
        "sweep replica = its single run", worst <= TOL, f"largest relative gap {worst:.2e} (tolerance {TOL:g})"
    )


def device_matches_cpu(device: str) -> bool:
    config = RunConfig(rows=1_000, eval_rows=200, input_dim=20, steps=60, log_every=20, batch_size=64, seeds=3)
    on_device, on_cpu = test_losses(config, device), test_losses(config, "cpu")
    worst = max(relative(on_device[n], on_cpu[n]) for n in on_cpu)
    return check(f"{device} = cpu", worst <= TOL, f"largest relative gap in test loss {worst:.2e}")


def timed(label: str, config: RunConfig, device: str) -> None:
    data = load_data(config)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    Trainer(config, data, device=device).run()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    rows = config.replicas * len(config.models) * config.steps * config.batch_size
    peak = f", peak {torch.cuda.max_memory_allocated() / 1e9:.2f} GB on the device" if device.startswith("cuda") else ""
    print(f"TIME  {label}: {seconds:.1f} s, {rows / seconds:,.0f} model-rows/s{peak}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny timing runs: check the script, not the device")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run with --device cpu to exercise the script, or on a GPU machine")
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"torch {torch.__version__} on {name}", flush=True)
    ok = device_tests(args.device)
    ok &= adam_matches(args.device) & sweep_replicas_match(args.device) & device_matches_cpu(args.device)
    scale = dict(steps=20, rows=2_000, eval_rows=200, log_every=10) if args.quick else {}
    timed(
        "the Playground's default sweep (6 p x 4 seeds)",
        RunConfig(sweep=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), seeds=4, independent_data=True, **scale),
        args.device,
    )
    paper = dict(seeds=200, independent_data=True, rows=20_000, sweep=(0.5, 0.9, 1.0), log_every=50)
    paper |= dict(scale, seeds=8) if args.quick else {}
    timed(f"paper scale (3 p x {paper['seeds']} seeds, one batched run)", RunConfig(**paper), args.device)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
