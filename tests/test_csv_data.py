"""Protects the user's-CSV path: every bad table gets a clear message, targets are detected and encoded,
inputs are preprocessed on the training rows without target leakage, more than two tasks train, and the
config, load_data and the CLI accept a CSV data set."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmoe_core.cli import main as cli_main
from mmoe_core.config import RunConfig
from mmoe_core.data import dataset_defaults, load_data
from mmoe_core.data.csv_read import read_csv_bytes, read_csv_path
from mmoe_core.data.csv_table import (
    check_choice,
    column_summary,
    detect_kind,
    encode_target,
    load_csv,
)
from mmoe_core.data.sources import resolve, store_upload
from mmoe_core.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_data"


def table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small mixed table: two numeric and one text input, a regression and two binary targets."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame(
        {
            "a": a,
            "b": b,
            "color": color,
            "spend": 3 * a + (color == "red") + rng.normal(0, 0.1, n) + 100,
            "churn": np.where(a + b > 0, "yes", "no"),
            "flag": (b > 0.5).astype(int),
        }
    )


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def write(tmp_path: Path, df: pd.DataFrame, name: str = "t.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- bad tables: one clear message each
@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4, "not CSV text"),
        (b"a,b,c\n1,2,3\n4,5\n6,7,8,9,10\n" + b"1,2,3\n" * 200, "not a well-formed CSV"),
        (b"a,b,c\n" + b"1,2,3\n" * 99, "99 data rows; at least 100"),
        (b"only_one_column\n" + b"1\n" * 200, "1 column"),
    ],
    ids=["empty", "blank", "binary", "ragged", "99-rows", "one-column"],
)
def test_bad_bytes_are_refused_with_a_reason(data, message):
    with pytest.raises(ValueError, match=message):
        read_csv_bytes(data, "upload.csv")


def test_size_row_and_column_limits_name_their_environment_variable(monkeypatch):
    data = csv_bytes(table(300))
    monkeypatch.setenv("MMOE_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(ValueError, match=r"upload limit of 0\.001 MB \(MMOE_MAX_UPLOAD_MB\)"):
        read_csv_bytes(data)
    monkeypatch.delenv("MMOE_MAX_UPLOAD_MB")
    monkeypatch.setenv("MMOE_MAX_ROWS", "250")
    with pytest.raises(ValueError, match=r"300 rows, over this server's limit of 250 \(MMOE_MAX_ROWS\)"):
        read_csv_bytes(data)
    monkeypatch.delenv("MMOE_MAX_ROWS")
    monkeypatch.setenv("MMOE_MAX_COLUMNS", "5")
    with pytest.raises(ValueError, match=r"6 columns, over this server's limit of 5 \(MMOE_MAX_COLUMNS\)"):
        read_csv_bytes(data)
    monkeypatch.delenv("MMOE_MAX_COLUMNS")
    assert read_csv_bytes(data).shape == (300, 6)


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = write(tmp_path, table(300))
    monkeypatch.setenv("MMOE_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(ValueError, match="MMOE_MAX_UPLOAD_MB"):
        read_csv_path(path)
    with pytest.raises(ValueError, match="no such file"):
        read_csv_path(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match=r"does not end in \.csv"):
        read_csv_path(tmp_path / "data.xlsx")


@pytest.mark.parametrize(
    "targets, kinds, message",
    [
        (["spend", "const"], (), r"target 'const' has one class only \(7 in every row\)"),
        (["spend", "color"], (), r"target 'color' is text with 3 distinct values"),
        (["spend", "empty"], (), "target 'empty' has no values"),
        (["spend", "a"], ("auto", "binary"), "target 'a' has 300 distinct values; a binary target needs exactly two"),
        (["spend", "churn"], ("auto", "regression"), "target 'churn' is text; a regression target must be numeric"),
        (["spend"], (), "needs two or more target columns"),
        (["spend", "nope"], (), "column 'nope' is not in the table"),
        (["spend", "churn"], ("auto",), "task_kinds has 1 entries for 2 targets"),
    ],
)
def test_bad_target_choices_are_refused_with_a_reason(targets, kinds, message):
    df = table().assign(const=7, empty=np.nan)
    with pytest.raises(ValueError, match=message):
        check_choice(df, targets, (), kinds)


def test_a_target_listed_as_an_input_is_refused():
    with pytest.raises(ValueError, match="column 'churn' is both a target and an input"):
        check_choice(table(), ["spend", "churn"], ["a", "churn"])


def test_missing_values_are_dropped_or_filled_and_reported(tmp_path):
    df = table(400)
    df.loc[:9, "spend"] = np.nan  # 10 rows without a target: dropped
    df.loc[20:49, "a"] = np.nan  # numeric input gaps: training median
    df.loc[50:59, "color"] = np.nan  # text input gaps: own category
    data = load_csv(write(tmp_path, df), ["spend", "churn"])
    assert data.n_train + data.x_val.shape[1] + data.x_test.shape[1] == 390
    for split in ("train", "val", "test"):
        assert torch.isfinite(getattr(data, f"x_{split}")).all()
        assert torch.isfinite(getattr(data, f"y_{split}")).all()
    assert "10 rows with a missing target were dropped" in data.description
    assert "40 missing input values: numbers take the training median" in data.description
    assert "color=(missing)" in data.feature_names


# ---------------------------------------------------------------- targets
def test_task_kinds_are_detected_and_binary_values_named():
    df = table()
    assert [detect_kind(df[c]) for c in ("spend", "churn", "flag")] == ["regression", "binary", "binary"]
    y, note = encode_target(df["churn"], "binary")
    assert note == "churn: 1 = 'yes', 0 = 'no'"
    np.testing.assert_array_equal(y, (df["churn"] == "yes").to_numpy(float))
    y, note = encode_target(pd.Series([3.5, 7.0, 3.5, np.nan], name="v"), "binary")
    assert note == "v: 1 = 7.0, 0 = 3.5" and np.isnan(y[3]) and y[:3].tolist() == [0, 1, 0]
    summary = column_summary(df).set_index("column")["as target"].to_dict()
    assert summary == {
        "a": "regression",
        "b": "regression",
        "color": "no",
        "spend": "regression",
        "churn": "binary",
        "flag": "binary",
    }


# ---------------------------------------------------------------- preprocessing
def test_inputs_exclude_the_targets_and_are_fitted_on_training_rows_only(tmp_path):
    df = table(500).assign(leak=lambda d: d["flag"] * 1.0)  # an exact copy of a target under another name
    data = load_csv(write(tmp_path, df), ["spend", "churn", "flag"], features=["a", "b", "color"])
    assert data.feature_names == ["a", "b", "color=blue", "color=green", "color=red"]
    assert not any(name.split("=")[0] in ("spend", "churn", "flag", "leak") for name in data.feature_names)
    x = data.x_train[0]
    torch.testing.assert_close(x[:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)  # scaled on train
    torch.testing.assert_close(x[:, :2].std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert x[:, 2:].sum(1).eq(1).all()  # one-hot: exactly one colour per row
    assert data.x_test[0, :, :2].mean(0).abs().max() > 1e-3  # test rows were not used for the scaling
    spend = data.y_train[0, :, 0]
    assert abs(float(spend.mean())) < 1e-5 and abs(float(spend.std(unbiased=False)) - 1) < 1e-4


def test_split_is_80_10_10_reproducible_and_the_label_correlation_is_measured_on_train(tmp_path):
    path = write(tmp_path, table(1000))
    a, b = load_csv(path, ["spend", "churn"], data_seed=3), load_csv(path, ["spend", "churn"], data_seed=3)
    c = load_csv(path, ["spend", "churn"], data_seed=4)
    assert (a.n_train, a.x_val.shape[1], a.x_test.shape[1]) == (800, 100, 100)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    y = a.y_train[0].double().numpy()
    assert a.label_correlation == [pytest.approx(np.corrcoef(y[:, 0], y[:, 1])[0, 1])]


def test_inputs_too_big_for_memory_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("MMOE_MAX_DATA_BYTES", "1e4")
    message = r"inputs would take 0\.01 MB \(6 after one-hot encoding\).*limit of 0\.01 MB \(MMOE_MAX_DATA_BYTES\)"
    with pytest.raises(ValueError, match=message):
        load_csv(write(tmp_path, table(600)), ["spend", "churn"])


def test_rare_text_values_share_one_input(tmp_path):
    df = table(600).assign(user_id=[f"u{i}" for i in range(600)])  # an ID column: 600 distinct values
    data = load_csv(write(tmp_path, df), ["spend", "churn"])
    ids = [n for n in data.feature_names if n.startswith("user_id=")]
    assert len(ids) == 64 and ids[-1] == "user_id=(other)"


# ---------------------------------------------------------------- more than two tasks, end to end
def test_three_tasks_of_both_kinds_train_through_load_data(tmp_path):
    path = write(tmp_path, table(600))
    config = RunConfig(
        dataset=str(path),
        targets=("spend", "churn", "flag"),
        models=("shared_bottom", "mmoe"),
        steps=40,
        batch_size=64,
        lr=1e-2,
        log_every=20,
        seeds=2,
    )
    data = load_data(config)
    assert data.task_kinds == ["regression", "binary", "binary"] and data.y_train.shape == (1, 480, 3)
    results = Trainer(config, data, device="cpu").run()
    for res in results.values():
        assert res.status == "done" and res.test_loss.shape == (2, 3)
        assert np.isnan(res.test_auc[:, 0]).all() and (res.test_auc[:, 1] > 0.8).all()


def test_cli_trains_a_csv_and_reports_auc_per_task(tmp_path, monkeypatch):
    monkeypatch.setenv("MMOE_HOME", str(tmp_path / "home"))
    path, out = write(tmp_path, table(500)), tmp_path / "out.json"
    rc = cli_main(
        [
            "train",
            "--dataset",
            str(path),
            "--targets",
            "churn,flag",
            "--steps",
            "60",
            "--batch-size",
            "64",
            "--lr",
            "0.01",
            "--models",
            "mmoe",
            "--quiet",
            "--no-store",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    mmoe = json.loads(out.read_text())["models"]["mmoe"]
    assert len(mmoe["test_auc"]) == 2 and all(0.8 < v <= 1.0 for v in mmoe["test_auc"])
    assert mmoe["test_auc_mean"] == pytest.approx(sum(mmoe["test_auc"]) / 2)


def test_cli_names_the_missing_targets(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMOE_HOME", str(tmp_path / "home"))
    rc = cli_main(["train", "--dataset", str(write(tmp_path, table())), "--steps", "5", "--quiet", "--no-store"])
    assert rc == 2 and "needs two or more target columns" in capsys.readouterr().err


# ---------------------------------------------------------------- config, uploads, defaults
def test_config_accepts_csv_paths_and_column_lists():
    c = RunConfig(dataset="data/my table.csv", targets="a, b", task_kinds=["auto", "binary"])
    assert c.targets == ("a", "b") and c.task_kinds == ("auto", "binary")
    assert RunConfig.from_json(c.to_json()) == c  # the command line's path round-trips through JSON
    from_link, warnings = RunConfig.from_query(c.to_query())  # ... but a link may not name a server file
    assert from_link == c.with_(dataset="synthetic") and "cannot name a file on the server" in warnings[0]
    for bad, message in [
        ({"dataset": "data.parquet"}, "dataset='data.parquet' is unknown"),
        ({"targets": "a,a"}, "names a column twice"),
        ({"task_kinds": "binary,classes"}, "task_kinds='classes' is unknown"),
        ({"targets": ",".join("abcdefghi")}, "names 9 columns; allowed 2 to 8"),
    ]:
        with pytest.raises(ValueError, match=message):
            RunConfig(**bad)


def test_uploads_are_stored_under_a_random_id_never_by_name_or_content_hash(tmp_path):
    data = csv_bytes(table())
    name = store_upload(data, tmp_path)
    path = resolve(name, tmp_path).path
    assert name.startswith("upload:") and path == tmp_path / "uploads" / f"{name[7:]}.csv"
    assert path.read_bytes() == data
    again = store_upload(data, tmp_path)  # the same bytes: a new id that says nothing about the contents
    assert again != name and hashlib.sha256(data).hexdigest()[:16] not in (name, again)
    with pytest.raises(ValueError, match="is empty"):
        store_upload(b"", tmp_path)
    assert len(list((tmp_path / "uploads").iterdir())) == 2  # a refused file leaves nothing behind


@pytest.mark.parametrize("rows", [100, 1_000, 20_000, 400_000])
def test_recommended_settings_are_a_valid_config(rows):
    d = dataset_defaults("x.csv", rows)
    RunConfig(dataset="x.csv", **d)
    n_train = int(0.8 * rows)
    assert 300 <= d["steps"] <= 3_000 and d["log_every"] <= d["steps"] // 20
    assert d["batch_size"] <= max(16, n_train // 10)


@pytest.mark.parametrize(
    "name, targets",
    [
        ("synthetic_p05.csv", ("task_1", "task_2")),
        ("customers.csv", ("monthly_spend", "churned", "upgraded")),
        ("census_sample.csv", ("income_over_50k", "never_married")),
    ],
)
def test_sample_tables_load_as_documented(name, targets):
    readme = (SAMPLES / "README.md").read_text()
    assert name in readme and all(t in readme for t in targets)
    data = load_csv(SAMPLES / name, targets)
    assert data.n_tasks == len(targets) and data.n_train >= 800
