"""Data: choose what the models learn from — the paper's synthetic tasks, Census-Income, or your own CSV.

widgets -> a dict of RunConfig values in st.session_state[keys.DATA_SOURCE] (the Playground merges it into its
config) and the recommended training settings on the Playground's controls. Data is named by source id
(mmoe_core.data.sources), never by path: uploads are checked, stored as $MMOE_HOME/uploads/<random id>.csv and
named upload:<id>, which only this browser session may train on; sample tables are sample:<file>.csv.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from mmoe_core.config import MODEL_KINDS, RunConfig, field_names
from mmoe_core.data import census, dataset_defaults, table_probe
from mmoe_core.data.csv_read import MIN_ROWS, max_columns, max_rows, max_upload_bytes
from mmoe_core.data.csv_table import TableChoice
from mmoe_core.data.sources import resolve, samples, store_upload
from mmoe_core.hygiene import plain
from mmoe_core.runs import default_home
from mmoe_core.source_names import display_name, sample_name
from ui.access import grant_upload, source_refusal

try:
    from ui import keys
    from ui.server import ensure_app_frame, page_path
except ImportError:  # the page opened on its own (streamlit run pages/data.py): ui/ is not on the path
    import importlib.util

    _spec = importlib.util.spec_from_file_location("ui_keys", Path(__file__).resolve().parents[1] / "ui" / "keys.py")
    keys = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(keys)

    def page_path(name: str) -> str | None:
        return None

    def ensure_app_frame() -> None:
        return None


ensure_app_frame()
CHOICES = {
    "synthetic": ("Synthetic tasks (paper §3.2)", "Two regression tasks whose correlation you set on the Playground."),
    "census1": (
        "Census-Income, group 1 (paper §6.3)",
        "Real survey data, 299,285 people. Tasks: income > $50K · never married.",
    ),
    "census2": ("Census-Income, group 2 (paper §6.3)", "Same people. Tasks: has a college degree · never married."),
    "csv": ("Your own CSV", "Upload a table, then pick two or more columns to predict."),
}
KIND_LABELS = {"auto": "auto", "regression": "regression (MSE)", "binary": "binary (BCE, AUC)"}


# ---------------------------------------------------------------------------------------------- helpers
# The table itself never enters this process: a child parses it under a memory cap (table_probe) and answers
# with small JSON (shape, first rows, column summary, the checked choice), which is what is cached here.
@st.cache_data(max_entries=16, show_spinner="Reading the table…")
def read_table(path: str, size: int, name: str) -> dict:  # size: a changed file is a new cache entry
    return table_probe.probe(path, name)


@st.cache_data(max_entries=32, show_spinner="Checking the columns…")
def check(path: str, size: int, name: str, targets: tuple, features: tuple, kinds: tuple) -> TableChoice:
    return TableChoice(**table_probe.check(path, list(targets), list(features), list(kinds), name=name))


def use_source(source: dict | None, defaults: dict) -> None:
    """Store the choice for the Playground and put the recommended settings on its controls."""
    if source is None:
        st.session_state.pop(keys.DATA_SOURCE, None)
    else:
        st.session_state[keys.DATA_SOURCE] = source
    for key, value in defaults.items():
        st.session_state[key] = list(value) if isinstance(value, tuple) else value
    st.session_state[keys.DATA_USED] = True


def current_label() -> str:
    source = st.session_state.get(keys.DATA_SOURCE)
    if not isinstance(source, dict) or source.get("dataset", "synthetic") == "synthetic":
        return CHOICES["synthetic"][0]
    return source.get("label") or display_name(source["dataset"])


def go_to_playground() -> None:
    st.success(f"The Playground now trains on **{plain(current_label())}**. Press **Start** there.")
    try:
        st.page_link(page_path("playground") or "", label="Open the Playground", icon=":material/science:")
    except StreamlitAPIException:  # this page opened on its own, outside app.py's navigation
        st.caption("Open the Playground page to train.")


def settings_text(defaults: dict) -> str:
    """'400 steps of 1,024 rows, learning rate 0.003, ...' for the recommended training settings."""
    d = defaults
    parts = []
    if "models" in d:
        parts.append(", ".join(MODEL_KINDS[m] for m in d["models"]))
    if "n_experts" in d:
        parts.append(f"{d['n_experts']} experts of {d['expert_units']} units, towers of {d['tower_units']}")
    parts.append(
        f"{d['steps']:,} steps of {d['batch_size']:,} rows, learning rate {d['lr']:g}, "
        f"a point every {d['log_every']} steps"
    )
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------- sources
def synthetic_panel() -> None:
    st.markdown(
        "The paper's controlled experiment: inputs x ~ N(0, I), two regression tasks built from weight "
        "vectors with cosine **p**. You set p, the rows and the noise on the Playground's sidebar."
    )
    st.button("Train on synthetic tasks", type="primary", key="use_synthetic", on_click=use_source, args=(None, {}))
    if st.session_state.pop(keys.DATA_USED, False):
        go_to_playground()


def census_panel(base: str) -> None:
    tasks = census.GROUPS[base]
    strict = st.toggle(
        "Strict inputs",
        key=f"strict_{base}",
        help="Also leave out the answers that state marital status (household and family status, household "
        "summary, tax filer status). With the paper's inputs, household status alone predicts never married "
        "with AUC 0.978, so every model scores about 0.994 on that task.",
    )
    group = base + census.STRICT if strict else base
    rates = " · ".join(f"**{t}** ({census.POSITIVE_RATE[t]:.1%} yes)" for t in tasks)
    st.markdown(
        f"UCI Census-Income (KDD): US survey records from 1994–95.\n"
        f"- **Tasks**, both yes/no, scored by AUC (1.0 is perfect, 0.5 is guessing): {rates}\n"
        f"- **Rows**, split as in the paper: {census.ROWS['train']:,} for training; the test file halved into "
        f"{census.ROWS['val']:,} for validation and {census.ROWS['test']:,} for test\n"
        f"- **Inputs**: {census.INPUT_DIMS[group]} after one-hot encoding the survey's answers; the columns "
        "that define the targets are left out"
        + (", and the answers that state marital status" if strict else " (the paper's inputs)")
    )
    st.caption(f"Data: {census.CITATION}.")
    try:
        census.data_files()
    except ValueError as exc:
        st.error(f"{exc}.")
        return
    defaults = dataset_defaults(group)
    st.markdown(
        f"**Recommended training**: {settings_text(defaults)}. The button sets these on the Playground; "
        "change them there."
    )
    label = f"Census-Income group {base[-1]}{', strict inputs' if strict else ''} ({' · '.join(tasks)})"
    source = {"dataset": group, "n_tasks": 2, "input_dim": census.INPUT_DIMS[group], "label": label}
    st.button(
        f"Train on Census-Income group {base[-1]}",
        type="primary",
        key=f"use_{base}",
        on_click=use_source,
        args=(source, defaults),
    )
    if st.session_state.pop(keys.DATA_USED, False):
        go_to_playground()
    st.caption("The first run prepares the data (tens of seconds) and caches it; later runs start at once.")


def pick_file() -> tuple[str, str] | None:
    """(source id, display name) of the uploaded or sample table, or None."""
    up, sample = st.columns([3, 2])
    uploaded = up.file_uploader(
        "Upload a CSV",
        type=["csv"],
        key="csv_upload",
        max_upload_size=max(1, math.ceil(max_upload_bytes() / 1e6)),
        help=f"Comma-separated text with a header row; {MIN_ROWS} to {max_rows():,} rows, up to {max_columns()} "
        f"columns and {max_upload_bytes() / 1e6:g} MB.",
    )
    name = sample.selectbox(
        "…or try a sample table",
        [""] + samples(),
        key="csv_sample",
        format_func=lambda s: s or "(none)",
        help="Small tables in sample_data/ (see its README): try one to see how the upload path works.",
    )
    if uploaded is not None:
        if st.session_state.get(keys.UPLOAD_ID) != uploaded.file_id:  # check and store each new upload once
            st.session_state[keys.UPLOAD_ID] = uploaded.file_id
            try:
                source_id = store_upload(uploaded.getvalue(), default_home())
                st.session_state[keys.UPLOAD] = (source_id, Path(uploaded.name).name)  # the name is shown only
                grant_upload(source_id, Path(uploaded.name).name)  # this session, and no other, may train on it
            except ValueError as exc:
                st.session_state[keys.UPLOAD] = None
                st.session_state[keys.UPLOAD_ERROR] = str(exc)
        if st.session_state.get(keys.UPLOAD) is None:
            st.error(plain(f"{st.session_state.get(keys.UPLOAD_ERROR, 'This file cannot be used')}."))
            return None
        return st.session_state[keys.UPLOAD]
    if name:
        return sample_name(name), name
    return None


def csv_panel() -> None:
    picked = pick_file()
    if picked is None:
        st.info(
            "Upload a CSV or pick a sample. Each column you choose as a target becomes one task: a "
            "column with two values is a **binary** task (scored by AUC), a numeric column a "
            "**regression** task (scored by mean squared error)."
        )
        return
    source_id, name = picked
    try:
        if refusal := source_refusal(source_id):
            raise ValueError(refusal)
        path = str(resolve(source_id, default_home()).path)
        size = Path(path).stat().st_size
        info = read_table(path, size, name)
    except (OSError, ValueError) as exc:  # e.g. the stored upload was deleted meanwhile
        st.error(plain(f"{name} cannot be read: {exc}. Upload it again."))
        return
    columns = info["columns"]
    st.markdown(f"**{plain(name)}**: {info['rows']:,} rows × {len(columns)} columns")
    head = pd.DataFrame(info["head"]["data"], columns=pd.Index(info["head"]["columns"], dtype=object))
    st.dataframe(head, hide_index=True)
    with st.expander("Columns: type, distinct values, missing values, use as a target"):
        st.dataframe(pd.DataFrame(info["summary"]), hide_index=True)

    st.markdown("**1. What should the models predict?** Pick two or more target columns, one task each.")
    targets = st.multiselect(
        "Target columns", columns, key="csv_targets", max_selections=8, placeholder="Choose 2 to 8 columns"
    )
    kinds = []
    if targets:
        cols = st.columns(min(len(targets), 4))
        for i, t in enumerate(targets):
            auto = f"auto: {info['kinds'].get(t, 'not usable')}"
            kinds.append(
                cols[i % len(cols)].selectbox(
                    f"Task kind of {plain(t)}",
                    list(KIND_LABELS),
                    key=f"csv_kind:{t}",
                    format_func=lambda k, auto=auto: auto if k == "auto" else KIND_LABELS[k],
                    help="Auto: a column with exactly two values is binary, any other numeric column regression.",
                )
            )
    st.markdown(
        "**2. Which columns may the models see?** Every other column is an input unless you leave it "
        "out here (leave out IDs and anything that gives a target away)."
    )
    left_out = st.multiselect(
        "Leave out of the inputs",
        [c for c in columns if c not in targets],
        key="csv_left_out",
        placeholder="Nothing left out",
    )
    if len(targets) < 2:
        st.warning("Choose at least two target columns: multi-task learning needs two or more tasks.")
        return
    features = [c for c in columns if c not in targets and c not in left_out]
    try:
        choice = check(path, size, name, tuple(targets), tuple(features), tuple(kinds))
    except ValueError as exc:
        st.error(plain(f"{exc}."))
        return
    st.markdown("**3. Check and train**")
    a, b, c = st.columns(3)
    a.metric("Tasks", ", ".join(f"{t} ({k})" for t, k in zip(choice.targets, choice.kinds)), border=True)
    b.metric("Inputs after one-hot", f"{choice.n_inputs:,}", help=f"from {len(choice.features)} columns", border=True)
    c.metric(
        "Label correlation",
        f"{choice.label_correlation:+.2f}",
        border=True,
        help="Pearson correlation of the first two targets on the training rows (80% of the table).",
    )
    for note in choice.notes:
        st.caption(plain(note))
    for warning in choice.warnings:  # an input that copies a target: say so before anyone trains on it
        st.warning(plain(f"{warning}."), icon=":material/warning:")
    source = choice.source(source_id, label=f"{name} ({', '.join(choice.targets)})", all_features=not left_out)
    defaults = dataset_defaults(source_id, info["rows"])
    try:
        RunConfig(**{k: v for k, v in {**source, **defaults}.items() if k in field_names()})
    except ValueError as exc:
        st.error(plain(f"{exc}."))
        return
    st.button("Train on this table", type="primary", key="use_csv", on_click=use_source, args=(source, defaults))
    if st.session_state.pop(keys.DATA_USED, False):
        go_to_playground()
    st.caption(
        "Rows are shuffled (data seed) and split 80/10/10 into training, validation and test; inputs are "
        f"scaled and one-hot encoded on the training rows only. Recommended training for this size, set on "
        f"the Playground by the button: {settings_text(defaults)}."
    )


# ---------------------------------------------------------------------------------------------- page
st.title("Data")
st.markdown(
    "Choose what the models learn from; the **Playground** then races them on it with the same live "
    f"curves and gate heatmaps. Now training on: **{plain(current_label())}**."
)
source_now = st.session_state.get(keys.DATA_SOURCE) or {}
start = source_now.get("dataset", "synthetic").removesuffix(census.STRICT)
st.session_state.setdefault(keys.DATA_CHOICE, start if start in CHOICES else "csv")
choice = st.radio(
    "Data source",
    list(CHOICES),
    key=keys.DATA_CHOICE,
    format_func=lambda c: CHOICES[c][0],
    captions=[CHOICES[c][1] for c in CHOICES],
)
st.divider()
if choice == "synthetic":
    synthetic_panel()
elif choice in census.GROUPS:
    census_panel(choice)
else:
    csv_panel()
