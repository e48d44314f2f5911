"""Protects the expert-utilisation diagnostics (mmoe_core/diagnostics.py): load, entropies and CV² on uniform,
collapsed and masked routers, the pairwise cosine of expert weights, the stored metric rows, and the collapse
and copy warnings that the Playground shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmoe_core import diagnostics as dg
from mmoe_core.config import RunConfig
from mmoe_core.models import build_model

B, K, E = 64, 2, 8


def uniform() -> np.ndarray:
    return np.full((B, K, E), 1.0 / E)


def collapsed(expert: int = 5) -> np.ndarray:
    g = np.zeros((B, K, E))
    g[..., expert] = 1.0
    return g


def test_uniform_and_collapsed_routers():
    u, c = dg.diagnose(uniform()), dg.diagnose(collapsed())
    np.testing.assert_allclose(u["max_load"], 1 / E)
    np.testing.assert_allclose(u["load_entropy"], 1.0)
    np.testing.assert_allclose(u["gate_entropy"], 1.0)
    np.testing.assert_allclose(u["importance_cv2"], 0.0, atol=1e-12)
    np.testing.assert_allclose(c["max_load"], 1.0)
    np.testing.assert_allclose(c["load_entropy"], 0.0, atol=1e-12)
    np.testing.assert_allclose(c["importance_cv2"], E - 1)


def test_sparse_but_balanced_routing_is_not_collapse():
    """Top-1 routing that spreads rows over all experts: sharp rows (gate entropy 0) but a uniform load."""
    g = np.zeros((B, K, E))
    g[np.arange(B), :, np.arange(B) % E] = 1.0
    d = dg.diagnose(g)
    np.testing.assert_allclose(d["gate_entropy"], 0.0, atol=1e-12)
    np.testing.assert_allclose(d["load_entropy"], 1.0)
    rows = pd.DataFrame(
        dg.metric_rows("mmoe", 10, d), columns=["model", "step", "replica", "task", "split", "metric", "value"]
    )
    assert dg.warning_messages(dg.latest(rows)) == []


def test_masked_gate_is_measured_over_its_allowed_experts():
    """A CGC task gate uniform over its 6 allowed experts is perfectly balanced, not 'missing' two experts."""
    allowed = np.ones((K, E), dtype=bool)
    allowed[0, 6:], allowed[1, 4:6] = False, False
    g = np.where(allowed, 1 / 6, 0.0)[None].repeat(B, axis=0)
    d = dg.diagnose(g, allowed=allowed)
    np.testing.assert_allclose(d["load_entropy"], 1.0)
    np.testing.assert_allclose(d["importance_cv2"], 0.0, atol=1e-12)
    assert dg.diagnose(g)["load_entropy"][0] < 1.0  # without the mask it would look unbalanced


def test_mean_pairwise_cosine():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 400))
    assert abs(dg.mean_pairwise_cosine(w)) < 0.1  # random experts: near orthogonal
    assert dg.mean_pairwise_cosine(np.repeat(w[:1], 8, axis=0)) == pytest.approx(1.0)
    assert dg.mean_pairwise_cosine(np.eye(3)) == pytest.approx(0.0)
    assert np.isnan(dg.mean_pairwise_cosine(w[:1]))


def test_metric_rows_and_latest_step():
    rows = dg.metric_rows("mmoe", 0, dg.diagnose(uniform(), np.eye(4)))
    rows += dg.metric_rows("mmoe", 50, dg.diagnose(collapsed(), np.ones((4, 3))))
    assert len(rows) == 2 * (len(dg.PER_TASK) * K + len(dg.MODEL_WIDE))
    assert {r[4] for r in rows} == {"probe"} and {r[3] for r in rows} == {-1, 0, 1}
    frame = pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])
    last = dg.latest(frame)
    assert set(last["step"]) == {50}
    assert last.query("metric == 'expert_cosine'")["value"].item() == pytest.approx(1.0)


def test_warnings_name_the_model_task_and_problem():
    rows = dg.metric_rows("mmoe", 50, dg.diagnose(collapsed(), np.ones((4, 3))))
    rows += dg.metric_rows("cgc", 50, dg.diagnose(uniform(), np.eye(4)))
    frame = pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])
    msgs = dg.warning_messages(dg.latest(frame), {"mmoe": "MMoE", "cgc": "CGC"}, ["income", "marital"])
    assert len(msgs) == 3  # two collapsed tasks and the copies, all MMoE's
    assert all(m.startswith("MMoE: ") for m in msgs)
    assert "income" in msgs[0] and "100%" in msgs[0] and "balance_weight" in msgs[0]
    assert "copies" in msgs[2] and "1.00" in msgs[2]


def test_expert_weights_and_mask_from_models():
    config = RunConfig(input_dim=6, expert_units=3, n_experts=4, shared_experts=2, task_experts=1)
    mmoe, cgc = build_model("mmoe", config, replicas=2), build_model("cgc", config, replicas=2)
    w = dg.expert_weights(mmoe, r=1)
    assert w.shape == (4, 18)
    np.testing.assert_allclose(w[2], mmoe.expert_in_w[1, :, 6:9].detach().numpy().ravel())  # expert 2's columns
    assert dg.expert_weights(cgc).shape == (4, 18)
    assert dg.expert_weights(build_model("shared_bottom", config, replicas=1)) is None
    assert dg.gate_mask(mmoe) is None
    assert dg.gate_mask(cgc).tolist() == [[True, True, True, False], [True, True, False, True]]
    with torch.no_grad():  # copying one expert into all makes them copies
        mmoe.expert_in_w[0] = mmoe.expert_in_w[0, :, :3].repeat(1, 4)
    assert dg.mean_pairwise_cosine(dg.expert_weights(mmoe)) == pytest.approx(1.0)


def test_diagnostics_figure_has_a_panel_per_metric_and_a_line_per_model_and_task():
    from mmoe_core.plots import DIAGNOSTIC_PANELS, diagnostics_figure

    rows = []
    for step in (0, 50, 100):
        rows += dg.metric_rows("mmoe", step, dg.diagnose(uniform(), np.eye(4)))
        rows += dg.metric_rows("cgc", step, dg.diagnose(collapsed(), np.ones((4, 3))))
    frame = pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])
    fig = diagnostics_figure(frame, ["A", "B"])
    keys = [t for t in fig.data if list(t.x) == [None]]
    assert [(t.name, t.line.dash) for t in keys] == [("A (solid)", "solid"), ("B (dash)", "dash")]  # legend: line style
    data = [t for t in fig.data if t.hoverinfo != "skip" and t not in keys]
    # load entropy and max load: 2 models x 2 tasks; cosine: 2 models; plus a threshold line per panel
    assert len(data) == 2 * 2 + 2 * 2 + 2 and len(fig.data) - len(data) - len(keys) == len(DIAGNOSTIC_PANELS)
    cgc_cos = next(t for t in data if t.yaxis == "y3" and t.name == "CGC")
    assert list(cgc_cos.x) == [0, 50, 100] and list(cgc_cos.y) == [1.0, 1.0, 1.0]
    assert [a.text for a in fig.layout.annotations][0].startswith("<b>Load entropy")
