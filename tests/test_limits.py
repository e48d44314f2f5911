"""Protects the server's resource limits (issue 14, item 3): a run's parameters, memory and work are judged on the
whole config before it is queued, URL values are validated together, one session cannot fill the queue, and an
upload is sized before it is expanded and parsed outside the web server under a memory cap."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from mmoe_core.config import RunConfig
from mmoe_core.data import table_probe
from mmoe_core.data.csv_read import read_csv_bytes
from mmoe_core.data.csv_table import check_choice
from mmoe_core.data.sources import store_upload
from mmoe_core.limits import estimate, model_cost
from mmoe_core.models.zoo import build_model, matched_bottom_units
from mmoe_core.runs import RunStore
from mmoe_core.runtime.jobs import JobQueue, QueueFull

ALL = ("single_task", "shared_bottom", "omoe", "mmoe", "cgc", "ple")


# ---------------------------------------------------------------------------------------------- the estimate
@pytest.mark.parametrize(
    "over",
    [{}, {"expert_layers": 3, "tower_layers": 2, "n_tasks": 3, "gate_noise": True}, {"bottom_units": 50}],
    ids=["paper", "deep-noisy", "fixed-bottom"],
)
def test_parameter_estimate_is_within_ten_percent_of_the_built_models(over):
    config = RunConfig(models=ALL, **over)
    for kind in ALL:
        real = build_model(kind, config, replicas=1).num_params()
        assert abs(model_cost(kind, config)[0] / real - 1) <= 0.10, (kind, real, model_cost(kind, config))


def test_the_huge_model_from_the_issue_is_refused_naming_the_biggest_factor_and_the_limit():
    with pytest.raises(ValueError) as err:
        RunConfig(n_experts=256, expert_units=4096, expert_layers=8)
    message = str(err.value)
    assert "MMOE_MAX_PARAMS" in message and "expert_units=4096 (256x its default 16)" in message
    assert "90,534,259,780 parameters" in message  # 30 billion per model, three models


def test_work_counts_model_size_not_only_steps_and_batch():
    small, deep = RunConfig(models=("mmoe",)), RunConfig(models=("mmoe",), expert_layers=4, expert_units=64)
    ratio = estimate(deep).work / estimate(small).work  # the old formula saw only 8 x 64 vs 8 x 16 units: 4x
    assert ratio == pytest.approx(estimate(deep).total_params / estimate(small).total_params) and ratio > 10
    with pytest.raises(ValueError, match=r"too much work for this server .*MMOE_MAX_WORK.*biggest factor is seeds=100"):
        RunConfig(models=("mmoe",), expert_units=64, seeds=100, steps=50_000, batch_size=512)


def test_memory_limit_names_its_variable(monkeypatch):
    monkeypatch.setenv("MMOE_MAX_MEMORY_BYTES", "1e8")
    with pytest.raises(
        ValueError, match=r"about 0\.\d GB of memory .*MMOE_MAX_MEMORY_BYTES.*biggest factor is batch_size"
    ):
        RunConfig(batch_size=65_536, steps=10)


def test_the_matched_bottom_width_is_computed_at_once_for_huge_models():
    config = RunConfig(models=("mmoe",), n_experts=256, expert_units=1024)
    width = matched_bottom_units(config)  # the old loop took one Python step per unit: 226,127 steps here
    assert width == 226_127


# ---------------------------------------------------------------------------------------------- URL values
def test_url_values_are_judged_as_one_config():
    config, warnings = RunConfig.from_query({"seeds": "1000", "steps": "1", "batch_size": "1"})
    assert (config.seeds, config.steps, config.batch_size, warnings) == (1000, 1, 1, [])


def test_scientific_notation_gets_the_range_message_not_a_python_error():
    config, warnings = RunConfig.from_query({"steps": "1e9", "rows": "2e4"})
    assert config.rows == 20_000 and config.steps == RunConfig().steps
    assert warnings == ["URL parameter steps='1e9' ignored: steps=1000000000 is out of range; allowed 1 to 1e+06"]
    assert "invalid literal" not in " ".join(RunConfig.from_query({"steps": "lots"})[1])


def test_a_url_too_big_as_a_whole_falls_back_to_the_defaults_and_says_why():
    config, warnings = RunConfig.from_query({"n_experts": "256", "expert_units": "4096", "expert_layers": "8"})
    assert config == RunConfig()
    assert len(warnings) == 1 and "URL configuration ignored" in warnings[0] and "MMOE_MAX_PARAMS" in warnings[0]


# ---------------------------------------------------------------------------------------------- queue quota
@pytest.fixture
def queue(tmp_path):
    q = JobQueue(RunStore(tmp_path), max_concurrent=1, warm=False, poll_s=3600)  # nothing starts
    yield q
    q.shutdown()


def test_one_session_cannot_fill_the_queue(queue, monkeypatch):
    monkeypatch.setattr(queue, "max_per_owner", 3)
    for _ in range(3):
        queue.submit(RunConfig(), owner="web:a")
    with pytest.raises(QueueFull, match=r"you already have 3 runs .*MMOE_MAX_QUEUED_PER_SESSION = 3"):
        queue.submit(RunConfig(), owner="web:a")
    queue.submit(RunConfig(), owner="web:b")  # everyone else still gets in
    queue.submit(RunConfig(), label="cli")  # the CLI and scripts (no owner) are not counted
    queue.cancel(queue.store.queued()[0])
    queue.submit(RunConfig(), owner="web:a")  # a finished run frees a place


def test_the_tabs_of_one_browser_share_its_quota(queue, monkeypatch):
    monkeypatch.setattr(queue, "max_per_owner", 3)
    for tab in ("web:tab1", "web:tab2", "web:tab3"):  # each tab is its own Streamlit session
        queue.submit(RunConfig(), owner=tab, browser="browser:aa")
    with pytest.raises(QueueFull, match=r"you already have 3 runs .*all its tabs together"):
        queue.submit(RunConfig(), owner="web:tab4", browser="browser:aa")
    queue.submit(RunConfig(), owner="web:tab5", browser="browser:bb")  # another browser still gets in


def test_one_address_cannot_fill_the_queue_with_fresh_browsers(queue, monkeypatch):
    monkeypatch.setattr(queue, "max_per_owner", 3)
    monkeypatch.setattr(queue, "max_per_address", 4)
    for i in range(4):  # a script that drops its cookie each time looks like a new browser
        queue.submit(RunConfig(), owner=f"web:s{i}", browser=f"browser:{i}", address="203.0.113.7")
    with pytest.raises(QueueFull, match=r"address already has 4 runs .*MMOE_MAX_QUEUED_PER_ADDRESS = 4"):
        queue.submit(RunConfig(), owner="web:s9", browser="browser:9", address="203.0.113.7")
    queue.submit(RunConfig(), owner="web:t", browser="browser:t", address="198.51.100.2")  # others get in
    monkeypatch.setattr(queue, "max_per_address", 0)  # 0: no per-address limit (a reverse proxy)
    queue.submit(RunConfig(), owner="web:s9", browser="browser:9", address="203.0.113.7")
    assert len(queue.store.with_status("queued", "running")) == 6  # the dispatcher may have started one


def test_the_browser_id_survives_tornado_remasking_its_xsrf_cookie():
    from ui.server import browser_id

    token = bytes(range(16))

    def cookie(mask: bytes) -> str:  # tornado's version-2 XSRF cookie: 2|mask|token XOR mask|timestamp
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
        return f"2|{mask.hex()}|{masked.hex()}|1764700000"

    one, two = browser_id(cookie(b"\x01\x02\x03\x04")), browser_id(cookie(b"\xf0\x0f\xaa\x55"))
    assert one == two and one.startswith("browser:") and len(one) == len("browser:") + 16
    assert browser_id(cookie(b"\x01\x02\x03\x04").replace("|0", "|1", 1)) != one  # another token
    assert browser_id("") == "" and browser_id(None) == ""
    assert browser_id("2|zz|not hex|1").startswith("browser:")  # a malformed cookie is hashed whole


def test_a_study_counts_once_toward_the_quota(queue, monkeypatch):
    monkeypatch.setattr(queue, "max_per_owner", 2)
    queue.submit(RunConfig(), owner="web:a")
    for _ in range(5):  # one study's runs share its label
        queue.submit(RunConfig(), owner="web:a", label="study:0123456789ab")
    with pytest.raises(QueueFull, match="MMOE_MAX_QUEUED_PER_SESSION"):
        queue.submit(RunConfig(), owner="web:a", label="study:ba9876543210")


def test_the_quota_defaults_to_three(monkeypatch, tmp_path):
    monkeypatch.delenv("MMOE_MAX_QUEUED_PER_SESSION", raising=False)
    monkeypatch.delenv("MMOE_MAX_QUEUED_PER_ADDRESS", raising=False)
    q = JobQueue(RunStore(tmp_path), warm=False, poll_s=3600)
    try:
        assert q.max_per_owner == 3 and q.max_per_address == 12
    finally:
        q.shutdown()


# ---------------------------------------------------------------------------------------------- uploads
def wide_text_table(rows: int, columns: int, values: int = 64, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {"y1": rng.normal(size=rows), "y2": rng.integers(0, 2, rows)}
    for c in range(columns):
        data[f"c{c}"] = np.char.add("v", rng.integers(0, values, rows).astype(str))
    return pd.DataFrame(data)


def test_checking_a_wide_table_does_not_build_its_one_hot_inputs(monkeypatch):
    import tracemalloc

    df = wide_text_table(4_000, 100)  # 6,400 one-hot inputs x 4,000 rows = 102 MB as float32
    tracemalloc.start()
    choice = check_choice(df, ["y1", "y2"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert choice.n_inputs == 100 * 64
    assert peak < 40e6, f"checking allocated {peak / 1e6:.0f} MB: the one-hot matrix was built"


def test_a_table_over_the_row_limit_is_refused_before_it_is_parsed(monkeypatch):
    monkeypatch.setenv("MMOE_MAX_ROWS", "1000")
    data = b"a,b,c\n" + b"1,2,3\n" * 5_000
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("parsed a table over the limit"))
    with pytest.raises(ValueError, match=r"about 5,000 rows, over this server's limit of 1,000 \(MMOE_MAX_ROWS\)"):
        read_csv_bytes(data, "big.csv")


def test_uploads_are_parsed_in_a_child_that_cannot_exceed_its_memory_cap(tmp_path, monkeypatch):
    rows = 300_000  # 8 columns of distinct text: 2.4 million Python strings once parsed, ~20 MB on disk
    lines = ["y1,y2," + ",".join(f"c{c}" for c in range(8))]
    lines += [f"{i % 97},{i % 2}," + ",".join(f"{i * (c + 3):09x}" for c in range(8)) for i in range(rows)]
    path = tmp_path / "distinct.csv"
    path.write_text("\n".join(lines) + "\n")
    assert table_probe.probe(path, "distinct.csv")["rows"] == rows  # fine under the default cap
    monkeypatch.setenv("MMOE_PARSE_MEMORY_MB", "200")  # pandas itself starts in less; the strings need more
    again = tmp_path / "again.csv"  # a new file: probe answers each file once and remembers the answer
    again.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match=r"checking distinct\.csv needed more than this server's 200 MB .*MMOE_PARSE"):
        table_probe.probe(again, "distinct.csv")


def test_a_refused_upload_leaves_nothing_behind_and_says_why(tmp_path):
    data = io.StringIO()
    wide_text_table(300, 3).iloc[:, :2].to_csv(data, index=False)  # two columns: not a multi-task table
    with pytest.raises(ValueError, match="has 2 column"):
        store_upload(data.getvalue().encode(), tmp_path)
    assert list((tmp_path / "uploads").iterdir()) == []
