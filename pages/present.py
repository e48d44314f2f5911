"""Present: one run on one 1280×720 screen for a projector or a slide: large type, no sidebar, the loss curves,
MMoE's gate heatmap and the verdict. Opened from a run's "Present" link (`?run=<id>`); live runs keep moving."""

from __future__ import annotations

import streamlit as st

from mmoe_core.agreement_plots import sweep_curves
from mmoe_core.config import RunConfig
from mmoe_core.p_sweep import sweep_frame
from mmoe_core.plots import gate_heatmap, loss_curves
from mmoe_core.report import slide_config, slide_title
from mmoe_core.runs import RUN_ID
from mmoe_core.views import (
    curve_frame,
    gate_matrix,
    gate_specialisation,
    gated_models,
    model_label,
    n_tasks_of,
    progress_text,
    task_names,
    winner,
    winner_text,
)
from ui import keys
from ui.run_view import REFRESH_S, load_run
from ui.server import ensure_app_frame, get_store, page_path

FONT = 17  # figure text on a projector: readable from the back of a room at 1280×720
# Hide the sidebar, the top bar and the app's footer; larger type; the page starts at the top of the screen.
STYLE = """<style>
[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],[data-testid='stHeader'],
.st-key-app_footer{display:none !important}
.block-container,[data-testid='stMainBlockContainer']{padding:0.6rem 1.2rem 0 1.2rem !important;max-width:100% !important}
.st-key-present p,.st-key-present li{font-size:1.35rem}
.st-key-present h2{font-size:2rem;padding:0 0 .2rem 0}
</style>"""

ensure_app_frame()
st.html(STYLE)
query = st.query_params.get("run", "")
run_id = query if RUN_ID.match(query or "") else st.session_state.get(keys.RUN_ID)
row, state = load_run(run_id) if run_id else (None, None)
if row is None:
    st.title("Present")
    if query:
        st.warning(f"URL parameter run={query[:20]!r} ignored: there is no such run on this server.")
    st.info("Open a run first: on the Playground or the Runs page, press **Present** next to its downloads.")
    if page_path("playground"):
        st.page_link(page_path("playground"), label="Back to the Playground", icon=":material/science:")
    st.stop()
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id


def large(fig) -> None:
    """Projector type on every text of a figure (Streamlit's chart theme sets small tick labels otherwise)."""
    font = {"size": FONT}
    fig.update_layout(font=font, legend={"font": font}, title={"font": {"size": FONT + 1}})
    fig.update_xaxes(tickfont=font, title={"font": font})
    fig.update_yaxes(tickfont=font, title={"font": font})
    fig.update_annotations(font=font)
    for trace in fig.data:
        if trace.type == "heatmap":
            trace.textfont = font
            trace.colorbar.tickfont = font


def slide() -> None:
    """The one screen: heading with the verdict, curves left, MMoE's gates right. Redrawn while live."""
    row, state = load_run(run_id)
    if row is None:
        st.warning("This run was deleted.")
        return
    if st.session_state.get(keys.PRESENT_LIVE) and state.finished:  # just ended: redraw once without the timer
        st.session_state[keys.PRESENT_LIVE] = False
        st.rerun()
    config = RunConfig.from_json(row["config"])
    store = get_store()
    metrics, gates = store.metrics(run_id), store.gates(run_id)
    names = task_names(row, n_tasks_of(metrics, config))
    title = slide_title(config, run_id)
    with st.container(key="present"):
        head, exit_ = st.columns([6, 1], vertical_alignment="center")
        head.markdown(f"## {title}")
        if page_path("playground"):
            exit_.page_link(page_path("playground"), label="Exit", icon=":material/close:")
        verdict = winner_text(row.get("summary")) if state.finished and not config.sweep else None  # not over p
        icon = (
            ":material/emoji_events:" if winner(row.get("summary")) else ":material/balance:"
        )  # a trophy only for a winner
        st.markdown(f"{icon} **{verdict}**" if verdict else progress_text(state))
        if config.sweep:  # replicas are several p: the sweep chart across the screen
            fig = sweep_curves(sweep_frame(metrics, config), height=520)
            large(fig)
            st.plotly_chart(fig, key="present_sweep", config=slide_config(config, run_id, "sweep"))
            return
        left, right = st.columns([3, 2])
        fig = loss_curves(curve_frame(metrics), names, log_y=True, height=500, title=title)
        large(fig)
        left.plotly_chart(fig, key="present_loss", config=slide_config(config, run_id, "loss"))
        gated = gated_models(gates)
        model = "mmoe" if "mmoe" in gated else (gated[0] if gated else None)
        if model is None:
            right.info("No gated model in this run: nothing to route.")
            return
        matrix = gate_matrix(gates, model)
        spec = gate_specialisation(matrix)
        text = model_label(model) + (f" gates · task difference {spec:.2f}" if spec is not None else " gates")
        heat = gate_heatmap(matrix, names, title=text, height=120 + 70 * max(len(names), 1))
        large(heat)
        right.plotly_chart(heat, key="present_gates", config=slide_config(config, run_id, f"gates_{model}"))
        right.markdown(
            "White: even use of the experts (1/n). Orange: a task leans on that expert; blue: it avoids it. "
            "Different rows = the tasks route differently."
        )


st.session_state[keys.PRESENT_LIVE] = not state.finished
st.fragment(run_every=None if state.finished else REFRESH_S)(slide)()
