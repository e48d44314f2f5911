"""The device paths (issue #18 item 5), on the device that MMOE_TEST_DEVICE names (default cpu; bench/gpu_check.py
runs this file with cuda on a GPU machine).

Some computations take a CPU-tuned form on a CPU (models.gating.cpu_forms: an exp/sum softmax, a padded mixture
product, OMoE's mixture as a product and a sum) and ATen's plain form elsewhere. With gating.CPU_FORMS off a CPU
computes the plain forms, so on a CPU-only machine these tests still check the forms a GPU runs against the tuned
ones; on a GPU the same tests check the GPU's run against the CPU's."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data.sources import load_data
from mmoe_core.flat_adam import FlatAdam
from mmoe_core.models import build_model, gating
from mmoe_core.training import Trainer
from mmoe_core.weighting import WEIGHTINGS

DEVICE = os.environ.get("MMOE_TEST_DEVICE", "cpu")
SMALL = dict(rows=600, eval_rows=120, input_dim=12, steps=40, log_every=10, batch_size=32)
KINDS = ("single_task", "shared_bottom", "omoe", "mmoe", "cgc", "ple")
TOL = 2e-4  # relative, on test losses after training: float32 kernels that block or reduce differently


@contextmanager
def _forms(plain: bool) -> Iterator[None]:
    """Within: the plain forms a GPU runs (plain=True) or the CPU-tuned ones."""
    before, gating.CPU_FORMS = gating.CPU_FORMS, not plain
    try:
        yield
    finally:
        gating.CPU_FORMS = before


def _forward_backward(model: torch.nn.Module, x: torch.Tensor, plain: bool) -> tuple[torch.Tensor, ...]:
    with _forms(plain):
        model.zero_grad(set_to_none=True)
        out = model(x)
        (out.preds.square().sum() + (out.aux.sum() if out.aux is not None else 0)).backward()
    return (out.preds, out.gates, *(p.grad for p in model.parameters()))


@pytest.mark.parametrize(
    "kind, over",
    [(kind, {}) for kind in KINDS]
    + [
        ("mmoe", dict(n_experts=4, expert_units=4)),  # a mixture too small to pad: one product per task
        ("mmoe", dict(n_tasks=3, expert_layers=2, tower_layers=2)),
        ("omoe", dict(top_k=2, balance_weight=0.1)),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(f"{k}={x}" for k, x in v.items()) or "paper",
)
def test_the_plain_forms_equal_the_cpu_forms(kind, over):
    config = RunConfig(**{**SMALL, **over}, models=(kind,), seeds=3)
    model = build_model(kind, config, input_dim=config.input_dim, n_tasks=config.n_tasks)
    x = torch.randn(3, 64, config.input_dim, generator=torch.Generator().manual_seed(1))
    tuned = _forward_backward(model, x, plain=False)
    plain = _forward_backward(copy.deepcopy(model), x, plain=True)
    assert tuned[0].shape == (3, 64, config.n_tasks)
    for a, b in zip(tuned, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_cpu_forms_are_asked_of_the_tensor_device():
    with _forms(plain=True):
        assert not gating.cpu_forms(torch.zeros(1))
    assert gating.cpu_forms(torch.zeros(1)) and not gating.cpu_forms(torch.zeros(1, device="meta"))


def _trained(config: RunConfig, device: str, plain: bool = False) -> Trainer:
    with _forms(plain):
        trainer = Trainer(config, load_data(config), device=device, replica_chunk=0 if plain else None)
        trainer.run()
    assert all(r.status == "done" for r in trainer.results.values()), {n: r.message for n, r in trainer.results.items()}
    return trainer


def test_a_sweep_of_every_kind_on_the_device_trains_as_the_plain_forms_on_the_cpu():
    """Every model kind, correlations and learning rates swept in one computation: per seed, the test losses on
    the test device equal a CPU run in one pass with the plain forms (a GPU's wiring, the CPU's arithmetic)."""
    config = RunConfig(**SMALL, models=KINDS, seeds=2, independent_data=True, sweep=(0.0, 0.9), sweep_lr=(3e-3, 1e-2))
    on_device, reference = _trained(config, DEVICE), _trained(config, "cpu", plain=True)
    for name in KINDS:
        losses = on_device.results[name].test_loss
        assert losses.shape == (config.replicas, 2) and np.isfinite(losses).all(), name
        np.testing.assert_allclose(losses, reference.results[name].test_loss, rtol=TOL, err_msg=name)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_every_weighting_and_probe_runs_on_the_device(weighting):
    config = RunConfig(**SMALL, models=("omoe", "mmoe", "cgc"), seeds=2, weighting=weighting, top_k=2, gate_noise=True)
    trainer = Trainer(config, load_data(config), device=DEVICE)
    records = []
    trainer.run(on_record=records.append)
    assert trainer.device.type == torch.device(DEVICE).type
    assert [r.status for r in trainer.results.values()] == ["done"] * 3
    for name, res in trainer.results.items():
        assert isinstance(res.test_loss, np.ndarray) and np.isfinite(res.test_loss).all(), name
        assert res.grad_agreement.shape == (2, 1) and np.isfinite(res.grad_agreement).all(), name
    assert np.isfinite(trainer.results["mmoe"].routing_specialisation).all()
    metrics = {row[5] for rec in records for row in rec.metrics}
    assert {"loss", "grad_agreement", "routing_specialisation", "gate_task_difference"} <= metrics
    assert {name for rec in records for name, *_ in rec.gates} == {"omoe", "mmoe", "cgc"}
    assert all(t.device.type == "cpu" for t in trainer.state_tensors().values())  # the download is host memory


def test_binary_tasks_train_and_score_auc_on_the_device():
    """Binary tasks take the BCE loss and the host-side AUC: the device's numbers are the plain forms' on the CPU."""
    config = RunConfig(
        dataset="sample:census_sample.csv",
        targets=("income_over_50k", "never_married"),
        models=("shared_bottom", "mmoe"),
        steps=30,
        log_every=10,
        batch_size=64,
        seeds=2,
    )
    on_device, reference = _trained(config, DEVICE), _trained(config, "cpu", plain=True)
    for name, res in on_device.results.items():
        assert res.test_auc.shape == (2, 2) and ((res.test_auc >= 0) & (res.test_auc <= 1)).all(), name
        assert res.test_auc.max() > 0.8, name  # "never married" is easy to tell from age
        np.testing.assert_allclose(res.test_loss, reference.results[name].test_loss, rtol=TOL, err_msg=name)
        np.testing.assert_allclose(res.test_auc, reference.results[name].test_auc, atol=5e-3, err_msg=name)


def test_flat_adam_with_rate_groups_is_torch_fused_adam_on_the_device():
    g = torch.Generator().manual_seed(0)
    start = torch.randn(3_000, generator=g).to(DEVICE)
    flat = torch.nn.Parameter(start.clone())
    parts = {
        lr: torch.nn.Parameter(start[a:b].clone()) for lr, (a, b) in {1e-3: (0, 1_000), 3e-2: (1_000, 3_000)}.items()
    }
    ours = FlatAdam(flat, lr=1e-3, groups=[(1e-3, [(0, 1_000)]), (3e-2, [(1_000, 3_000)])])
    theirs = [torch.optim.Adam([p], lr=lr, fused=True) for lr, p in parts.items()]
    for _ in range(30):
        grad = torch.randn(3_000, generator=g).to(DEVICE)
        flat.grad = grad.clone()
        parts[1e-3].grad, parts[3e-2].grad = grad[:1_000].clone(), grad[1_000:].clone()
        ours.step()
        for opt in theirs:
            opt.step()
    assert not torch.equal(flat.data, start)
    assert torch.equal(flat.data, torch.cat([parts[1e-3].data, parts[3e-2].data]))
