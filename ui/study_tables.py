"""A study's data, tables and verdicts on the Experiments page: cached reads of its runs, the learning rate shown,
the paper's claims judged, the summary and paired-gap tables. Figures and progress stay in pages/experiments.py."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from mmoe_core.config import MODEL_KINDS, RunConfig
from mmoe_core.runs import RunStore
from mmoe_core.studies.claims import check_claims
from mmoe_core.studies.stats import fmt as fmt_signed
from mmoe_core.studies.study import BEST_LR, Study, at_best_lr, best_lrs, label_correlations, run_results
from ui import keys

P = keys.EXP_PREFIX  # the Experiments page's widget key prefix
VERDICT_COLOR = {"holds": "green", "too close to call": "orange", "contradicted": "red", "not enough data": "gray"}


def study_label_text(row: pd.Series) -> str:
    ps = "/".join(f"{p:g}" for p in row["correlations"])
    lrs = "/".join(f"{v:g}" for v in row["lrs"])
    when = time.strftime("%d %b %H:%M", time.localtime(row["created"]))
    return f"{when} · p {ps} · lr {lrs} · {row['seeds']} seeds × {row['steps']:,} steps · {row['status']}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


@st.cache_data(max_entries=256, show_spinner=False)
def run_frames(home: str, run: dict, status: str, step: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's curves and final losses; a finished run's never change, so they are read once."""
    return run_results(RunStore(home), run)


@st.cache_data(max_entries=16, show_spinner=False)
def label_corr_grid(base_json: str, correlations: tuple[float, ...], draws: int) -> pd.DataFrame:
    base = RunConfig.from_json(base_json)
    grid = sorted({0.0, 0.2, 0.4, 0.6, 0.8, 1.0} | set(correlations))
    return label_correlations(base, grid, draws=draws, rows=1_000)


def choose_lr(study: Study, per_seed: pd.DataFrame, final: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """The learning rate the figures show (or BEST_LR), and the per-seed final losses of every rate plus each
    model's best (relabelled lr = BEST_LR) that the tables and claims read."""
    if len(study.lrs) == 1:
        return study.lrs[0], final
    options = [*study.lrs, BEST_LR]
    lr = st.radio(
        "Learning rate shown",
        options,
        index=len(options) - 1,
        horizontal=True,
        key=P + "lr_shown",
        format_func=lambda v: "each model's best" if v == BEST_LR else f"{v:g}",
        help="The paper tuned Adam's learning rate per model. *Each model's best* picks, per model and "
        "correlation, the rate with the lowest median validation loss over seeds, a diverged seed counting as "
        "the worst; the test numbers then report it.",
    )
    best = best_lrs(per_seed)
    if lr == BEST_LR and len(best):
        st.caption(
            "Chosen on validation: "
            + "; ".join(
                f"p = {p:g}: "
                + ", ".join(
                    f"{MODEL_KINDS[m]} {v:g}" + (f" ({f} of {n} seeds diverged)" if f else "")
                    for m, v, f, n in zip(g["model"], g["lr"], g["failed"], g["seeds"])
                )
                for p, g in best.groupby("correlation")
            )
        )
    return lr, pd.concat([final, at_best_lr(final, best)], ignore_index=True)


def claims_view(final: pd.DataFrame, lr: float) -> None:
    st.markdown("**The paper's claims, checked on this study**")
    claims = check_claims(final, lr)
    lines = [
        f"- :{VERDICT_COLOR[c.verdict]}-badge[{c.verdict}] {c.claim}  \n  <small>{c.detail}</small>" for c in claims
    ]
    st.markdown("\n".join(lines), unsafe_allow_html=True)
    st.caption(
        "Judged on paired per-seed gaps: the median gap and its 95% interval (sign test; a bootstrap for the "
        "trend and the spread). *Holds*: the interval excludes zero in the claimed direction; *contradicted*: it "
        "excludes zero the other way; *too close to call*: zero is inside, so more seeds would be needed. A "
        "diverged seed counts as a loss for its model."
    )


def table_view(summary: pd.DataFrame, gaps: pd.DataFrame) -> None:
    if summary.empty:
        st.info("The table fills in as each correlation's run finishes.")
        return

    def lr_text(v: float) -> str:
        return "each model's best" if v == BEST_LR else f"{v:g}"

    s = summary.assign(model=summary["model"].map(MODEL_KINDS), lr=summary["lr"].map(lr_text))
    gaps = gaps.assign(lr=gaps["lr"].map(lr_text), lo=gaps["lo"].map(fmt_signed), hi=gaps["hi"].map(fmt_signed))
    fmt = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(
        s,
        hide_index=True,
        key=P + "summary",
        column_config={
            "correlation": st.column_config.NumberColumn("p", format="%g"),
            "median": st.column_config.NumberColumn("median", format="%.4f", help="Median over seeds that trained"),
            "mean": fmt,
            "sd": fmt,
            "min": fmt,
            "max": fmt,
            "seeds": st.column_config.NumberColumn("seeds", help="Seeds with a finite final loss"),
            "diverged": st.column_config.NumberColumn(
                "diverged", help="Seeds whose loss became NaN/inf: counted here, never averaged in"
            ),
        },
    )
    st.markdown(
        "**Gaps between models** (paired by seed: both models saw the same data and batches; "
        "negative = the first model has the lower loss; a diverged seed is a loss for its model)"
    )
    st.dataframe(
        gaps,
        hide_index=True,
        key=P + "gaps",
        column_config={
            "correlation": st.column_config.NumberColumn("p", format="%g"),
            "median": st.column_config.NumberColumn("median gap", format="%.4f"),
            "lo": st.column_config.TextColumn("95% from", help="Sign-test interval of the median gap"),
            "hi": st.column_config.TextColumn("to"),
            "wins": st.column_config.NumberColumn(
                "first wins", help="Seeds on which the first model had the lower loss"
            ),
            "win_rate": st.column_config.NumberColumn("win rate", format="%.2f", help="A tie counts half"),
            "failed_a": st.column_config.NumberColumn("first failed", help="Seeds the first model diverged on"),
            "failed_b": st.column_config.NumberColumn("second failed", help="Seeds the second model diverged on"),
            "p_value": st.column_config.NumberColumn("sign test p", format="%.3g"),
            "verdict": st.column_config.TextColumn("first is better?"),
        },
    )
