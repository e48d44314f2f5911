"""Protects the gates of models/gating.py: masked experts get exactly zero weight, noisy top-k keeps exactly k
experts per row, noise is drawn only while training, and the balancing losses (importance and load CV²)
rank a uniform router below a collapsed one."""

from __future__ import annotations

import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.models import build_model
from mmoe_core.models.gating import balance_loss, cv_squared, importance_loss, load_loss, noisy_top_k

torch.manual_seed(0)


def test_dense_gate_without_mask_is_softmax():
    logits = torch.randn(3, 7, 2, 5)
    weights, _, std = noisy_top_k(logits)
    torch.testing.assert_close(weights, torch.softmax(logits, dim=-1), atol=1e-6, rtol=1e-6)
    assert std is None


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("noise", [False, True])
def test_top_k_leaves_exactly_k_nonzero_weights(k, noise):
    clean = torch.randn(2, 64, 3, 8)
    weights, _, _ = noisy_top_k(clean, torch.randn_like(clean) if noise else None, top_k=k)
    assert ((weights > 0).sum(dim=-1) == k).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 64, 3))


def test_top_k_without_noise_keeps_the_k_largest_logits():
    clean = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5]])
    weights, _, _ = noisy_top_k(clean, top_k=2)
    assert (weights[0] > 0).tolist() == [False, True, False, True, False]
    torch.testing.assert_close(weights[0, [1, 3]], torch.softmax(torch.tensor([3.0, 2.0]), dim=0))


def test_mask_gives_exact_zeros_and_top_k_stays_inside_the_mask():
    mask = torch.tensor([[True, True, False, False], [True, False, True, True]])  # (g, e)
    clean = torch.randn(50, 2, 4)
    clean[:, 0, 2] += 100.0  # the masked expert of gate 0 would win without the mask
    dense, _, _ = noisy_top_k(clean, mask=mask)
    assert (dense[:, 0, 2:] == 0).all() and (dense[:, 1, 1] == 0).all()
    sparse, _, _ = noisy_top_k(clean, torch.randn_like(clean), top_k=3, mask=mask)
    assert ((sparse[:, 0] > 0).sum(-1) == 2).all()  # only 2 allowed: min(k, allowed)
    assert ((sparse[:, 1] > 0).sum(-1) == 3).all() and (sparse[:, 1, 1] == 0).all()


def test_noise_changes_the_choice_and_the_generator_makes_it_reproducible():
    clean = torch.zeros(200, 1, 6)
    noise = torch.zeros(200, 1, 6)  # softplus(0) ≈ 0.69: strong noise against equal logits
    a, _, _ = noisy_top_k(clean, noise, 1, generator=torch.Generator().manual_seed(1))
    b, _, _ = noisy_top_k(clean, noise, 1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert len(set(a.argmax(-1).flatten().tolist())) == 6  # every expert gets picked by some row


def test_cv_squared_values():
    assert cv_squared(torch.ones(8)).item() == pytest.approx(0.0)
    one_hot = torch.tensor([4.0, 0, 0, 0])
    assert cv_squared(one_hot).item() == pytest.approx(3.0)  # n - 1 for a collapsed router
    # masked-out entries are ignored: [4, 0] over 2 allowed experts -> var 4 / mean² 4 = 1
    assert cv_squared(one_hot, torch.tensor([True, True, False, False])).item() == pytest.approx(1.0)


def test_balancing_loss_is_lower_for_a_uniform_router_than_a_collapsed_one():
    b, e = 128, 8
    uniform = torch.full((b, 2, e), 1.0 / e)
    collapsed = torch.zeros(b, 2, e)
    collapsed[..., 3] = 1.0
    assert importance_loss(uniform).item() == pytest.approx(0.0, abs=1e-9)
    assert importance_loss(collapsed).item() == pytest.approx(2 * (e - 1))  # two gates
    # the load term: clean logits that favour one expert far more than the noise can undo
    std = torch.ones(b, 2, e)
    flat, peaked = torch.zeros(b, 2, e), torch.zeros(b, 2, e)
    peaked[..., 3] = 50.0
    noisy_flat = flat + torch.randn(b, 2, e)
    noisy_peaked = peaked + torch.randn(b, 2, e)
    assert load_loss(flat, noisy_flat, std, 2) < 0.1 < load_loss(peaked, noisy_peaked, std, 2)
    assert balance_loss(uniform) < balance_loss(collapsed)


def test_load_loss_gradient_is_finite_with_masked_experts():
    mask = torch.tensor([[True, True, True, False]])
    clean = torch.randn(32, 1, 4, requires_grad=True)
    noise = torch.randn(32, 1, 4, requires_grad=True)
    weights, h, std = noisy_top_k(clean, noise, top_k=2, mask=mask)
    loss = balance_loss(weights, clean, h, std, 2, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(clean.grad).all() and torch.isfinite(noise.grad).all()
    assert clean.grad.abs().sum() > 0 and noise.grad.abs().sum() > 0  # the load term reaches the noise weights


@pytest.mark.parametrize("kind", ["cgc", "ple"])
def test_noise_only_in_training_and_top_k_in_the_model(kind):
    config = RunConfig(models=(kind,), input_dim=10, expert_units=4, tower_units=3, top_k=2, gate_noise=True)
    model = build_model(kind, config, replicas=2)
    x = torch.randn(2, 40, 10)
    with torch.no_grad():  # evaluation: deterministic
        assert torch.equal(model(x).gates, model(x).gates)
    g1, g2 = model(x).gates, model(x).gates  # training with gradients: noise redrawn each call
    assert not torch.equal(g1, g2)
    assert ((g1 > 0).sum(-1) == 2).all()
    assert model.num_params() == build_model(kind, config.with_(gate_noise=False), replicas=1).num_params() + (
        model.param_counts()["gate_weights"] // 2
    )  # the noise weights double the gate


@pytest.mark.parametrize("kind", ["mmoe", "omoe", "ple"])
def test_noisy_gates_of_replica_r_equal_a_single_run_with_seed_plus_r(kind):
    """The replica promise (README, mixture.py) with gate noise: each replica draws from its own generator
    (seed + r). One generator shared by all replicas made replica 1's noise depend on replica 0's draws."""
    config = RunConfig(
        models=(kind,), input_dim=10, n_experts=4, expert_units=4, tower_units=3, top_k=2, gate_noise=True, seed=5
    )
    batched = build_model(kind, config, replicas=3)
    x = torch.randn(3, 16, 10, generator=torch.Generator().manual_seed(0))
    twice = [batched(x) for _ in range(2)]  # the second call shows the generators' state advancing per replica
    for r in range(3):
        single = build_model(kind, config.with_(seed=5 + r), replicas=1)
        for out in twice:
            one = single(x[r : r + 1])
            torch.testing.assert_close(out.gates[r : r + 1], one.gates, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out.preds[r : r + 1], one.preds, rtol=1e-5, atol=1e-6)
