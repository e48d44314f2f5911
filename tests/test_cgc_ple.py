"""Protects CGC and PLE (models/ple.py): a task's gate gives exactly zero weight to the other tasks' experts,
PLE with one level is CGC, the batched levels equal a naive per-expert loop of Tang et al.'s Eq. 4-8, CGC with
only shared experts equals the (independently written) MMoE, parameter counts, replicas as seeds, and the
trainer/CLI running both models."""

from __future__ import annotations

import json

import pytest
import torch

from mmoe_core.cli import main as cli_main
from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.models import build_model
from mmoe_core.models.ple import PLEModel
from mmoe_core.models.zoo import build_spec, paper_count
from mmoe_core.training import Trainer

SMALL = dict(input_dim=9, expert_units=5, tower_units=3, shared_experts=2, task_experts=2)
SHAPES = {
    "paper-like": RunConfig(**SMALL),
    "deep, 3 tasks": RunConfig(**SMALL, expert_layers=2, tower_layers=2, n_tasks=3, levels=3),
    "flat towers, one shared": RunConfig(**{**SMALL, "shared_experts": 1}, tower_layers=0),
}


def naive_ple(model: PLEModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4-8 written out per replica, per level, per expert and per gate, with explicit expert lists."""
    spec, p = model.spec, dict(model.named_parameters())
    s, m, k, levels = spec.shared_experts, spec.task_experts, spec.n_tasks, spec.levels
    e, h0, deep = spec.n_experts, spec.expert_units[0], len(spec.expert_units) - 1
    r, b, _ = x.shape
    preds, gates = torch.zeros(r, b, k), torch.zeros(r, b, k, e)
    for rep in range(r):
        task_in, shared_in = [x[rep]] * k, x[rep]
        for lv in range(levels):
            last = lv == levels - 1
            outs = []
            for j in range(e):
                src = shared_in if j < s else task_in[(j - s) // m]
                if lv == 0:
                    cols = slice(j * h0, (j + 1) * h0)
                    out = torch.relu(src @ p["levels.0.in_w"][rep][:, cols] + p["levels.0.in_b"][rep][0, cols])
                else:
                    out = torch.relu(src @ p[f"levels.{lv}.in_w"][rep, j] + p[f"levels.{lv}.in_b"][rep, j, 0])
                for i in range(deep):
                    out = torch.relu(out @ p[f"levels.{lv}.w.{i}"][rep, j] + p[f"levels.{lv}.b.{i}"][rep, j, 0])
                outs.append(out)
            n_gates = k if last else k + 1
            gw = p[f"levels.{lv}.gate_w"][rep]
            new_task, new_shared = [], None
            for g in range(n_gates):
                inp = task_in[g] if g < k else shared_in
                members = list(range(s)) + (list(range(s + g * m, s + (g + 1) * m)) if g < k else list(range(s, e)))
                w_g = gw[:, g * e : (g + 1) * e] if lv == 0 else gw[g]  # (h_in, e)
                wts = torch.softmax(inp @ w_g[:, members], dim=-1)  # only its own and the shared experts
                mix = sum(wts[:, i : i + 1] * outs[j] for i, j in enumerate(members))
                if g < k:
                    new_task.append(mix)
                    if last:
                        gates[rep, :, g, members] = wts
                else:
                    new_shared = mix
            task_in, shared_in = new_task, new_shared
        for t in range(k):
            z = task_in[t]
            n_layers = len(spec.tower_units) + 1
            for i in range(n_layers):
                z = z @ p[f"tower_w.{i}"][rep, t] + p[f"tower_b.{i}"][rep, t, 0]
                if i < n_layers - 1:
                    z = torch.relu(z)
            preds[rep, :, t] = z[:, 0]
    return preds, gates


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["cgc", "ple"])
def test_batched_levels_equal_naive_loop(kind, shape):
    model = build_model(kind, SHAPES[shape], replicas=2)
    x = torch.randn(2, 17, 9)
    out = model(x)
    want_preds, want_gates = naive_ple(model, x)
    torch.testing.assert_close(out.preds, want_preds, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.gates, want_gates, atol=1e-6, rtol=1e-6)


def test_cgc_task_gate_gives_zero_weight_to_the_other_tasks_experts():
    config = RunConfig(**SMALL, n_tasks=3)  # e = 2 shared + 3 x 2 = 8: [s s | a a | b b | c c]
    gates = build_model("cgc", config, replicas=2)(torch.randn(2, 64, 9)).gates  # (r, b, k, e)
    assert gates.shape == (2, 64, 3, 8)
    for task in range(3):
        own = [0, 1, 2 + 2 * task, 3 + 2 * task]
        other = [j for j in range(8) if j not in own]
        assert (gates[:, :, task, other] == 0).all()  # exactly zero, not small
        assert (gates[:, :, task, own] > 0).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 64, 3))


def test_ple_with_one_level_equals_cgc():
    config = RunConfig(**SMALL, levels=1)
    cgc, ple = build_model("cgc", config, replicas=2), build_model("ple", config, replicas=2)
    assert build_spec("ple", config) == build_spec("cgc", config).__class__(
        **{**build_spec("cgc", config).__dict__, "kind": "ple"}
    )
    assert not torch.equal(cgc(torch.ones(2, 3, 9)).preds, ple(torch.ones(2, 3, 9)).preds)  # own init salt
    ple.load_state_dict(cgc.state_dict())
    x = torch.randn(2, 21, 9)
    a, b = cgc(x), ple(x)
    assert torch.equal(a.preds, b.preds) and torch.equal(a.gates, b.gates)


def test_cgc_with_only_shared_experts_equals_mmoe():
    """Cross-checks the CGC code against the separately written MixtureModel (MMoE)."""
    config = RunConfig(**{**SMALL, "shared_experts": 4, "task_experts": 0}, n_experts=4)
    mmoe, cgc = build_model("mmoe", config, replicas=2), build_model("cgc", config, replicas=2)
    src = dict(mmoe.named_parameters())
    with torch.no_grad():
        cgc.levels[0].in_w.copy_(src["expert_in_w"])
        cgc.levels[0].in_b.copy_(src["expert_in_b"])
        cgc.levels[0].gate_w.copy_(src["gate_w"])
        for i in range(len(cgc.tower_w)):
            cgc.tower_w[i].copy_(src[f"tower_w.{i}"])
            cgc.tower_b[i].copy_(src[f"tower_b.{i}"])
    x = torch.randn(2, 30, 9)
    torch.testing.assert_close(cgc(x).preds, mmoe(x).preds, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(cgc(x).gates, mmoe(x).gates, atol=1e-6, rtol=1e-6)


def test_parameter_counts_at_the_paper_sizes():
    config = RunConfig(models=("mmoe", "cgc", "ple"))  # 4 shared + 2 x 2 task experts = MMoE's 8 experts
    mmoe, cgc, ple = (build_model(k, config, replicas=1) for k in ("mmoe", "cgc", "ple"))
    assert cgc.num_params(paper=True) == mmoe.num_params(paper=True) == 13_056
    assert ple.num_params(paper=True) == 13_056 + 8 * 16 * 16 == paper_count(build_spec("ple", config))
    # the gates: MMoE 2 x 100 x 8; CGC's task gates see 6 experts each; PLE adds a shared gate over 8
    assert cgc.param_counts()["gate_weights"] == 2 * 100 * 6
    assert ple.param_counts()["gate_weights"] == 100 * (6 + 6 + 8) + 16 * (6 + 6)
    assert cgc.num_params() == sum(p[0].numel() for p in cgc.parameters()) - 2 * 100 * 2  # masked columns


@pytest.mark.parametrize("kind", ["cgc", "ple"])
def test_replicas_are_independent_seeds(kind):
    config = RunConfig(**SMALL, seed=5)
    batched = build_model(kind, config, replicas=3)
    x = torch.randn(3, 11, 9)
    out = batched(x).preds
    for r in range(3):
        single = build_model(kind, config.with_(seed=5 + r), replicas=1)
        torch.testing.assert_close(out[r], single(x[r : r + 1]).preds[0], atol=1e-6, rtol=1e-6)


def test_config_refuses_cgc_without_experts():
    with pytest.raises(ValueError, match="shared_experts=0 and task_experts=0"):
        RunConfig(models=("cgc",), shared_experts=0, task_experts=0)
    RunConfig(models=("mmoe",), shared_experts=0, task_experts=0)  # irrelevant without CGC/PLE


def test_trainer_trains_cgc_and_ple():
    config = RunConfig(
        models=("cgc", "ple"),
        rows=600,
        eval_rows=100,
        input_dim=8,
        sine_terms=2,
        steps=24,
        batch_size=64,
        log_every=12,
        seeds=2,
        lr=2e-2,
        device="cpu",
    )
    trainer = Trainer(config, load_data(config))
    first = trainer.evaluate("val")
    records = []
    trainer.run(on_record=records.append)
    last = trainer.evaluate("val")
    for kind in ("cgc", "ple"):
        assert trainer.results[kind].status == "done"
        assert (last[kind][0] < first[kind][0]).all()  # every seed and task learned something
    gates = [g for rec in records for g in rec.gates if g[0] == "cgc"]
    assert {g[3] for g in gates} == set(range(8)) and any(g[4] == 0.0 for g in gates)  # masked experts drawn


def test_cli_trains_cgc_and_ple(tmp_path, capsys):
    out = tmp_path / "r.json"
    cli_main(
        [
            "train",
            "--models",
            "cgc,ple",
            "--rows",
            "300",
            "--eval-rows",
            "60",
            "--input-dim",
            "6",
            "--steps",
            "20",
            "--batch-size",
            "32",
            "--levels",
            "3",
            "--top-k",
            "2",
            "--gate-noise",
            "--balance-weight",
            "0.01",
            "--device",
            "cpu",
            "--no-store",
            "--quiet",
            "--json",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    models = result["models"] if "models" in result else result["summary"]["models"]
    assert set(models) == {"cgc", "ple"}
    assert all(models[m]["status"] == "done" for m in models)
