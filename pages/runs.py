"""Runs: every stored run on this server. Select one to see its charts; run it again, open its settings in the
Playground, download its files, or delete it."""

from __future__ import annotations

import streamlit as st

from mmoe_core.runtime.jobs import QueueFull
from mmoe_core.views import config_summary, runs_table
from ui import keys
from ui.controls import load_into_controls
from ui.run_view import REFRESH_S, load_run, show_run, show_status
from ui.server import ensure_app_frame, get_queue, get_store, page_path, session_owner

ensure_app_frame()
st.title("Runs")
st.markdown(
    "Every run on this server, newest first: from the Playground, the Experiments page and the "
    "command line. Select a row to see its charts."
)

store = get_store()
table = runs_table(store.runs())
if table.empty:
    st.info("No runs yet. Start one on the Playground.")
    if page_path("playground"):
        st.page_link(page_path("playground"), label="Go to the Playground", icon=":material/science:")
    st.stop()

statuses = sorted(table["Status"].unique())
shown = st.pills("Status", statuses, selection_mode="multi", default=statuses, key="runs_status")
view = table[table["Status"].isin(shown or statuses)].reset_index(drop=True)
event = st.dataframe(
    view,
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="runs_table",
    column_config={
        "Run": st.column_config.TextColumn("Run", width="small"),
        "Created": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
        "Configuration": st.column_config.TextColumn("Configuration", width="large"),
        "Best test loss": st.column_config.NumberColumn("Best test loss", format="%.4f"),
        "Label corr.": st.column_config.NumberColumn(
            "Label corr.", format="%.3f", help="Measured correlation of the tasks' labels"
        ),
        "Rows/s": st.column_config.NumberColumn("Rows/s", format="%.0f"),
    },
)
ids = list(table["Run"])
picked = event.selection.rows if event is not None else []
if picked and view.loc[picked[0], "Run"] != st.session_state.get(keys.RUNS_PICKED):
    st.session_state[keys.RUNS_PICKED] = st.session_state[keys.RUNS_OPEN] = view.loc[picked[0], "Run"]
if keys.RUNS_OPEN not in st.session_state and st.query_params.get("run") in ids:  # a shared link to one run
    st.session_state[keys.RUNS_OPEN] = st.query_params["run"]
if st.session_state.get(keys.RUNS_OPEN) not in ids:
    st.session_state.pop(keys.RUNS_OPEN, None)  # deleted meanwhile
labels = {r.Run: f"{r.Run} · {r.Status} · {r.Configuration}" for r in table.itertuples()}
run_id = st.selectbox(
    "Open a run",
    ids,
    key=keys.RUNS_OPEN,
    format_func=labels.get,
    index=None,
    placeholder="Select a row above or choose a run here",
)
if not run_id:
    st.caption(f"{len(table)} runs stored.")
    st.stop()
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id


# ---------------------------------------------------------------------------------------------- one run
def rerun_config() -> None:
    config = store.config(run_id)
    try:
        new_id = get_queue().submit(config, owner=session_owner())
    except QueueFull as exc:
        st.session_state[keys.RUNS_ERROR] = f"{exc}."
        return
    load_into_controls(config)
    st.session_state[keys.RUN_ID] = new_id
    st.session_state[keys.GO_PLAYGROUND] = True


def open_in_playground() -> None:
    load_into_controls(store.config(run_id))
    st.session_state[keys.RUN_ID] = run_id
    st.session_state[keys.GO_PLAYGROUND] = True


def delete_run() -> None:
    store.delete_run(run_id)
    st.session_state.pop(keys.RUNS_OPEN, None)
    if st.session_state.get(keys.RUN_ID) == run_id:  # the Playground was watching it
        st.session_state.pop(keys.RUN_ID)
    st.query_params.pop("run", None)
    st.session_state[keys.RUNS_CLOSING] = True


@st.dialog("Delete this run?")
def confirm_delete() -> None:
    if st.session_state.pop(keys.RUNS_CLOSING, False):  # deleted: close the dialog and redraw the page
        st.rerun()
    st.markdown(f"Run `{run_id}` and its curves, gate snapshots and weights will be removed for good.")
    a, b = st.columns(2)
    a.button("Delete", type="primary", width="stretch", key="runs_confirm_delete", on_click=delete_run)
    if b.button("Keep it", width="stretch", key="runs_keep"):
        st.rerun()


row, state = load_run(run_id)
config = store.config(run_id)
st.subheader(f"Run {run_id}")
st.caption(config_summary(config, row.get("summary") if row else None))
c1, c2, c3, c4 = st.columns(4)
c1.button(
    "Run again",
    icon=":material/replay:",
    on_click=rerun_config,
    width="stretch",
    key="runs_rerun",
    help="Queue the same configuration again and watch it in the Playground",
)
c2.button(
    "Open in Playground",
    icon=":material/tune:",
    on_click=open_in_playground,
    width="stretch",
    key="runs_open_pg",
    help="Load this run's settings into the Playground's controls and show its charts",
)
if not state.finished:
    c3.button(
        "Stop", icon=":material/stop:", on_click=get_queue().cancel, args=(run_id,), width="stretch", key="runs_stop"
    )
c4.button(
    "Delete",
    icon=":material/delete:",
    disabled=not state.finished,
    width="stretch",
    key="runs_delete",
    help="Stop it first" if not state.finished else "Remove this run and its files",
    on_click=lambda: st.session_state.update({keys.RUNS_CONFIRM: True}),
)
st.session_state.pop(keys.RUNS_CLOSING, None)  # a full run: no dialog is closing
if st.session_state.pop(keys.RUNS_CONFIRM, False):
    confirm_delete()
if st.session_state.get(keys.RUNS_ERROR):
    st.error(st.session_state.pop(keys.RUNS_ERROR))
if st.session_state.pop(keys.GO_PLAYGROUND, False) and page_path("playground"):
    st.switch_page(page_path("playground"))


def panel() -> None:
    r, s = load_run(run_id)
    show_status(r, s)
    show_run(run_id, key="runs", row=r, state=s)
    if st.session_state.get(keys.RUNS_LIVE) and s.finished:
        st.session_state[keys.RUNS_LIVE] = False
        st.rerun()


st.session_state[keys.RUNS_LIVE] = not state.finished
st.fragment(run_every=REFRESH_S if not state.finished else None)(panel)()
