"""A p-sweep run (RunConfig.sweep) drawn from the store: each measure against p, live, and its numbers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mmoe_core.agreement_plots import sweep_curves
from mmoe_core.config import RunConfig
from mmoe_core.p_sweep import sweep_frame, sweep_table
from mmoe_core.runtime.jobs import RunState
from mmoe_core.views import model_label


def show_sweep(metrics: pd.DataFrame, config: RunConfig, state: RunState, version: tuple, key: str) -> None:
    """The paper's Fig. 4 in one chart, with why: loss, gate task difference and routing specialisation
    against p, each at the latest recorded step, a band of ±1 sd over the seeds."""
    from .run_view import cached_figure  # run_view imports this module

    frame = sweep_frame(metrics, config)
    at = int(frame["at_step"].max()) if len(frame) else 0
    when = "final" if state.finished else f"live, step {at:,} of {config.steps:,}"
    st.markdown(f"**The sweep** · each point: the latest recorded value ({when}) at that p")
    fig = cached_figure(version + ("sweep",), lambda: sweep_curves(frame))
    st.plotly_chart(fig, key=f"{key}_sweep")
    band = f"mean over {config.seeds} seeds, band ±1 sd; " if config.seeds > 1 else ""
    st.caption(
        f"Lines: {band}seed s sees the same inputs, α, β and basis at every p, so only the angle between the "
        "tasks changes along a line. Read it as the paper does: the less related the tasks (lower p), the more "
        "Shared-Bottom's loss rises against MMoE's (with few seeds and steps the bands overlap: read the trend). "
        "Why: the tasks' gradients on the shared layer agree less as p falls, and least in MMoE, whose two gates "
        "differ more and lean on the experts that carry their own task (S > 0). OMoE's one gate gives every task "
        "the same mix, so its task difference and S are 0 at every p."
        + (
            " CGC's and PLE's task gates differ by construction (each alone reaches its own task's experts), so "
            "read their gate line's trend along p, not its level; S is not defined for experts in levels."
            if {"cgc", "ple"} & set(config.models)
            else ""
        )
    )
    table = sweep_table(frame)
    if len(table):
        table["model"] = table["model"].map(model_label)
        with st.expander("The numbers behind the chart"):
            st.dataframe(table, hide_index=True, key=f"{key}_sweep_table")
