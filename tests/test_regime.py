"""The regime map (issue 16): a study over training sizes, its per-cell paired statistics with failures counted,
the pre-registered teaching rule, the CLI's one command and the Experiments page's heatmap."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mmoe_core.cli import main as cli_main
from mmoe_core.config import RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.runtime.execute import execute_run
from mmoe_core.studies.regime import regime_table, region_readings, teaching_choice
from mmoe_core.studies.study import PRESETS, Study, final_losses, load_study, study_label, study_runs

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "experiments.py")
TINY = RunConfig(seeds=2, steps=12, eval_rows=50, log_every=6, independent_data=True)


def _final(cells: dict[tuple[int, float], dict[str, list[float]]]) -> pd.DataFrame:
    """Per-seed final losses from {(rows, p): {model: [loss per seed]}}."""
    rows = []
    for (n, p), models in cells.items():
        for model, losses in models.items():
            for r, v in enumerate(losses):
                rows.append(
                    {"rows": n, "correlation": p, "lr": 1e-3, "model": model, "replica": r, "test_loss_mean": v}
                )
    return pd.DataFrame(rows)


def test_a_study_over_training_sizes_runs_one_config_per_size_and_reads_back():
    study = Study(correlations=(0.0, 1.0), base=TINY, row_sizes=(500, 200), batched=False)
    configs = study.configs()
    assert [(c.rows, c.correlation) for c in configs] == [(500, 0.0), (500, 1.0), (200, 0.0), (200, 1.0)]
    assert [(c.rows, c.sweep) for c in study.with_(batched=True).configs()] == [(500, (0.0, 1.0)), (200, (0.0, 1.0))]
    back = Study.from_configs(configs)
    assert back.row_sizes == (500, 200) and back.correlations == (0.0, 1.0)
    assert Study.from_configs(Study(base=TINY).configs()).row_sizes == ()  # one size: an ordinary study
    with pytest.raises(ValueError, match="row_sizes=5 is out of range"):
        Study(base=TINY, row_sizes=(5,))
    with pytest.raises(ValueError, match="row_sizes=.* repeats a value"):
        Study(base=TINY, row_sizes=(200, 200))


def test_the_regime_preset_is_the_issues_grid_on_fresh_seeds():
    regime = PRESETS["regime"]
    assert regime.correlations == (-0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
    assert regime.sizes == (2_000, 5_000, 20_000, 100_000)
    cells = [(c.rows, p) for c in regime.configs() for p in c.sweep or (c.correlation,)]
    assert len(cells) == len(set(cells)) == 28  # every (rows, p) cell once, batched where the limits allow
    assert {c.rows for c in regime.configs() if c.sweep} == {2_000, 5_000, 20_000}  # 100,000 x 7 p: 4.6 GB
    assert len(regime.with_(batched=False).configs()) == 28
    assert regime.base.seed == regime.base.data_seed == 7_000_000 and regime.base.independent_data
    protocol = PRESETS["protocol"]
    assert protocol.lrs == (1e-4, 1e-3, 1e-2) and protocol.base.seeds == 200
    assert protocol.correlations == (0.5, 0.9, 1.0) and protocol.base.seed == 7_100_000


def test_a_cell_counts_a_failed_seed_as_a_loss_and_judges_by_the_sign_test():
    sb = [0.10 + 0.01 * i for i in range(16)]
    mmoe = [v - 0.02 for v in sb]  # MMoE better on every seed ...
    mmoe[0] = math.nan  # ... but seed 0 diverged: a loss for MMoE, not a dropped seed
    omoe = [v - 0.02 for v in sb]  # as MMoE where MMoE trained
    final = _final({(2_000, 0.5): {"shared_bottom": sb, "mmoe": mmoe, "omoe": omoe}})
    t = regime_table(final).set_index("other")
    cell = t.loc["shared_bottom"]
    assert cell["pairs"] == 16 and cell["wins"] == 15 and cell["failed_mmoe"] == 1
    assert cell["hi"] == pytest.approx(-0.02) and cell["verdict"] == "holds"  # 95% interval [d(4), d(13)]
    assert t.loc["omoe"]["wins"] == 0 and t.loc["omoe"]["verdict"] == "too close to call"  # ties and one failure
    few = regime_table(_final({(2_000, 0.5): {"shared_bottom": sb[:8], "mmoe": mmoe[:8]}})).iloc[0]
    assert few["wins"] == 7 and math.isinf(few["hi"]) and few["verdict"] == "too close to call"  # 8: [d(1), d(8)]


def test_readings_say_who_wins_each_region_from_the_numbers():
    losing = {"shared_bottom": [0.1] * 8, "mmoe": [0.2] * 8, "omoe": [0.2] * 8}
    winning = {"shared_bottom": [0.2] * 8, "mmoe": [0.1] * 8, "omoe": [0.2] * 8}
    table = regime_table(_final({(2_000, 0.0): losing, (100_000, 0.0): winning}))
    text = region_readings(table, "shared_bottom")
    assert len(text) == 2
    assert text[0].startswith("Little data") and "Shared-Bottom wins 8 of 8" in text[0] and "hurts in 1" in text[0]
    assert text[1].startswith("More data") and "MMoE wins 8 of 8" in text[1] and "helps in 1" in text[1]


def test_the_teaching_rule_takes_the_best_win_rate_whose_gate_lead_shrinks_at_p_1():
    def cell(sb_wins: int, om_wins: int) -> dict[str, list[float]]:
        return {
            "shared_bottom": [0.2] * sb_wins + [0.05] * (10 - sb_wins),
            "omoe": [0.2] * om_wins + [0.05] * (10 - om_wins),
            "mmoe": [0.1] * 10,
        }

    cells = {
        (2_000, 0.5): cell(3, 5),
        (2_000, 1.0): cell(2, 4),
        (20_000, 0.5): cell(9, 8),  # best win rate, but the lead over OMoE grows at p = 1: not taken
        (20_000, 1.0): cell(9, 9),
        (100_000, 0.5): cell(8, 8),
        (100_000, 1.0): cell(7, 5),
    }
    choice = teaching_choice(regime_table(_final(cells)))
    assert choice.rows == 100_000 and choice.met_rule and (choice.wins, choice.pairs) == (8, 10)
    cells[(100_000, 0.5)] = cell(6, 8)  # below the 70% bar: no size qualifies, the best is flagged
    choice = teaching_choice(regime_table(_final(cells)))
    assert choice.rows == 20_000 and not choice.met_rule and "no row count reached a 70%" in choice.reason


def test_sweep_runs_a_regime_map_in_one_command(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli_main(
        [
            "sweep",
            "--preset",
            "regime",
            "--row-sizes",
            "200,400",
            "--correlations",
            "0.5,1",
            "--seeds",
            "2",
            "--steps",
            "10",
            "--eval-rows",
            "50",
            "--home",
            str(tmp_path / "home"),
            "--quiet",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["config"]["row_sizes"] == [200, 400] and data["config"]["seed"] == 7_000_000
    assert {(r["rows"], r["correlation"], r["other"]) for r in data["regime"]} == {
        (n, p, o) for n in (200, 400) for p in (0.5, 1.0) for o in ("shared_bottom", "omoe")
    }
    assert {r["rows"] for r in data["results"]} == {200, 400} and len(data["results"]) == 2 * 2 * 3 * 2
    printed = capsys.readouterr().out
    assert "regime map" in printed and "MMoE vs shared_bottom" in printed
    store = RunStore(tmp_path / "home")
    assert load_study(store, data["study_id"]).row_sizes == (200, 400)
    assert cli_main(["sweep", "--row-sizes", "a,b", "--no-store"]) == 2
    assert "--row-sizes 'a,b' must be comma-separated numbers" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_the_page_draws_a_stored_regime_map(mmoe_home):
    store = RunStore(mmoe_home)
    study = Study(correlations=(0.5, 1.0), base=TINY, row_sizes=(200, 400))
    for config in study.configs():
        execute_run(store, store.create_run(config, label=study_label("cd" * 6), status="running"))
    assert len(final_losses(store, study_runs(store, "cd" * 6))) == 4 * 3 * 2
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["study"] = "cd" * 6
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("2 training sizes" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1  # the map alone: the paper's figures would mix training sizes
    readings = [m.value for m in at.markdown if m.value.startswith("- Little data")]
    assert len(readings) == 2 and all("of 4 seed pairs" in r for r in readings)
    at.selectbox(key="exp_preset").set_value("regime").run()
    assert at.multiselect(key="exp_row_sizes").value == [2_000, 5_000, 20_000, 100_000]
    assert np.isclose(at.multiselect(key="exp_correlations").value, [-0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0]).all()


def test_the_playground_quotes_the_held_out_win_rate_only_at_the_measured_settings():
    from mmoe_core.studies.teaching import TEACHING_EVIDENCE, at_defaults, teaching_evidence

    plain = RunConfig()
    assert at_defaults(plain.with_(seed=12, data_seed=3, seeds=4, log_every=10))  # seeds and recording: same setting
    text = teaching_evidence(plain)
    assert text is not None and f"{TEACHING_EVIDENCE.wins} of {TEACHING_EVIDENCE.seeds} fresh seeds" in text
    assert 0 < TEACHING_EVIDENCE.wins <= TEACHING_EVIDENCE.seeds
    for changed in (plain.with_(correlation=0.9), plain.with_(rows=plain.rows + 1), plain.with_(models=("mmoe",))):
        assert teaching_evidence(changed) is None  # another setting: the measured rate says nothing about it
