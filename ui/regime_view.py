"""The Experiments page's view of a regime map (a study over several training sizes): the heatmap of MMoE's
paired wins against Shared-Bottom and OMoE per (rows, p) cell, one sentence of reading per region, and the table.
Pure drawing over mmoe_core.studies.regime; the page decides when to show it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mmoe_core.studies.plots import regime_heatmap
from mmoe_core.studies.regime import regime_table, region_readings
from mmoe_core.studies.stats import fmt as fmt_signed

KEY = "exp_regime_"


def regime_view(final: pd.DataFrame, lr: float) -> None:
    """Draw the map of one learning rate's per-seed final losses (study.final_losses, with a rows column)."""
    st.markdown("**When does MMoE help?** Task correlation p across, training rows down.")
    table = regime_table(final[final["lr"] == lr]) if not final.empty else regime_table(final)
    st.plotly_chart(regime_heatmap(table), key=KEY + "map", config={"displaylogo": False})
    st.caption(
        "Each cell: the seeds on which MMoE's final test loss was below the other model's, out of the seeds run "
        "(each seed its own data; both models saw the same data and batches). Blue: MMoE won most seeds; red: "
        "it lost most. ✓ MMoE helps (the 95% sign-test interval of the median gap lies below zero), ✗ it hurts "
        "(above zero), · too close to call. A diverged seed counts as a loss for its model."
    )
    if table.empty:
        return
    for other, name in (("shared_bottom", "Shared-Bottom"), ("omoe", "OMoE")):
        readings = region_readings(table, other)
        if readings:
            st.markdown(f"**Reading the map: MMoE against {name}**")
            st.markdown("\n".join(f"- {s}" for s in readings))
    shown = table.assign(
        median=table["median"].map(fmt_signed), lo=table["lo"].map(fmt_signed), hi=table["hi"].map(fmt_signed)
    )
    with st.expander("Every cell"):
        st.dataframe(
            shown,
            hide_index=True,
            key=KEY + "table",
            column_config={
                "rows": st.column_config.NumberColumn("training rows", format="%d"),
                "correlation": st.column_config.NumberColumn("p", format="%g"),
                "other": st.column_config.TextColumn("MMoE against"),
                "median": st.column_config.TextColumn("median gap", help="MMoE − other; negative: MMoE better"),
                "lo": st.column_config.TextColumn("95% from", help="Sign-test interval of the median gap"),
                "hi": st.column_config.TextColumn("to"),
                "win_rate": st.column_config.NumberColumn("MMoE won", format="percent"),
                "failed_mmoe": st.column_config.NumberColumn("MMoE failed"),
                "failed_other": st.column_config.NumberColumn("other failed"),
                "verdict": st.column_config.TextColumn("MMoE better?"),
            },
        )
