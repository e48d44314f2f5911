"""Runs: every stored run on this server, a page at a time (search by id, label or setting). Select one to see
its charts; run it again, open its settings in the Playground, download its files, or — if this browser owns
it (it started the run, or opened its owner link) — stop or delete it. Any run id opens from `?run=ID`."""

from __future__ import annotations

import math

import streamlit as st

from mmoe_core.hygiene import plain
from mmoe_core.runs import RUN_ID
from mmoe_core.runtime.jobs import QueueFull
from mmoe_core.views import config_summary, runs_table
from ui import keys
from ui.access import READ_ONLY, adopt_key, may_change, new_owner_key, owner_query, remember, source_refusal
from ui.controls import load_into_controls
from ui.run_view import REFRESH_S, load_run, show_run, show_status
from ui.server import ensure_app_frame, get_queue, get_store, page_path, requester

PAGE_ROWS = 100  # runs listed per page: the page reads only these from the store, however many are stored

ensure_app_frame()
st.title("Runs")
st.markdown(
    "Every run on this server, newest first: from the Playground, the Experiments page and the "
    "command line. Select a row to see its charts."
)

store = get_store()
url_run, url_key = st.query_params.get("run", ""), st.query_params.get("key", "")
if (url_run, url_key) != st.session_state.get(keys.RUNS_URL_SEEN):  # a link opened: once per address
    st.session_state[keys.RUNS_URL_SEEN] = (url_run, url_key)
    if url_key and not adopt_key(url_run, url_key):
        st.warning("URL parameter key ignored: it is not this run's owner key, so the run opens read-only.")
    if url_run and RUN_ID.match(url_run) and store.run(url_run) is not None:
        st.session_state[keys.RUNS_OPEN] = url_run
    elif url_run:
        st.warning("URL parameter run ignored: there is no such run on this server.")

counts = store.status_counts()
if not counts:
    st.info("No runs yet. Start one on the Playground.")
    if page_path("playground"):
        st.page_link(page_path("playground"), label="Go to the Playground", icon=":material/science:")
    st.stop()

statuses = sorted(counts)
f1, f2 = st.columns([3, 2], vertical_alignment="bottom")
shown = f1.pills(
    "Status",
    statuses,
    selection_mode="multi",
    default=statuses,
    key="runs_status",
    format_func=lambda s: f"{s} ({counts.get(s, 0):,})",
)
search = f2.text_input(
    "Search", key="runs_search", placeholder="run id, study:…, model or setting", max_chars=100
).strip()
chosen = tuple(shown or statuses)
n_match = store.count_runs(chosen, search)
n_pages = max(1, math.ceil(n_match / PAGE_ROWS))
if st.session_state.get("runs_page", 1) > n_pages:  # fewer matches than before: back to the last page
    st.session_state["runs_page"] = n_pages
page_no = 1
if n_pages > 1:
    page_no = int(st.number_input(f"Page (of {n_pages:,})", 1, n_pages, step=1, key="runs_page"))
view = runs_table(store.runs(limit=PAGE_ROWS, offset=(page_no - 1) * PAGE_ROWS, statuses=chosen, search=search))
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
        "Winner": st.column_config.TextColumn(
            "Winner", help="Named only when it beat every other model on every task over enough seeds (6 or more)"
        ),
        "Label corr.": st.column_config.NumberColumn(
            "Label corr.", format="%.3f", help="Measured correlation of the tasks' labels"
        ),
        "Rows/s": st.column_config.NumberColumn("Rows/s", format="%.0f"),
    },
)
first = (page_no - 1) * PAGE_ROWS
st.caption(
    f"Runs {first + 1 if len(view) else 0:,}–{first + len(view):,} of {n_match:,} matching "
    f"({sum(counts.values()):,} stored)."
)
picked = event.selection.rows if event is not None else []
if picked and picked[0] < len(view) and view.loc[picked[0], "Run"] != st.session_state.get(keys.RUNS_PICKED):
    st.session_state[keys.RUNS_PICKED] = st.session_state[keys.RUNS_OPEN] = view.loc[picked[0], "Run"]
opened = st.session_state.get(keys.RUNS_OPEN)
if opened and store.run(opened) is None:
    st.session_state.pop(keys.RUNS_OPEN, None)  # deleted meanwhile
    opened = None
ids = list(view["Run"])
if opened and opened not in ids:
    ids.insert(0, opened)  # a run from a link or an earlier page stays choosable
labels = {r.Run: f"{r.Run} · {r.Status} · {r.Configuration}" for r in view.itertuples()}
run_id = st.selectbox(
    "Open a run",
    ids,
    key=keys.RUNS_OPEN,
    format_func=lambda r: labels.get(r, r),
    index=None,
    placeholder="Select a row above or choose a run here",
)
if not run_id:
    st.stop()
wanted = owner_query(run_id)
if {k: st.query_params.get(k) for k in ("run", "key")} != {"run": run_id, "key": wanted.get("key")}:
    st.query_params["run"] = run_id
    if "key" in wanted:
        st.query_params["key"] = wanted["key"]
    else:
        st.query_params.pop("key", None)
    st.session_state[keys.RUNS_URL_SEEN] = (run_id, wanted.get("key", ""))


# ---------------------------------------------------------------------------------------------- one run
def rerun_config() -> None:
    """A new run of this config, owned by this session (whoever made the original)."""
    config = store.config(run_id)
    refusal = source_refusal(config.dataset)  # a command-line path, or someone else's upload
    if refusal:
        st.session_state[keys.RUNS_ERROR] = f"This run cannot be run again from the browser: {refusal}."
        return
    secret, key_hash = new_owner_key()
    try:
        new_id = get_queue().submit(config, **requester(), key_hash=key_hash)
    except QueueFull as exc:
        st.session_state[keys.RUNS_ERROR] = f"{exc}."
        return
    remember(new_id, secret)
    load_into_controls(config)
    st.session_state[keys.RUN_ID] = new_id
    st.session_state[keys.GO_PLAYGROUND] = True


def open_in_playground() -> None:
    load_into_controls(store.config(run_id))
    st.session_state[keys.RUN_ID] = run_id
    st.session_state[keys.GO_PLAYGROUND] = True


def stop_run() -> None:
    if may_change(store.run(run_id)):  # the button is disabled otherwise; checked again on the server
        get_queue().cancel(run_id)


def delete_run() -> None:
    if not may_change(store.run(run_id)):
        st.session_state[keys.RUNS_ERROR] = READ_ONLY.format(what="run")
        st.session_state[keys.RUNS_CLOSING] = True
        return
    store.delete_run(run_id)
    st.session_state.pop(keys.RUNS_OPEN, None)
    if st.session_state.get(keys.RUN_ID) == run_id:  # the Playground was watching it
        st.session_state.pop(keys.RUN_ID)
    st.query_params.pop("run", None)
    st.query_params.pop("key", None)
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
owned = may_change(row)
config = store.config(run_id)
st.subheader(f"Run {run_id}")
st.caption(plain(config_summary(config, row.get("summary") if row else None)))  # the dataset name is user text
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
        "Stop",
        icon=":material/stop:",
        on_click=stop_run,
        disabled=not owned,
        width="stretch",
        key="runs_stop",
        help=None if owned else READ_ONLY.format(what="run"),
    )
c4.button(
    "Delete",
    icon=":material/delete:",
    disabled=not (state.finished and owned),
    width="stretch",
    key="runs_delete",
    help=READ_ONLY.format(what="run")
    if not owned
    else ("Stop it first" if not state.finished else "Remove this run and its files"),
    on_click=lambda: st.session_state.update({keys.RUNS_CONFIRM: True}),
)
if not owned:
    st.caption(READ_ONLY.format(what="run"))
st.session_state.pop(keys.RUNS_CLOSING, None)  # a full run: no dialog is closing
if st.session_state.pop(keys.RUNS_CONFIRM, False):
    confirm_delete()
if st.session_state.get(keys.RUNS_ERROR):
    st.error(plain(st.session_state.pop(keys.RUNS_ERROR)))
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
