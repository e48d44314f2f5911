"""Protects the Data page's wiring (AppTest): the upload path from bytes to a stored, re-runnable CSV config,
clear errors for bad uploads, and the source contract with the Playground (st.session_state["data_source"]
plus the recommended settings on its controls)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mmoe_core.config import RunConfig, field_names
from mmoe_core.data import CENSUS_DEFAULTS, dataset_defaults, load_data

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "pages" / "data.py")


def page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="data_choice").set_value("csv").run()
    at.file_uploader(key="csv_upload").set_value((name, data, "text/csv")).run()
    assert not at.exception
    return at


def config_of(source: dict) -> RunConfig:
    return RunConfig(**{k: v for k, v in source.items() if k in field_names()})


def test_upload_path_stores_the_file_by_id_and_hands_a_runnable_config_to_the_playground(mmoe_home):
    data = (ROOT / "sample_data" / "customers.csv").read_bytes()
    at = upload(page(), "../../my customers.csv", data)
    stored = list((mmoe_home / "uploads").iterdir())
    assert len(stored) == 1 and stored[0].read_bytes() == data and len(stored[0].stem) == 16  # name not used
    assert any("my customers.csv**: 1,200 rows × 8 columns" in m.value for m in at.markdown)
    at.multiselect(key="csv_targets").set_value(["monthly_spend", "churned", "upgraded"]).run()
    assert [m.label for m in at.metric] == ["Tasks", "Inputs after one-hot", "Label correlation"]
    assert at.metric[1].value == "11"
    at.button(key="use_csv").click().run()
    source = at.session_state["data_source"]
    assert source["dataset"] == "upload:" + stored[0].stem and source["targets"] == (
        "monthly_spend",
        "churned",
        "upgraded",
    )
    assert source["task_kinds"] == ("regression", "binary", "binary") and source["n_tasks"] == 3
    assert at.session_state["steps"] == dataset_defaults("x.csv", 1_200)["steps"]
    assert "The Playground now trains on **my customers.csv" in at.success[0].value
    data = load_data(config_of(source))  # the stored config alone reproduces the data
    assert data.n_tasks == 3 and data.input_dim == source["input_dim"] == 11


def test_left_out_columns_and_kind_overrides_reach_the_config(mmoe_home):
    at = upload(page(), "c.csv", (ROOT / "sample_data" / "customers.csv").read_bytes())
    at.multiselect(key="csv_targets").set_value(["monthly_spend", "upgraded"]).run()
    at.selectbox(key="csv_kind:monthly_spend").set_value("binary").run()
    n = pd.read_csv(ROOT / "sample_data" / "customers.csv")["monthly_spend"].nunique()
    assert f"has {n} distinct values; a binary target needs exactly two" in at.error[0].value
    at.selectbox(key="csv_kind:monthly_spend").set_value("regression").run()
    at.multiselect(key="csv_left_out").set_value(["region"]).run()
    at.button(key="use_csv").click().run()
    source = at.session_state["data_source"]
    assert source["features"] == ("age", "plan", "tenure_months", "monthly_visits", "churned")
    assert config_of(source).task_kinds == ("regression", "binary")


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.csv", b"", "is empty"),
        ("sheet.csv", b"PK\x03\x04\x00\x00" + bytes(range(256)), "not CSV text"),
        ("short.csv", b"a,b,c\n" + b"1,2,3\n" * 20, "20 data rows; at least 100"),
    ],
    ids=["empty", "binary", "short"],
)
def test_bad_uploads_show_the_reason_and_store_nothing(mmoe_home, name, data, message):
    at = upload(page(), name, data)
    assert message in at.error[0].value
    assert not (mmoe_home / "uploads").exists() or not list((mmoe_home / "uploads").iterdir())
    assert "data_source" not in at.session_state


def test_a_target_with_one_class_is_explained(mmoe_home):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=150), "y": rng.normal(size=150), "same": 1})
    at = upload(page(), "t.csv", df.to_csv(index=False).encode())
    at.multiselect(key="csv_targets").set_value(["y", "same"]).run()
    assert "target 'same' has one class only (1 in every row)" in at.error[0].value
    assert "use_csv" not in [b.key for b in at.button]


def test_census_and_synthetic_buttons_set_the_source_and_the_recommended_settings(mmoe_home):
    at = page()
    at.radio(key="data_choice").set_value("census1").run()
    at.button(key="use_census1").click().run()
    source = at.session_state["data_source"]
    assert source["dataset"] == "census1" and config_of(source).input_dim == 503
    for key, value in CENSUS_DEFAULTS.items():
        assert at.session_state[key] == (list(value) if isinstance(value, tuple) else value)
    at.radio(key="data_choice").set_value("synthetic").run()
    at.button(key="use_synthetic").click().run()
    assert "data_source" not in at.session_state


def test_the_playground_picks_up_the_chosen_source_through_the_app(mmoe_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/data.py").run()
    at.radio(key="data_choice").set_value("census1").run()
    at.button(key="use_census1").click().run()
    at.switch_page("pages/playground.py").run()
    assert not at.exception
    shown = [e.value for e in list(at.caption) + list(at.sidebar.info)]
    assert any("Census-Income group 1" in text for text in shown), shown
    assert at.session_state["steps"] == CENSUS_DEFAULTS["steps"]
    assert at.session_state["lr"] == CENSUS_DEFAULTS["lr"]
