"""Gradient agreement (mmoe_core.gradients) and loss weighting (mmoe_core.weighting): each method per replica
equals a single run, and equals a plain one-replica reference written with textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.gradients import grad_agreement, per_replica_cosine, shared_parameters, task_pairs
from mmoe_core.models import build_model
from mmoe_core.summary import summarize
from mmoe_core.training import Trainer
from mmoe_core.weighting import GRADNORM_ALPHA, WEIGHTINGS, make_weighting

TINY = dict(rows=600, eval_rows=200, steps=40, log_every=20, batch_size=64)


def _losses(model, x, y):
    return (model(x).preds - y).pow(2).mean(dim=1)  # (r, k)


# ---------------------------------------------------------------- agreement
@pytest.mark.parametrize("kind", ["shared_bottom", "mmoe", "omoe"])
def test_agreement_is_one_for_identical_tasks_and_towers(kind):
    model = build_model(kind, RunConfig(input_dim=12), input_dim=12, n_tasks=2, replicas=2)
    with torch.no_grad():  # task 2's tower (and gate) a copy of task 1's
        for w in (*model.tower_w, *model.tower_b):
            w[:, 1] = w[:, 0]
        if model.spec.n_gates == 2:
            e = model.spec.n_experts
            model.gate_w[:, :, e:] = model.gate_w[:, :, :e]
    x = torch.randn(2, 64, 12)
    y = torch.randn(2, 64, 1).expand(2, 64, 2)  # the same labels for both tasks
    cos = grad_agreement(model, _losses(model, x, y))
    torch.testing.assert_close(next(iter(cos.values())), torch.ones(2, 1), atol=1e-5, rtol=0)


def test_agreement_is_symmetric_and_per_replica():
    a, b = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    torch.testing.assert_close(per_replica_cosine(a, b), per_replica_cosine(b, a))
    b[1] = -a[1]  # replica 1 in full conflict; the others untouched
    cos = per_replica_cosine(a, b)
    assert cos[1].item() == pytest.approx(-1.0, abs=1e-6) and cos[0].abs() < 1
    assert task_pairs(3) == [(0, 1), (0, 2), (1, 2)]


def test_agreement_is_recorded_and_in_the_json():
    config = RunConfig(**{**TINY, "seeds": 2})
    records = []
    results = Trainer(config, load_data(config)).run(on_record=records.append)
    rows = [m for r in records for m in r.metrics if m[5] == "grad_agreement"]
    assert {m[0] for m in rows} == set(config.models) and {m[2] for m in rows} == {0, 1}
    assert all(-1 <= m[6] <= 1 for m in rows)
    entry = summarize(results.values())["mmoe"]
    assert len(entry["grad_agreement"]) == 1 and len(entry["per_seed"][1]["grad_agreement"]) == 1


def test_ple_agreement_is_measured_per_level():
    config = RunConfig(**{**TINY, "models": ("ple",), "levels": 2})
    records = []
    Trainer(config, load_data(config)).run(on_record=records.append)
    metrics = {m[5] for r in records for m in r.metrics if m[4] == "probe"}
    assert {"grad_agreement", "grad_agreement_level2"} <= metrics


# ---------------------------------------------------------------- weighting: batched = single runs
@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_each_weighting_keeps_replicas_independent(weighting):
    base = RunConfig(**{**TINY, "models": ("shared_bottom", "mmoe"), "weighting": weighting, "n_tasks": 3})
    batched = Trainer(base.with_(seeds=3), load_data(base))
    single = Trainer(base.with_(seed=2), load_data(base))
    batched.run(), single.run()
    for name in base.models:
        for (pname, a), b in zip(batched.models[name].named_parameters(), single.models[name].parameters()):
            torch.testing.assert_close(a[2], b[0], rtol=1e-4, atol=1e-5, msg=f"{name}.{pname}")


def test_unknown_weighting_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="weighting='magic' is unknown; choose one of equal, uncertainty"):
        RunConfig(weighting="magic")


# ---------------------------------------------------------------- weighting: plain one-replica references
def _one_step_grads(weighting: str, model, x, y):
    """The flat trainer's gradient after one backward of `weighting`, per parameter of the model."""
    method = make_weighting(weighting, {"m": model}, 2, seed=0)
    for p in [*model.parameters(), *method.parameters()]:
        p.grad = torch.zeros_like(p)
    method.backward({"m": _losses(model, x, y)}, None)
    return method, [p.grad.clone() for p in model.parameters()]


def _plain_task_grads(model, x, y):
    params = list(model.parameters())
    losses = _losses(model, x, y)[0]
    return params, losses, [torch.autograd.grad(losses[k], params, retain_graph=True) for k in range(2)]


def _setup(kind="mmoe"):
    torch.manual_seed(1)
    model = build_model(kind, RunConfig(input_dim=10), input_dim=10, n_tasks=2, replicas=1)
    return model, torch.randn(1, 32, 10), torch.randn(1, 32, 2)


def test_pcgrad_equals_the_textbook_projection():
    model, x, y = _setup()
    _, got = _one_step_grads("pcgrad", model, x, y)
    params, _, (g1, g2) = _plain_task_grads(model, x, y)
    shared = {id(p) for p in shared_parameters(model)}
    v1 = torch.cat([g.flatten() for g, p in zip(g1, params) if id(p) in shared])
    v2 = torch.cat([g.flatten() for g, p in zip(g2, params) if id(p) in shared])
    dot = torch.dot(v1, v2)
    assert dot < 0, "this draw must conflict for the test to mean anything"
    p1, p2 = v1 - dot / v2.dot(v2) * v2, v2 - dot / v1.dot(v1) * v1
    expect_shared = p1 + p2
    got_shared = torch.cat([g.flatten() for g, p in zip(got, params) if id(p) in shared])
    torch.testing.assert_close(got_shared, expect_shared, rtol=1e-5, atol=1e-7)
    for g, a, b, p in zip(got, g1, g2, params):  # towers and gates: the plain sum
        if id(p) not in shared:
            torch.testing.assert_close(g, a + b, rtol=1e-5, atol=1e-7)


def test_uncertainty_equals_kendalls_formula():
    model, x, y = _setup("shared_bottom")
    method, got = _one_step_grads("uncertainty", model, x, y)
    s = torch.tensor([-0.5, -0.5])
    params, losses, _ = _plain_task_grads(model, x, y)
    plain = torch.autograd.grad((losses / (2 * s.exp()) + s / 2).sum(), params)
    for g, e in zip(got, plain):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-7)
    ds = method.log_var["m"].grad[0]  # d/ds (L e^-s / 2 + s / 2) = -L e^-s / 2 + 1/2
    torch.testing.assert_close(ds, -losses.detach() * torch.exp(-s) / 2 + 0.5, rtol=1e-5, atol=1e-7)


def test_gradnorm_weight_gradient_follows_the_paper():
    model, x, y = _setup()
    method, got = _one_step_grads("gradnorm", model, x, y)
    params, losses, (g1, g2) = _plain_task_grads(model, x, y)
    last = {id(p) for p in method._last_layer("m")}
    norms = torch.stack(
        [torch.cat([g.flatten() for g, p in zip(gk, params) if id(p) in last]).norm() for gk in (g1, g2)]
    )
    # first step: every loss ratio is 1, so each target is the mean of G = w * norm with w = 1
    target = norms.mean() * torch.ones(2) ** GRADNORM_ALPHA
    torch.testing.assert_close(method.w["m"].grad[0], torch.sign(norms - target) * norms, rtol=1e-5, atol=1e-7)
    for g, a, b in zip(got, g1, g2):  # the network's gradient: w = 1, so the plain sum
        torch.testing.assert_close(g, a + b, rtol=1e-5, atol=1e-7)
    method.after_step()
    assert method.w["m"].detach().sum().item() == pytest.approx(2.0)


def test_weighting_is_a_cli_flag(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "r.json"
    args = ["train", "--weighting", "pcgrad", "--steps", "5", "--rows", "300", "--eval-rows", "100", "--no-store"]
    subprocess.run([sys.executable, "-m", "mmoe_core", *args, "--json", str(out), "--quiet"], check=True, timeout=240)
    result = json.loads(out.read_text())
    assert result["config"]["weighting"] == "pcgrad"
    assert np.isfinite(result["models"]["mmoe"]["grad_agreement"][0])
