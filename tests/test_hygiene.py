"""Protects output and text hygiene (issue 14, item 5): CSV cells a spreadsheet would run as formulas are
neutralised (text only: negative numbers stay numbers), user text shows as plain text on a page, UTF-16 and
UTF-8-with-BOM tables are read, and an input that copies a target is flagged before training."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mmoe_core.data.csv_read import read_csv_bytes
from mmoe_core.data.csv_table import check_choice
from mmoe_core.hygiene import csv_safe, dot_label, plain
from mmoe_core.views import metrics_csv, model_dot

EVIL = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]

ROOT = Path(__file__).resolve().parents[1]


def table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south"], n),
            "spend": rng.normal(50, 10, n).round(2),
            "churn": rng.choice(["yes", "no"], n),
        }
    )


# ---------------------------------------------------------------------------------------------- CSV injection
def test_metrics_csv_neutralises_formula_task_names_but_keeps_negative_numbers():
    metrics = pd.DataFrame(
        {
            "model": ["mmoe"] * 2,
            "step": [0, 10],
            "replica": [0, 0],
            "task": [0, 1],
            "split": ["val", "val"],
            "metric": ["loss", "loss"],
            "value": [-1.5, 2.0],
        }
    )
    out = pd.read_csv(io.BytesIO(metrics_csv(metrics, [EVIL[0], "-2+3"])), keep_default_na=False)
    assert list(out["task_name"]) == ["'=cmd|' /C calc'!A0", "'-2+3"]
    assert list(out["value"]) == [-1.5, 2.0]  # numbers are numbers, not text to neutralise


def test_every_formula_start_is_neutralised_in_cells_and_column_names():
    frame = pd.DataFrame({"=HYPERLINK(1)": EVIL, "n": [-1, 2, -3, 4, 5, -6]})
    safe = csv_safe(frame)
    assert list(safe.columns) == ["'=HYPERLINK(1)", "n"]
    assert all(v.startswith("'") for v in safe.iloc[:, 0]) and list(safe["n"]) == [-1, 2, -3, 4, 5, -6]
    assert list(frame.iloc[:, 0]) == EVIL  # the caller's frame is left alone


# ---------------------------------------------------------------------------------------------- plain text
def test_markdown_in_user_text_is_escaped_character_for_character():
    text = "![x](https://evil.example/p.png) [click](javascript:alert(1)) **b** :material/home: $x$ <b>"
    escaped = plain(text)
    assert re.search(r"(?<!\\)[\[\]$*`]", escaped) is None, escaped  # every markup character is escaped
    assert "\\:material/home:" in escaped and "\\:x" not in plain("a: x")  # icons, but not prose colons
    assert escaped.replace("\\", "") == text  # nothing is lost, only escaped
    assert plain("1. first") == "1\\. first" and plain("- item") == "\\- item"  # no list from a name


def test_a_dataset_with_markdown_in_its_name_shows_as_plain_text_on_the_playground(mmoe_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["data_source"] = {
        "dataset": "x.csv",
        "targets": ("a", "b"),
        "label": "![pwn](https://evil.example/p.png) [click](https://evil.example)",
    }
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    shown = [m.value for m in at.sidebar.info] + [c.value for c in at.caption]
    assert any("evil" in s for s in shown)
    assert not any("![" in s for s in shown) and any("\\[click\\]" in s for s in shown), shown


def test_dot_labels_cannot_break_out_of_their_quotes():
    from mmoe_core.config import RunConfig
    from mmoe_core.models.zoo import build_spec

    evil = 'x"; URL="javascript:alert(1)'
    dot = model_dot(build_spec("mmoe", RunConfig()), [evil, "b"])
    assert dot_label(evil) in dot and 'x"; URL' not in dot


# ---------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_utf16_and_bom_tables_are_read(encoding):
    df = table()
    df.insert(0, "Größe", df.pop("age"))  # a non-ASCII header survives too
    data = df.to_csv(index=False).encode(encoding)
    back = read_csv_bytes(data, "t.csv")
    assert list(back.columns) == list(df.columns) and back.shape == df.shape
    assert back["region"].tolist() == df["region"].tolist()


def test_a_real_binary_file_is_still_refused():
    with pytest.raises(ValueError, match="not CSV text"):
        read_csv_bytes(b"PK\x03\x04" + bytes(range(256)) * 40, "book.xlsx")


# ---------------------------------------------------------------------------------------------- leakage
def test_an_input_that_copies_a_target_is_flagged_and_an_honest_one_is_not():
    df = table()
    honest = check_choice(df, ["spend", "churn"])
    assert honest.warnings == []
    df["spend_copy"] = df["spend"] * 2 + 1  # numeric copy
    df["churned"] = df["churn"].map({"yes": "Y", "no": "N"})  # text copy
    flagged = check_choice(df, ["spend", "churn"])
    assert len(flagged.warnings) == 2
    assert "'spend_copy' has correlation +1.000 with target 'spend'" in flagged.warnings[0]
    assert "'churned' (value " in flagged.warnings[1] and "with target 'churn'" in flagged.warnings[1]


def test_the_data_page_warns_about_a_copied_target_before_training(mmoe_home):
    df = table(400)
    df["spend_copy"] = -df["spend"]
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=180).run()
    at.radio(key="data_choice").set_value("csv").run()
    at.file_uploader(key="csv_upload").set_value(("leak.csv", df.to_csv(index=False).encode(), "text/csv")).run()
    at.multiselect(key="csv_targets").set_value(["spend", "churn"]).run()
    assert not at.exception, [e.message for e in at.exception]
    warnings = [w.value.replace("\\", "") for w in at.warning]
    assert any("'spend_copy' has correlation -1.000 with target 'spend'" in w for w in warnings), warnings
