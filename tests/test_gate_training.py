"""Protects the trainer side of issue 8: top-k on MMoE/OMoE, the balancing loss reaching the optimizer, and
probe diagnostics stored with each record."""

from __future__ import annotations

import numpy as np
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.models import build_model
from mmoe_core.training import Trainer


def test_mmoe_and_omoe_top_k_gates():
    config = RunConfig(input_dim=10, n_experts=6, expert_units=4, tower_units=3, top_k=2, gate_noise=True)
    for kind in ("mmoe", "omoe"):
        model = build_model(kind, config, replicas=2)
        gates = model(torch.randn(2, 30, 10)).gates
        assert ((gates > 0).sum(-1) == 2).all()
    dense = build_model("mmoe", config.with_(top_k=0, gate_noise=False), replicas=1)
    assert dense(torch.randn(1, 5, 10)).aux is None


def test_balance_loss_reaches_training_and_evens_the_load():
    base = RunConfig(
        models=("mmoe",),
        rows=800,
        eval_rows=600,
        input_dim=8,
        sine_terms=2,
        steps=40,
        batch_size=64,
        log_every=40,
        lr=2e-2,
        n_experts=4,
        expert_units=4,
        device="cpu",
    )
    cv2 = {}
    for w in (0.0, 1.0):
        trainer = Trainer(base.with_(balance_weight=w), load_data(base))
        records = []
        trainer.run(on_record=records.append)
        rows = [r for r in records[-2].metrics if r[4] == "probe" and r[5] == "importance_cv2"]  # last point
        assert rows
        cv2[w] = np.mean([r[6] for r in rows])
    assert cv2[1.0] < cv2[0.0]


def test_record_stores_probe_diagnostics_for_gated_models_only():
    config = RunConfig(
        models=("shared_bottom", "mmoe", "cgc"),
        rows=300,
        eval_rows=600,
        input_dim=6,
        steps=4,
        batch_size=32,
        log_every=2,
        device="cpu",
    )
    trainer = Trainer(config, load_data(config))
    rec = trainer.record()
    measures = ("grad_agreement", "routing_specialisation", "gate_task_difference")  # #19, #17: per seed
    probe = [r for r in rec.metrics if r[4] == "probe" and not r[5].startswith(measures)]
    assert {r[0] for r in probe} == {"mmoe", "cgc"}  # the diagnostics are the gated models' only
    assert {r[5] for r in probe} == {"max_load", "load_entropy", "gate_entropy", "importance_cv2", "expert_cosine"}
    cos = [r[6] for r in probe if r[5] == "expert_cosine"]
    assert all(abs(c) < 0.2 for c in cos)  # freshly initialised experts are far from copies
