"""Compare: several stored runs on one chart (p = 0.2 against p = 0.9, or two learning rates), labelled by the
settings that differ, with their final test results side by side. A link `?compare=id1,id2,…` opens a
comparison; ids are checked against the store (mmoe_core.compare.parse_compare_ids)."""

from __future__ import annotations

import streamlit as st

from mmoe_core.config import MODEL_KINDS, RunConfig
from mmoe_core.plots import model_order
from mmoe_core.run_compare import (
    MAX_COMPARED,
    compare_curves,
    compare_results,
    differing_fields,
    parse_compare_ids,
    run_labels,
)
from mmoe_core.views import config_summary, curve_frame, n_tasks_of, runs_table, task_names
from ui import keys
from ui.server import ensure_app_frame, get_store, page_path

PICK = keys.CMP_RUNS

ensure_app_frame()
st.title("Compare runs")
st.markdown(
    f"Choose up to {MAX_COMPARED} stored runs: their validation curves share one chart, each run in its own "
    "colour and named by the settings that differ; each model has its own line style."
)

store = get_store()
table = runs_table(store.runs())
if table.empty:
    st.info("No runs yet. Start one on the Playground, then come back to compare.")
    st.stop()
ids = list(table["Run"])
describe = {r.Run: f"{r.Run} · {r.Status} · {r.Configuration}" for r in table.itertuples()}

if PICK not in st.session_state:  # first visit: the link's runs
    chosen, warnings = parse_compare_ids(st.query_params.get("compare", ""), known=ids)
    st.session_state[PICK] = chosen
    for text in warnings:
        st.warning(f"URL parameter compare: {text}.")
st.session_state[PICK] = [r for r in st.session_state[PICK] if r in ids]  # deleted meanwhile
picked = st.multiselect(
    "Runs to compare",
    ids,
    key=PICK,
    format_func=describe.get,
    max_selections=MAX_COMPARED,
    placeholder="Choose two or more runs",
)
link = ",".join(picked)
if st.query_params.get("compare", "") != link:
    if link:
        st.query_params["compare"] = link
    else:
        st.query_params.pop("compare", None)
if len(picked) < 2:
    st.caption("Pick at least two runs. Tip: on the Runs page, note the ids; a link `?compare=id1,id2` opens them.")
    if page_path("runs"):
        st.page_link(page_path("runs"), label="See every stored run", icon=":material/history:")
    st.stop()

configs = {rid: store.config(rid) for rid in picked}
sweeps = [rid for rid, c in configs.items() if c.sweep]
if sweeps:  # its replicas are several p: curves averaged over them would mix tasks of different relatedness
    st.warning(
        f"Left out: {', '.join(sweeps)} (a p-sweep, whose chart against p is on its own page, `/?run=ID`). "
        "Compare runs trained at one p each."
    )
    picked = [rid for rid in picked if rid not in sweeps]
    configs = {rid: configs[rid] for rid in picked}
    if len(picked) < 2:
        st.stop()
labels = run_labels(configs)
diff = differing_fields(list(configs.values()))
if diff:
    st.markdown("**Settings that differ:** " + ", ".join(f"`{d}`" for d in diff))
else:
    st.info("These runs have the same settings: re-runs of one configuration, told apart by their ids.")

metrics = {rid: store.metrics(rid) for rid in picked}
rows = {rid: store.run(rid) or {} for rid in picked}
k = max(n_tasks_of(metrics[rid], configs[rid]) for rid in picked)
names = task_names(rows[picked[0]], k)
present = model_order({m for df in metrics.values() if len(df) for m in df["model"].unique()})
a, b = st.columns([3, 1], vertical_alignment="center")
shown = a.pills(
    "Models",
    present,
    selection_mode="multi",
    default=["mmoe"] if "mmoe" in present else present[:1],
    format_func=lambda m: MODEL_KINDS.get(m, m),
    key=keys.CMP_MODELS,
)
log_y = b.toggle("Log scale", value=True, key="cmp_log")
curves = {rid: curve_frame(metrics[rid], splits=("val",)) for rid in picked}
fig = compare_curves(curves, labels, names, models=shown or present, log_y=log_y)
st.plotly_chart(fig, key="cmp_chart", config={"displaylogo": False})
st.caption("Solid, dashed, dotted: the models in the paper's order. Lines: mean over each run's seeds.")

st.markdown("**Final test results**")
results = compare_results({rid: rows[rid].get("summary") for rid in picked}, labels, names)
if results.empty:
    st.caption("None of these runs has finished yet.")
else:
    results = results[results["Model"].isin([MODEL_KINDS.get(m, m) for m in (shown or present)])]
    fmt = {c: st.column_config.NumberColumn(c, format="%.4f") for c in results.columns if "loss" in c}
    st.dataframe(results, hide_index=True, key="cmp_results", column_config=fmt)
with st.expander("Each run's full settings"):
    for rid in picked:
        st.text(f"{rid} · {labels[rid]}\n{config_summary(configs[rid])}")
    st.caption(f"Defaults for reference: {config_summary(RunConfig())}")
