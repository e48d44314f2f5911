"""Experiments: the paper's synthetic studies (Ma et al. 2018, §5) — correlations × models × seeds.

widgets -> Study -> one queued run per correlation × learning rate (all seeds batched) -> a fragment that redraws
the paper's Figs. 2, 4 and 5, the tables (ui/study_tables.py) and the claims. Only the study id is kept."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from mmoe_core.config import MODEL_KINDS, RunConfig
from mmoe_core.hygiene import plain
from mmoe_core.runs import check_run_id
from mmoe_core.studies.plots import curves_figure, label_correlation_figure, trainability_figure
from mmoe_core.studies.study import (
    BEST_LR,
    FINAL_COLUMNS,
    PAPER_LRS,
    PRESET_LABELS,
    PRESETS,
    Study,
    at_best_lr,
    best_lrs,
    curves,
    gap_table,
    list_studies,
    stop_study,
    study_progress,
    study_runs,
    submit_study,
    summary_table,
)
from mmoe_core.studies.teaching import quick_note
from mmoe_core.views import run_axes
from ui import keys
from ui.access import READ_ONLY, adopt_key, held_key, may_change_study, new_owner_key, remember, study_target
from ui.controls import KEEP, number_field
from ui.regime_view import regime_view
from ui.server import ensure_app_frame, get_queue, get_store, requester
from ui.study_tables import (
    choose_lr,
    claims_view,
    label_corr_grid,
    plural,
    run_frames,
    study_label_text,
    table_view,
)

REFRESH_S = 2.0  # a study's figures aggregate many seeds: redraw every 2 s, not every second
P = keys.EXP_PREFIX  # widget key prefix (ui/keys.py)
CORRELATION_OPTIONS = [-1.0, -0.5, 0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0]
LR_OPTIONS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
ROW_OPTIONS = [2_000, 5_000, 10_000, 20_000, 50_000, 100_000]
BASE_KEYS = (
    "seeds",
    "steps",
    "rows",
    "eval_rows",
    "batch_size",
    "n_experts",
    "expert_units",
    "tower_units",
    "sine_terms",
    "noise_std",
    "seed",
    "data_seed",
    "log_every",
)


# ---------------------------------------------------------------------------------------------- state
def preset_values(study: Study) -> dict[str, Any]:
    """Widget values (by key) that show `study`."""
    values = {P + k: getattr(study.base, k) for k in BASE_KEYS}
    values.update(
        {
            P + "correlations": list(study.correlations),
            P + "lrs": list(study.lrs),
            P + "models": list(study.base.models),
            P + "fixed_data": not study.base.independent_data,
            P + "row_sizes": list(study.row_sizes),
        }
    )
    return values


def show_in_sidebar(study: Study) -> None:
    """A linked study's settings in the sidebar (not the default preset beside another study), when the
    sidebar's choices can show them; the preset that matches it, if one does."""
    values = preset_values(study)
    if not (set(values[P + "correlations"]) <= set(CORRELATION_OPTIONS) and set(values[P + "lrs"]) <= set(LR_OPTIONS)):
        return
    st.session_state.update(values)
    match = [name for name, preset in PRESETS.items() if preset_values(preset) == values]
    if match:
        st.session_state[keys.EXP_PRESET] = match[0]


def apply_preset() -> None:
    st.session_state.update(preset_values(PRESETS[st.session_state[keys.EXP_PRESET]]))


def build_study() -> tuple[Study | None, str | None]:
    """The Study the widgets describe, or the message that names what to fix."""
    ss = st.session_state
    if not ss[P + "correlations"]:
        return None, "Choose at least one task correlation p."
    if not ss[P + "lrs"]:
        return None, "Choose at least one learning rate."
    if not ss[P + "models"]:
        return None, "Choose at least one model."
    try:
        base = PRESETS["default"].base.with_(
            **{k: ss[P + k] for k in BASE_KEYS},
            models=tuple(ss[P + "models"]),
            independent_data=not ss[P + "fixed_data"],
        )
        study = Study(
            correlations=tuple(sorted(ss[P + "correlations"])),
            lrs=tuple(sorted(ss[P + "lrs"])),
            base=base,
            row_sizes=tuple(sorted(ss.get(P + "row_sizes") or ())),
        )
    except (TypeError, ValueError) as exc:
        return None, f"{exc}."
    return study, None


def open_from_url() -> None:
    """Once per session: ?study=<id> (a shared link) opens that study."""
    if st.session_state.get(keys.EXP_URL_DONE):
        return
    st.session_state[keys.EXP_URL_DONE] = True
    sid, key = st.query_params.get("study", ""), st.query_params.get("key", "")
    if sid:
        try:
            check_run_id(sid)
            runs = study_runs(get_store(), sid)
            if runs.empty:
                raise ValueError("there is no such study on this server")
            st.session_state[keys.EXP_OPEN] = sid
            if key and not adopt_key(sid, key, study=True):
                st.session_state[keys.EXP_WARNING] = (
                    "URL parameter key ignored: it is not this study's owner key, so the study opens read-only"
                )
            show_in_sidebar(Study.from_configs([RunConfig.from_json(c) for c in runs["config"]]))
        except ValueError as exc:
            st.session_state[keys.EXP_WARNING] = f"URL parameter study={sid!r} ignored: {exc}"


# ---------------------------------------------------------------------------------------------- actions
def start() -> None:
    study, error = build_study()
    if error:
        st.session_state[keys.EXP_ERROR] = error
        return
    secret, key_hash = new_owner_key()
    try:
        study_id = submit_study(get_queue(), study, **requester(), key_hash=key_hash)
    except ValueError as exc:
        st.session_state[keys.EXP_ERROR] = f"{exc}."
        return
    remember(study_target(study_id), secret)
    st.session_state[keys.EXP_OPEN] = study_id


def stop(study_id: str) -> None:
    if not may_change_study(study_id, study_runs(get_store(), study_id)):  # the button is disabled otherwise
        return
    n = stop_study(get_queue(), get_store(), study_id)
    st.toast(f"Stopping {n} run{'s' * (n != 1)} of this study; finished results are kept.")


# ---------------------------------------------------------------------------------------------- controls
def controls() -> None:
    sb = st.sidebar
    sb.selectbox(
        "Preset",
        list(PRESETS),
        format_func=PRESET_LABELS.get,
        key=keys.EXP_PRESET,
        on_change=apply_preset,
        persist_state=KEEP,
        help="Fills in every setting below; then change any of them.",
    )
    sb.multiselect(
        "Task correlations p",
        CORRELATION_OPTIONS,
        key=P + "correlations",
        persist_state=KEEP,
        help="One run per value. The paper's Figs. 4 and 5 use 0.5, 0.9 and 1.0.",
    )
    sb.multiselect(
        "Learning rates (Adam)",
        LR_OPTIONS,
        key=P + "lrs",
        format_func=lambda v: f"{v:g}",
        persist_state=KEEP,
        help="One run per value and correlation. The paper tried " + ", ".join(f"{v:g}" for v in PAPER_LRS) + ".",
    )
    sb.pills(
        "Models",
        list(MODEL_KINDS),
        selection_mode="multi",
        key=P + "models",
        format_func=MODEL_KINDS.get,
        persist_state=KEEP,
        help="Trained side by side on the same mini-batches of the same data.",
    )
    sb.multiselect(
        "Training sizes (a regime map)",
        ROW_OPTIONS,
        key=P + "row_sizes",
        format_func=lambda n: f"{n:,} rows",
        persist_state=KEEP,
        help="Empty: one size, *Training rows* below. Several: one run per size × correlation × learning rate, "
        "and the page draws the regime map (when does MMoE help?).",
    )
    a, b = sb.columns(2)
    number_field("seeds", a, key_prefix=P, label="Seeds per run")
    number_field("steps", b, key_prefix=P)
    sb.checkbox(
        "Same data for every seed",
        key=P + "fixed_data",
        persist_state=KEEP,
        help="Off (the paper's protocol): each seed draws its own u1, u2, α, β, inputs and noise. "
        "On: one data draw, so only the initialisation varies between seeds.",
    )
    with sb.expander("More settings (paper sizes by default)"):
        c, d = st.columns(2)
        number_field("rows", c, key_prefix=P)
        number_field("eval_rows", d, key_prefix=P)
        number_field("batch_size", c, key_prefix=P)
        number_field("log_every", d, key_prefix=P)
        number_field("n_experts", c, key_prefix=P)
        number_field("expert_units", d, key_prefix=P)
        number_field("tower_units", c, key_prefix=P)
        number_field("sine_terms", d, key_prefix=P)
        number_field("noise_std", c, key_prefix=P)
        number_field("seed", d, key_prefix=P)
        number_field("data_seed", c, key_prefix=P)
        st.caption("Shared-Bottom's width matches MMoE's parameter count (113 units at the paper's sizes).")


def study_picker() -> str | None:
    studies = list_studies(get_store())
    if studies.empty:
        return None
    ids = studies["study_id"].tolist()
    if st.session_state.get(keys.EXP_OPEN) not in ids:
        st.session_state[keys.EXP_OPEN] = ids[0]
    info = studies.set_index("study_id")
    st.selectbox(
        "Study shown",
        ids,
        key=keys.EXP_OPEN,
        format_func=lambda s: study_label_text(info.loc[s]),
        help="Every study stored on this server, newest first. Its runs are also on the Runs page.",
    )
    st.session_state[keys.EXP_SHOWN_STATUS] = info.loc[st.session_state[keys.EXP_OPEN], "status"]
    return st.session_state[keys.EXP_OPEN]


def study_view(study_id: str) -> None:
    store = get_store()
    runs = study_runs(store, study_id)
    if runs.empty:
        st.warning("This study no longer exists (its runs were deleted). Start a new one.")
        return
    study = Study.from_configs([RunConfig.from_json(c) for c in runs["config"]])
    progress = study_progress(runs, time.time())
    if progress.status != st.session_state.get(keys.EXP_SHOWN_STATUS, progress.status):
        st.rerun()  # queued -> running -> done: redraw the whole page so "Study shown" says it
    base = study.base
    st.caption(
        f"Study `{study_id}` · "
        + (f"{plural(len(study.sizes), 'training size')} × " if len(study.sizes) > 1 else "")
        + f"{plural(len(study.correlations), 'correlation')} × "
        f"{plural(len(study.lrs), 'learning rate')} = {plural(len(runs), 'run')}, each training {', '.join(MODEL_KINDS[m] for m in base.models)} "
        f"× {base.seeds} seeds at once · {base.steps:,} steps of {base.batch_size} rows · "
        + ("each seed its own data draw" if base.independent_data else "one data draw for all seeds")
    )
    a, b = st.columns([5, 1], vertical_alignment="center")
    if progress.status == "done":
        a.success(progress.label)
    elif progress.finished:
        a.warning(f"{progress.label}. Results of the runs that finished or were stopped are shown.")
    else:
        a.progress(progress.fraction, text=progress.label)
        owned = may_change_study(study_id, runs)
        b.button(
            "Stop study",
            on_click=stop,
            args=(study_id,),
            icon=":material/stop:",
            key=P + "stop",
            width="stretch",
            disabled=not owned,
            help=None if owned else READ_ONLY.format(what="study"),
        )
        if not owned:
            st.caption(READ_ONLY.format(what="study"))
    for run in runs[runs["status"].isin(["failed", "interrupted"])].itertuples():
        st.error(
            f"Run `{run.id}` ({run_axes(RunConfig.from_json(run.config))}) {run.status}: "
            f"{(run.error or 'no message').splitlines()[0]}"
        )

    per_seed, finals = [], []
    for run in runs.to_dict("records"):
        row = {k: run[k] for k in ("id", "config", "correlation", "lr", "status")}
        curve, final = run_frames(str(store.home), row, run["status"], int(run["step"] or 0))
        per_seed.append(curve)
        if run["status"] in ("done", "cancelled"):
            finals.append(final)
    per_seed_df = pd.concat(per_seed, ignore_index=True)
    finals = [f for f in finals if not f.empty]
    final = pd.concat(finals, ignore_index=True) if finals else pd.DataFrame(columns=FINAL_COLUMNS)
    if len(study.sizes) > 1:  # a regime map: the paper's figures would mix training sizes
        regime_view(final, study.lrs[0])
        if st.session_state.get("_exp_live") and progress.finished:
            st.session_state["_exp_live"] = False
            st.rerun()
        return
    lr, judged = choose_lr(study, per_seed_df, final)
    summary, gaps = summary_table(judged), gap_table(judged)
    shown_curves, shown_final = per_seed_df, final
    if lr == BEST_LR:
        best = best_lrs(per_seed_df)
        shown_curves, shown_final = at_best_lr(per_seed_df, best), at_best_lr(final, best)

    claims_view(judged, lr)
    tab4, tab5, tab_table, tab2 = st.tabs(
        ["Average performance (Fig. 4)", "Trainability (Fig. 5)", "Summary table", "Label correlation (Fig. 2)"]
    )
    with tab4:
        log_y = st.toggle("Log scale", value=False, key=P + "log4")
        c = curves(shown_curves[shown_curves["lr"] == lr])
        st.plotly_chart(
            curves_figure(c, study.correlations, log_y=log_y, steps=base.steps),
            key=P + "fig4",
            config={"displaylogo": False},
        )
        st.caption(
            "Loss on each seed's held-out validation set (drawn like its test set), averaged over the two "
            "tasks: line = mean over seeds, band = ±1 sd. The axis is cut so the end of training is "
            "readable; the first steps' large losses run off the top (log scale shows them)."
        )
    with tab5:
        x, y = st.columns(2)
        kind = x.radio("Show as", ["violin", "histogram"], horizontal=True, key=P + "kind5")
        log5 = y.toggle(
            "Log scale",
            value=True,
            key=P + "log5",
            help="One bad seed can lose 30 times more than the rest; a log axis keeps both in view.",
        )
        st.plotly_chart(
            trainability_figure(shown_final[shown_final["lr"] == lr], study.correlations, kind=kind, log_y=log5),
            key=P + "fig5",
            config={"displaylogo": False},
        )
        st.caption(
            "Final test loss of every seed (averaged over tasks). A narrow distribution means the model "
            "trains reliably whatever its initialisation and data draw; the paper calls this trainability."
        )
    with tab_table:
        table_view(summary, gaps)
    with tab2:
        draws = min(base.seeds, 16)
        measured = runs[["correlation", "label_correlation"]].dropna().rename(columns={"correlation": "p"})
        st.plotly_chart(
            label_correlation_figure(label_corr_grid(base.to_json(), study.correlations, draws), measured),
            key=P + "fig2",
            config={"displaylogo": False},
        )
        st.caption(
            f"Pearson correlation of the two tasks' labels, mean ± 1 sd over {draws} draws of u1, u2, α, β "
            f"({base.sine_terms} sine terms, d = {base.input_dim}). The weight cosine p sets how related "
            "the tasks are; the sine terms make the labels less correlated than p."
        )
    if st.session_state.get(keys.EXP_LIVE) and progress.finished:  # the study just ended: stop polling
        st.session_state[keys.EXP_LIVE] = False
        st.rerun()


# ---------------------------------------------------------------------------------------------- page
ensure_app_frame()
for key, value in preset_values(PRESETS["default"]).items():  # first visit: the default study
    st.session_state.setdefault(key, value)
st.session_state.setdefault(keys.EXP_PRESET, "default")
open_from_url()

st.title("Experiments")
st.markdown(
    "Reproduce the paper's synthetic studies (Ma et al., KDD 2018, §5): train Shared-Bottom, OMoE and "
    "MMoE on many seeds at several task correlations, then compare their **average loss** and how "
    "**reliably** they train. Set the study in the sidebar and press **Start study**."
)
if keys.EXP_WARNING in st.session_state:
    st.warning(plain(st.session_state.pop(keys.EXP_WARNING)))
controls()
study, error = build_study()
if error:
    st.error(plain(error))
elif study is not None:
    n = len(study.configs())
    st.caption(
        f"**Start study** queues {plural(n, 'run')} ({plural(len(study.correlations), 'correlation')} × "
        f"{plural(len(study.lrs), 'learning rate')}); each trains {len(study.base.models)} models × "
        f"{study.base.seeds} seeds at once for {study.base.steps:,} steps. The default study takes a few "
        "minutes on an idle 2-core CPU, the paper-scale one about half an hour; a busy server takes longer."
    )
    if st.session_state.get(P + "preset") == "quick":
        st.caption(quick_note(study.base.seeds))
b1, b2 = st.columns([1, 4], vertical_alignment="center")
b1.button(
    "Start study",
    type="primary",
    on_click=start,
    disabled=study is None,
    icon=":material/play_arrow:",
    key=P + "start",
    width="stretch",
)
if st.session_state.get(keys.EXP_ERROR):
    b2.error(st.session_state.pop(keys.EXP_ERROR))

study_id = study_picker()
if study_id is None:
    st.info(
        "No study yet. Press **Start study** (the Quick look preset finishes in about a minute), or run one "
        "from a terminal: `python -m mmoe_core sweep --seeds 32 --json study.json`."
    )
else:
    secret = held_key(study_target(study_id))
    if st.query_params.get("study") != study_id or st.query_params.get("key") != secret:
        st.query_params["study"] = study_id  # the owner's address keeps its key; a viewer's has none
        if secret:
            st.query_params["key"] = secret
        else:
            st.query_params.pop("key", None)
    live = not study_progress(study_runs(get_store(), study_id), time.time()).finished
    st.session_state[keys.EXP_LIVE] = live
    st.fragment(run_every=REFRESH_S if live else None)(study_view)(study_id)
