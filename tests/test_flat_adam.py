"""Protects the fast start (issue #18 item 1): the trainer's Adam is torch's fused Adam bit for bit, and a
synthetic run imports neither torch._dynamo (torch.optim.Adam's constructor did, ~1 s) nor scikit-learn nor
pandas (the run store's and the studies' tables, ~0.3 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from mmoe_core.flat_adam import FlatAdam

ROOT = Path(__file__).resolve().parents[1]


def test_flat_adam_matches_torch_fused_adam_bit_for_bit():
    torch.manual_seed(0)
    start = torch.randn(4_000)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    reference = torch.optim.Adam([theirs], lr=3e-3, fused=True)
    adam = FlatAdam(ours, lr=3e-3)
    for _ in range(40):
        grad = torch.randn(4_000) * 10 ** torch.randint(-4, 2, (4_000,)).float()  # gradients over six decades
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        adam.step()
        reference.step()
    assert not torch.equal(ours.data, start)  # it moved
    assert torch.equal(ours.data, theirs.data)
    state = reference.state[theirs]
    assert torch.equal(adam.exp_avg_sq, state["exp_avg_sq"]) and adam.state_step.item() == state["step"].item() == 40


def test_flat_adam_skips_a_step_without_a_gradient():
    p = torch.nn.Parameter(torch.ones(3))
    adam = FlatAdam(p, lr=0.1)
    adam.step()
    assert torch.equal(p.data, torch.ones(3)) and adam.state_step.item() == 0


def test_a_synthetic_cli_run_imports_neither_dynamo_nor_sklearn_nor_pandas(tmp_path):
    code = (
        "import sys, json; from mmoe_core.cli import main;"
        f"rc = main(['train', '--steps', '2', '--rows', '500', '--eval-rows', '100', '--home', "
        f"{str(tmp_path / 'home')!r}, '--json', {str(tmp_path / 'out.json')!r}]);"
        "print(json.dumps({'rc': rc, 'loaded': [m for m in ('torch._dynamo', 'sklearn', 'pandas') if m in sys.modules]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"rc": 0, "loaded": []}, seen
    assert json.loads((tmp_path / "out.json").read_text())["models"]["mmoe"]["status"] == "done"


def test_each_rate_group_moves_as_an_adam_of_its_own():
    torch.manual_seed(1)
    start = torch.randn(1_000)
    ranges = {1e-3: [(0, 300), (600, 700)], 3e-2: [(300, 600), (700, 1_000)]}
    flat = torch.nn.Parameter(start.clone())
    adam = FlatAdam(flat, lr=1e-3, groups=list(ranges.items()))
    alone = {
        (lr, a, b): (p := torch.nn.Parameter(start[a:b].clone()), FlatAdam(p, lr=lr))
        for lr, rs in ranges.items()
        for a, b in rs
    }
    for _ in range(25):
        grad = torch.randn(1_000)
        flat.grad = grad.clone()
        adam.step()
        for (_, a, b), (p, opt) in alone.items():
            p.grad = grad[a:b].clone()
            opt.step()
    for (_, a, b), (p, _) in alone.items():
        assert torch.equal(flat.data[a:b], p.data), (a, b)
    assert not torch.equal(flat.data[:300] - start[:300], (flat.data[300:600] - start[300:600]))


def test_rate_groups_must_cover_the_tensor_once():
    p = torch.nn.Parameter(torch.zeros(10))
    for groups in ([(0.1, [(0, 5)])], [(0.1, [(0, 6)]), (0.2, [(5, 10)])]):
        try:
            FlatAdam(p, lr=0.1, groups=groups)
        except ValueError as exc:
            assert "cover the parameter exactly once" in str(exc)
        else:
            raise AssertionError(f"{groups} accepted")
