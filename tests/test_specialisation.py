"""Protects the routing specialisation S (issue #17 item 2, mmoe_core/specialisation.py): its value on a
hand-built case, exactly 0 for one gate (OMoE) and at p = 1, and, trained, larger for MMoE at p = 0 than at p = 1.

The trained check's setting was fixed before it was run (a small, quick budget: 5,000 rows, 600 steps, 8 seeds
each with its own data, seed 9,100 not used by any other test); it is a sanity check of direction, and the
figures at the Playground's defaults are measured by the command in docs/REPRODUCTION.md, not here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mmoe_core.cli import main as cli_main
from mmoe_core.config import RunConfig
from mmoe_core.data import load_data
from mmoe_core.models import build_model
from mmoe_core.specialisation import expert_alignment, routing_specialisation
from mmoe_core.training import Trainer


def test_two_experts_each_carrying_one_task_and_each_gate_picking_its_own_give_one_half():
    config = RunConfig(input_dim=4, n_experts=2, expert_units=3, seeds=1)
    model = build_model("mmoe", config, input_dim=4, n_tasks=2)
    w = torch.zeros(1, 4, 2, 3)  # (r, d, e, h): expert 1 reads x0 only, expert 2 reads x1 only
    w[0, 0, 0, :], w[0, 1, 1, :] = 1.0, 2.0
    model.expert_in_w.data = w.reshape(1, 4, 6)
    directions = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])  # w_1 = e_0, w_2 = e_1
    alignment = expert_alignment(model, directions)
    assert alignment[0].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    own = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (r, k, e): each task's gate takes its own expert
    assert routing_specialisation(own, alignment, n_gates=2).tolist() == [0.5]
    swapped = own.flip(-1)  # each gate takes the other task's expert
    assert routing_specialisation(swapped, alignment, n_gates=2).tolist() == [-0.5]
    even = torch.full((1, 2, 2), 0.5)
    assert routing_specialisation(even, alignment, n_gates=2).tolist() == [0.0]
    assert routing_specialisation(own, alignment, n_gates=1).tolist() == [0.0]  # one gate: 0 by construction


def train(p: float) -> dict[str, np.ndarray]:
    config = RunConfig(
        correlation=p,
        rows=5_000,
        eval_rows=500,
        steps=600,
        log_every=600,
        seeds=8,
        independent_data=True,
        seed=9_100,
        data_seed=9_100,
        models=("omoe", "mmoe"),
    )
    results = Trainer(config, load_data(config)).run()
    return {name: r.routing_specialisation for name, r in results.items()}


@pytest.fixture(scope="module")
def trained():
    return {p: train(p) for p in (0.0, 1.0)}


def test_one_gate_and_identical_tasks_give_exactly_zero(trained):
    for p in (0.0, 1.0):
        assert trained[p]["omoe"].tolist() == [0.0] * 8
    assert trained[1.0]["mmoe"].tolist() == [0.0] * 8  # w_1 = w_2: every alignment is exactly 1/2


def test_mmoe_specialises_more_for_unrelated_tasks_than_for_identical_ones(trained):
    s = trained[0.0]["mmoe"]
    print("MMoE S at p = 0, per seed:", np.round(s, 4).tolist())
    assert s.mean() > trained[1.0]["mmoe"].mean()
    assert (s > 0).sum() >= 5, s  # positive on most of the 8 seeds


def test_the_train_json_carries_it_for_gated_models_on_synthetic_data_only(tmp_path):
    out = tmp_path / "t.json"
    args = ["train", "--steps", "20", "--rows", "400", "--eval-rows", "100", "--seeds", "2", "--no-store"]
    assert cli_main([*args, "--correlation", "0", "--json", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    assert "routing_specialisation" not in models["shared_bottom"]
    assert models["omoe"]["routing_specialisation"] == 0.0
    s = models["mmoe"]["routing_specialisation"]
    per_seed = [seed["routing_specialisation"] for seed in models["mmoe"]["per_seed"]]
    assert len(per_seed) == 2 and s == pytest.approx(np.mean(per_seed))


def test_cgc_records_its_gates_task_difference_but_no_specialisation():
    """CGC's task gates each reach the shared experts and their own task's: their difference is at least the weight
    each task puts on its own experts, so it is positive from the first point; OMoE's one gate gives exactly 0.
    S is not defined for experts in levels, so none is recorded for CGC."""
    config = RunConfig(rows=400, eval_rows=100, input_dim=8, steps=4, log_every=2, seeds=3, models=("omoe", "cgc"))
    trainer = Trainer(config, load_data(config))
    rows = trainer.record().metrics
    difference = {
        m: [v for (name, _, _, _, _, metric, v) in rows if name == m and metric == "gate_task_difference"]
        for m in ("omoe", "cgc")
    }
    assert difference["omoe"] == [0.0] * 3
    assert len(difference["cgc"]) == 3 and all(0.2 < v <= 1.0 for v in difference["cgc"]), difference["cgc"]
    assert not [r for r in rows if r[0] == "cgc" and r[5] == "routing_specialisation"]


def test_the_reading_says_what_the_number_means():
    from mmoe_core.specialisation import reading

    assert reading("MMoE", [0.01, 0.02, -0.001]) == (
        "MMoE: S = 0.0097 (2 of 3 seeds above 0): each task's gate leans towards the experts that respond to its "
        "own direction w_k."
    )
    assert "cannot tell the tasks apart" in reading("OMoE", [0.0, 0.0])
    assert "no consistent preference" in reading("MMoE", [0.01, -0.02, -0.001])
    assert "no routing specialisation recorded" in reading("MMoE", [float("nan")])


def test_the_figure_draws_one_line_per_gated_model_with_a_band_over_seeds():
    import pandas as pd

    from mmoe_core.agreement_plots import specialisation_curves
    from mmoe_core.views import curve_frame

    rows = [
        (m, step, r, -1, "probe", "routing_specialisation", v * (r + 1) * step / 100)
        for m, v in (("omoe", 0.0), ("mmoe", 0.01))
        for step in (0, 50, 100)
        for r in range(3)
    ]
    metrics = pd.DataFrame(rows, columns=["model", "step", "replica", "task", "split", "metric", "value"])
    fig = specialisation_curves(curve_frame(metrics, "routing_specialisation", ("probe",)))
    lines = [t for t in fig.data if t.fill is None]
    assert [t.name for t in lines] == ["OMoE", "MMoE"]
    assert list(lines[1].y) == pytest.approx([0.0, 0.01, 0.02])  # the mean over seeds 1x, 2x, 3x
    assert sum(t.fill == "toself" for t in fig.data) == 2  # a band per model: several seeds


def test_the_run_view_shows_it_for_a_synthetic_run(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from mmoe_core.runs import RunStore
    from mmoe_core.runtime.execute import execute_run

    monkeypatch.setenv("MMOE_HOME", str(tmp_path))
    store = RunStore(tmp_path)
    config = RunConfig(rows=400, eval_rows=100, steps=20, log_every=10, seeds=2, models=("omoe", "mmoe"))
    run_id = store.create_run(config, status="running")
    execute_run(store, run_id)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.switch_page("pages/runs.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("Routing specialisation S" in m.value for m in at.markdown)
    assert any(m.value.startswith("**Expert map**") for m in at.markdown)
    alignment = store.alignment(run_id)  # the first seed's a_ik per expert and task at every recorded point
    assert set(alignment["model"]) == {"omoe", "mmoe"} and sorted(alignment["step"].unique()) == [0, 10, 20]
    sums = alignment.groupby(["model", "step", "expert"])["value"].sum()
    assert np.allclose(sums, 1.0)  # shares over the tasks
    store.delete_run(run_id)
    assert store.alignment(run_id).empty
    captions = [c.value for c in at.caption]
    assert any(c.startswith("OMoE: S = 0: its gates cannot tell the tasks apart") for c in captions), captions
    assert any(c.startswith("MMoE: S = ") for c in captions), captions


def test_the_expert_map_places_experts_by_alignment_and_sizes_them_by_gate_weight():
    import pandas as pd

    from mmoe_core.expert_map import expert_map

    alignment = pd.DataFrame([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5]])  # (tasks x experts); columns sum to 1
    gates = pd.DataFrame([[0.7, 0.1, 0.2], [0.1, 0.7, 0.2]])
    fig = expert_map(gates, alignment, ["income", "<b>churn</b>"], title="MMoE")
    assert [t.name for t in fig.data] == ["E1", "E2", "E3"]
    e1 = fig.data[0]
    assert list(e1.x) == [0.9, 0.1] and list(e1.y) == ["income", "&lt;b&gt;churn&lt;/b&gt;"]
    assert e1.marker.size[0] > e1.marker.size[1]  # task 1's gate uses E1 more than task 2's does
    assert fig.layout.shapes[0].x0 == 0.5  # the no-preference line at 1/K
    assert (
        "appears with the first recorded point"
        in expert_map(pd.DataFrame(), alignment, ["a", "b"]).layout.annotations[0].text
    )
