"""Protects the mixture layer: the batched expert bank and its fast paths compute exactly what a naive
per-replica, per-expert loop computes; gates and routes wire each model as the paper says; parameter counts
match §5.1; replicas are independent seeds; and the trainer's batched step equals separate runs."""

from __future__ import annotations

import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.models import MixtureModel, build_model
from mmoe_core.models.gating import softmax
from mmoe_core.models.mixture import SMALL_BMM, _mix
from mmoe_core.models.zoo import build_spec, matched_bottom_units
from mmoe_core.training import Trainer

KINDS = ("single_task", "shared_bottom", "omoe", "mmoe")
SMALL = dict(input_dim=12, n_experts=4, expert_units=5, tower_units=3, bottom_units=7)
SHAPES = {  # small sizes that still take every branch of forward (deep experts, deep and flat towers, k > 2)
    "paper-like": RunConfig(**SMALL),
    "deep": RunConfig(**SMALL, expert_layers=2, tower_layers=2, n_tasks=3),
    "flat towers": RunConfig(**SMALL, tower_layers=0),
}


def naive_forward(model: MixtureModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's maths written out as nn.Linear layers, one replica, one expert and one task at a time."""
    spec, p = model.spec, dict(model.named_parameters())
    r, b, _ = x.shape
    e, k, h0 = spec.n_experts, spec.n_tasks, spec.expert_units[0]
    preds, gates = torch.zeros(r, b, k), torch.zeros(r, b, k, e)
    for rep in range(r):
        experts = []
        for j in range(e):
            cols = slice(j * h0, (j + 1) * h0)
            out = torch.relu(x[rep] @ p["expert_in_w"][rep][:, cols] + p["expert_in_b"][rep][0, cols])
            for i in range(len(spec.expert_units) - 1):
                out = torch.relu(out @ p[f"expert_w.{i}"][rep, j] + p[f"expert_b.{i}"][rep, j, 0])
            experts.append(out)  # (b, h)
        for task in range(k):
            if spec.gated:
                g = min(task, spec.n_gates - 1)  # OMoE: every task reads gate 0
                weights = torch.softmax(x[rep] @ p["gate_w"][rep][:, g * e : (g + 1) * e], dim=-1)
            else:
                weights = model.route[task].expand(b, e)
            z = sum(weights[:, j : j + 1] * experts[j] for j in range(e))  # (b, h)
            n_layers = len(spec.tower_units) + 1
            for i in range(n_layers):
                z = z @ p[f"tower_w.{i}"][rep, task] + p[f"tower_b.{i}"][rep, task, 0]
                if i < n_layers - 1:
                    z = torch.relu(z)
            preds[rep, :, task] = z[:, 0]
            gates[rep, :, task] = weights
    return preds, gates


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_batched_output_equals_naive_loop(kind, shape):
    config = SHAPES[shape]
    model = MixtureModel(build_spec(kind, config), replicas=3, seed=4)
    x = torch.randn(3, 33, config.input_dim, generator=torch.Generator().manual_seed(0))
    out = model(x)
    want_preds, want_gates = naive_forward(model, x)
    torch.testing.assert_close(out.preds, want_preds, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.gates, want_gates, atol=1e-6, rtol=1e-6)
    shared = model(x[0])  # a (b, d) input is read by every replica
    torch.testing.assert_close(shared.preds, naive_forward(model, x[0].expand(3, -1, -1))[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_equal_naive_loop(kind):
    """The fast paths (fused first tower layer, padded mixture, product-sum output layer) differentiate exactly."""
    config = SHAPES["paper-like"]
    model = MixtureModel(build_spec(kind, config), replicas=2, seed=1)
    x = torch.randn(2, 17, config.input_dim, generator=torch.Generator().manual_seed(1))
    params = list(model.parameters())
    fast = torch.autograd.grad(model(x).preds.square().sum(), params)
    slow = torch.autograd.grad(naive_forward(model, x)[0].square().sum(), params)
    for (name, _), a, b in zip(model.named_parameters(), fast, slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, msg=name)


def test_gates_are_distributions_and_routes_are_fixed():
    x = torch.randn(2, 50, 100)
    config = RunConfig()
    for kind in ("omoe", "mmoe"):
        gates = build_model(kind, config, replicas=2)(x).gates  # (r, b, k, e)
        assert gates.shape == (2, 50, 2, 8)
        torch.testing.assert_close(gates.sum(-1), torch.ones(2, 50, 2))
        assert (gates > 0).all()
    shared = build_model("shared_bottom", config, replicas=2)(x).gates
    assert shared.shape == (2, 50, 2, 1) and (shared == 1).all()  # both tasks read the one bottom
    single = build_model("single_task", config, replicas=2)(x).gates
    assert torch.equal(single[0, 0], torch.eye(2))  # task i reads expert i only


def test_single_task_towers_read_only_their_own_expert():
    model = build_model("single_task", RunConfig(**SMALL), replicas=1)
    x = torch.randn(1, 20, 12)
    before = model(x).preds
    with torch.no_grad():
        h = model.spec.expert_units[0]
        model.expert_in_w[0, :, h : 2 * h] += 1.0  # change expert 1 only
    after = model(x).preds
    assert torch.equal(before[..., 0], after[..., 0])
    assert not torch.allclose(before[..., 1], after[..., 1])


def test_omoe_gate_is_shared_and_mmoe_gates_differ_after_training():
    config = RunConfig(
        models=("omoe", "mmoe"), rows=400, eval_rows=100, steps=30, log_every=30, lr=1e-2, correlation=0.2
    )
    trainer = Trainer(config, load_data(config))
    trainer.run()
    gates = trainer.probe_gates()  # (k, e) mean weights per model
    assert torch.equal(torch.from_numpy(gates["omoe"][0]), torch.from_numpy(gates["omoe"][1]))
    assert abs(gates["mmoe"][0] - gates["mmoe"][1]).max() > 1e-3
    x = trainer.data.x_val[0, :64]
    per_row = trainer.models["omoe"](x).gates  # identical for every task on every row, not only on average
    assert torch.equal(per_row[:, :, 0], per_row[:, :, 1])


def test_paper_parameter_counts():
    config = RunConfig()
    mmoe = build_model("mmoe", config, replicas=1)
    assert mmoe.num_params(paper=True) == 13_056 == 100 * 16 * 8 + 2 * 16 * 8
    assert matched_bottom_units(config) == 113
    shared = build_model("shared_bottom", config, replicas=1)
    assert shared.spec.expert_units == (113,)
    assert abs(shared.num_params(paper=True) - 13_056) / 13_056 < 0.01  # 13,108
    assert build_model("omoe", config, replicas=1).num_params(paper=True) == 13_056
    assert mmoe.num_params() == sum(p[0].numel() for p in mmoe.parameters())


@pytest.mark.parametrize("kind", ("shared_bottom", "mmoe"))
def test_replica_r_equals_a_single_model_with_seed_plus_r(kind):
    config = RunConfig(**SMALL)
    batched = MixtureModel(build_spec(kind, config), replicas=3, seed=10)
    x = torch.randn(3, 21, 12)
    out = batched(x).preds
    for r in range(3):
        single = MixtureModel(build_spec(kind, config), replicas=1, seed=10 + r)
        for (name, a), b in zip(batched.named_parameters(), single.parameters()):
            assert torch.equal(a[r], b[0]), name
        torch.testing.assert_close(out[r], single(x[r : r + 1]).preds[0], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_replica_gradients_are_independent(kind):
    model = MixtureModel(build_spec(kind, RunConfig(**SMALL)), replicas=2, seed=0)
    x = torch.randn(2, 16, 12)
    params = list(model.parameters())
    preds = model(x).preds
    only0 = torch.autograd.grad(preds[0].square().sum(), params, retain_graph=True)
    both = torch.autograd.grad(preds[0].square().sum() + 7 * preds[1].sin().sum(), params)
    for (name, _), g0, g in zip(model.named_parameters(), only0, both):
        assert torch.equal(g0[1], torch.zeros_like(g0[1])), name  # replica 0's loss never reaches replica 1
        torch.testing.assert_close(g[0], g0[0], atol=1e-7, rtol=1e-6, msg=name)  # nor replica 1's replica 0


def _mix_reference(g: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Σ_e g_ke f_e by broadcasting and summing: no matmul, so it shares no code path with _mix."""
    return (g.unsqueeze(-1) * f.unsqueeze(-3)).sum(dim=-2)  # (r, b, k, e, 1) * (r, b, 1, e, h) -> (r, b, k, h)


# padded rows: (2, 8, 16), (3, 8, 16); per-row product sums: (1, 8, 16), (2, 2, 4); plain matmul: (3, 32, 16)
@pytest.mark.parametrize("k,e,h", [(2, 8, 16), (3, 8, 16), (1, 8, 16), (2, 2, 4), (3, 32, 16)])
def test_mix_equals_an_independent_product_sum(k, e, h):
    """Each form of Σ_e g_ke f_e that _mix picks, values and gradients, against a broadcast-and-sum reference."""
    assert (k * e * h < SMALL_BMM) == ((k, e, h) != (3, 32, 16))  # the cases cover both sides of the switch
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(3, 40, k, e, generator=gen).softmax(-1).requires_grad_()
    f = torch.randn(3, 40, e, h, generator=gen).requires_grad_()
    fast = _mix(g, f)
    ref = _mix_reference(g, f)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-6)
    up = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(fast, (g, f), up), torch.autograd.grad(ref, (g, f), up), atol=1e-5, rtol=1e-5
    )


def _softmax_reference(logits: torch.Tensor) -> torch.Tensor:
    """exp / sum in float64 after subtracting the row max: plain torch, no softmax kernel."""
    z = logits.double()
    z = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return z / z.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("e", [8, 32])  # 8: the exp / sum fast path; 32: ATen's kernel
def test_softmax_matches_a_float64_reference_and_survives_large_logits(e):
    logits = torch.randn(4, 10, 2, e) * torch.tensor([1.0, 50.0, 1e3, 1e4]).view(4, 1, 1, 1)
    logits.requires_grad_()
    ours, ref = softmax(logits), _softmax_reference(logits)
    assert torch.isfinite(ours).all()
    torch.testing.assert_close(ours, ref.float())
    up = torch.randn_like(ours)
    ours_grad = torch.autograd.grad(ours, logits, up)[0]
    ref_grad = torch.autograd.grad(ref, logits, up.double())[0]
    torch.testing.assert_close(ours_grad, ref_grad.float(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("independent", [False, True])
def test_batched_training_equals_separate_runs(independent):
    """Replica 1 of a two-seed run follows the same trajectory as a one-seed run with seed + 1 (and, with
    independent data, data_seed + 1): batch gathering, fused Adam and the loss never mix seeds."""
    base = RunConfig(
        models=("shared_bottom", "mmoe"),
        rows=600,
        eval_rows=100,
        steps=12,
        batch_size=64,
        log_every=6,
        independent_data=independent,
        **SMALL,
    )
    pair = Trainer(base.with_(seeds=2), load_data(base.with_(seeds=2)))
    alone_config = base.with_(seed=1, data_seed=1 if independent else 0)
    alone = Trainer(alone_config, load_data(alone_config))
    for _ in range(base.steps):
        pair.step()
        alone.step()
    for name in base.models:
        for (pname, a), b in zip(pair.models[name].named_parameters(), alone.models[name].parameters()):
            torch.testing.assert_close(a[1], b[0], atol=1e-5, rtol=1e-4, msg=f"{name}.{pname}")


def test_gather_reads_the_same_rows_as_fancy_indexing():
    """The index_select over the storage of a sliced (train | val | test) block picks the right rows."""
    config = RunConfig(seeds=3, independent_data=True, rows=300, eval_rows=50, **SMALL)
    trainer = Trainer(config, load_data(config))
    idx = torch.randint(0, 300, (3, 40))
    for x in (trainer.data.x_train, trainer.data.y_train, trainer.data.x_train.contiguous()):
        assert torch.equal(trainer._gather(x, idx, trainer._replica_idx), x[trainer._replica_idx, idx])
    shared = trainer.data.x_train[:1]
    assert torch.equal(trainer._gather(shared, idx, trainer._replica_idx), shared[0][idx])
    block = torch.tensor([[2], [0], [2]])  # a sweep: replicas read another replica's inputs
    assert torch.equal(trainer._gather(trainer.data.x_train, idx, block), trainer.data.x_train[block, idx])


def test_every_kind_has_one_constructor_and_a_constructor_needs_a_registry_entry():
    from mmoe_core.model_kinds import KINDS, family_fields, kinds_using
    from mmoe_core.models.zoo import SPECS, kind_spec

    assert list(SPECS) == list(KINDS)  # one constructor per registry entry, in the registry's order
    assert kinds_using("levels") == ("ple",) and kinds_using("shared_experts") == ("cgc", "ple")
    assert family_fields() == ("shared_experts", "task_experts", "levels")

    def hydra(**_: int) -> None:
        return None

    with pytest.raises(ValueError, match=r"'hydra' has no entry in mmoe_core/model_kinds.py KINDS; add one"):
        kind_spec(hydra)
