"""A training step may run the replica axis in chunks (cache blocking, mmoe_core.models.replica_slice): the
weights, losses and recorded numbers must be those of the one-pass step, for every model kind, for a sweep
mixing correlations and learning rates, with noisy gates and balancing losses, and with a diverged model."""

from __future__ import annotations

import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data.sources import load_data
from mmoe_core.flat_adam import flatten_parameters
from mmoe_core.models import build_model
from mmoe_core.models.replica_slice import replica_chunks, replica_slice
from mmoe_core.training import Trainer

SMALL = dict(rows=400, eval_rows=80, input_dim=10, steps=15, log_every=5, batch_size=24)


def _trained(config: RunConfig, chunk: int) -> Trainer:
    trainer = Trainer(config, load_data(config), device="cpu", replica_chunk=chunk)
    trainer.run()
    return trainer


def _assert_same_training(a: Trainer, b: Trainer) -> None:
    for name in a.models:
        for (pname, pa), pb in zip(a.models[name].named_parameters(), b.models[name].parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=f"{name}.{pname}")
        for field in ("test_loss", "grad_agreement", "routing_specialisation"):  # evaluation and probes, chunked
            va, vb = getattr(a.results[name], field), getattr(b.results[name], field)
            assert (va is None) == (vb is None), field
            if va is not None:
                torch.testing.assert_close(torch.as_tensor(va), torch.as_tensor(vb), rtol=1e-5, atol=1e-5, msg=field)


@pytest.mark.parametrize(
    "over",
    [
        dict(models=("shared_bottom", "omoe", "mmoe"), sweep=(0.2, 0.9), sweep_lr=(1e-3, 1e-2)),
        dict(models=("mmoe", "cgc"), top_k=2, gate_noise=True, balance_weight=0.1),
        dict(models=("single_task", "ple"), n_tasks=2),
    ],
    ids=["sweep-p-and-rates", "noisy-top-k-balanced", "single-task-and-ple"],
)
def test_a_chunked_step_trains_every_replica_as_the_one_pass_step(over):
    config = RunConfig(**SMALL, seeds=3, independent_data=True, **over)
    whole, chunked = _trained(config, 0), _trained(config, 2)
    assert len(whole._chunks) == 1 and len(chunked._chunks) == -(-config.replicas // 2) > 1
    _assert_same_training(whole, chunked)


def test_a_diverged_model_is_left_out_of_a_chunked_step():
    config = RunConfig(**SMALL, seeds=4, models=("shared_bottom", "mmoe"))
    trainer = Trainer(config, load_data(config), device="cpu", replica_chunk=2)
    trainer.results["shared_bottom"].status = "diverged"
    before = {n: p.detach().clone() for n, p in trainer.models["shared_bottom"].named_parameters()}
    trainer.step()
    for n, p in trainer.models["shared_bottom"].named_parameters():
        assert torch.equal(p, before[n]), n
    assert trainer.results["shared_bottom"].seconds == 0.0 and trainer.results["mmoe"].seconds > 0.0


def test_a_replica_slice_shares_weights_and_gradients_with_the_full_model():
    config = RunConfig(seeds=5, input_dim=6, models=("mmoe",), gate_noise=True)
    model = build_model("mmoe", config, input_dim=6, n_tasks=2)
    flat = flatten_parameters(list(model.parameters()))
    part = replica_slice(model, 1, 3)
    assert part.replicas == 2 and part.seed == [1, 2]
    assert torch.equal(part.gate_w, model.gate_w[1:3])
    with torch.no_grad():
        flat.add_(1.0)  # an optimizer step on the flat tensor moves the slice too
    assert torch.equal(part.expert_in_w, model.expert_in_w[1:3])
    out = part(torch.randn(2, 7, 6))
    out.preds.sum().backward()
    grad = model.expert_in_w.grad
    assert grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()  # still the flat gradient
    assert grad[1:3].abs().sum() > 0 and grad[0].abs().sum() == 0 and grad[3:].abs().sum() == 0
    full_gens = model._noise_gen[torch.device("cpu")]
    assert part._noise_gen[torch.device("cpu")] == full_gens[1:3]  # the same generator objects
    with pytest.raises(ValueError, match=r"replica slice \[4, 6\) is outside the model's 5 replicas"):
        replica_slice(model, 4, 6)


def test_replica_chunks_cover_the_replicas_once_in_near_equal_parts():
    assert replica_chunks(600, 50) == [(i * 50, (i + 1) * 50) for i in range(12)]
    chunks = replica_chunks(10, 4)
    assert chunks == [(0, 3), (3, 7), (7, 10)]
    assert replica_chunks(3, 10) == [(0, 3)]


def test_the_trainer_chunks_large_cpu_studies_with_equal_weighting_only():
    big = RunConfig(seeds=150, rows=300, eval_rows=50, batch_size=256, models=("mmoe",))
    data = load_data(big)
    auto = Trainer(big, data, device="cpu")
    sizes = {b - a for a, b in auto._chunks}
    assert len(auto._chunks) > 1 and max(sizes) - min(sizes) <= 1
    assert auto._chunks[0][0] == 0 and auto._chunks[-1][1] == 150
    assert len(Trainer(big.with_(weighting="uncertainty"), data, device="cpu")._chunks) == 1
    assert len(Trainer(big, data, device="cpu", replica_chunk=0)._chunks) == 1
