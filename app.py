"""MMoE Playground: the Streamlit entry point. Run with `streamlit run app.py`.

It sets the page frame, routes to the pages that exist (Experiments and Data may land later) and shows
the server's queue in the sidebar. All training happens in background workers (mmoe_core.runtime.jobs).
"""

from __future__ import annotations

import sqlite3
import sys
import traceback

import streamlit as st

from mmoe_core.hygiene import plain
from mmoe_core.store_faults import StoreError
from ui.access import admin_box, locked, password_gate
from ui.server import get_store, page_path

PAGES = [  # file stem, title, icon; the first is the default
    ("playground", "Playground", ":material/science:"),
    ("experiments", "Experiments", ":material/stacked_line_chart:"),
    ("data", "Data", ":material/table:"),
    ("runs", "Runs", ":material/history:"),
    ("compare", "Compare", ":material/compare_arrows:"),
    ("lesson", "Lesson", ":material/co_present:"),
    ("learn", "Learn", ":material/school:"),
    ("present", "Present", ":material/slideshow:"),
]
HIDDEN = {"present"}  # reached from a run's "Present" button, not from the navigation bar

st.set_page_config(
    page_title="MMoE Playground",
    page_icon="🧪",  # an emoji: the browser draws it (a :material/ icon is fetched from a font CDN, failing offline)
    layout="wide",
    initial_sidebar_state="auto",  # collapsed on a phone, where it would cover most of the screen
    menu_items={"About": "MMoE Playground: multi-task learning with mixtures of experts, after Ma et al., KDD 2018."},
)


def store_problem(exc: BaseException) -> None:
    """The page says what is wrong and how to fix it; the server log gets the path and the traceback."""
    detail = getattr(exc, "detail", str(exc))
    print(f"mmoe run store: {detail}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    if isinstance(exc, StoreError):
        st.error(f"{plain(str(exc))}.", icon=":material/error:")
    else:
        st.error(
            "The run store cannot be read or written (the server log has the details). If its file is "
            "damaged, restart the server: it moves the damaged file aside and starts a fresh one.",
            icon=":material/error:",
        )


pages = [
    st.Page(path, title=title, icon=icon, default=i == 0, visibility="hidden" if stem in HIDDEN else "visible")
    for i, (stem, title, icon) in enumerate(PAGES)
    if (path := page_path(stem))
]
page = st.navigation(pages, position="hidden" if locked() else "top")
password_gate()  # MMOE_PASSWORD: nothing below runs for a session that has not typed it
admin_box()
# Streamlit's own "Running… Stop" badge stops a page redraw, not training: hidden so it is not mistaken for
# the Playground's Stop button. The Playground's chart-library warm-up: out of the layout, never seen.
st.html(
    "<style>[data-testid='stStatusWidget']{display:none}"
    ".st-key-pg_chart_warmup{position:absolute;left:-10000px;width:600px;visibility:hidden;pointer-events:none}"
    "</style>"
)
try:
    page.run()
    store = get_store()
    if store.notice:  # a damaged store was replaced at start-up: every visitor is told once
        st.warning(plain(store.notice) + ".", icon=":material/warning:")
    with st.container(key="app_footer"):  # the Present page hides it
        st.divider()
        running = store.with_status("running")
        paused = sum(r["paused_since"] is not None for r in running)
        st.caption(
            f"Server queue: {len(running) - paused} running, {f'{paused} paused, ' if paused else ''}"
            f"{len(store.queued())} waiting · "
            "MMoE Playground, after Ma et al., *Modeling Task Relationships in Multi-task Learning with "
            "Multi-gate Mixture-of-Experts*, KDD 2018."
        )
except (StoreError, sqlite3.Error, OSError) as exc:  # the store's folder or file: one message with the fix
    store_problem(exc)
