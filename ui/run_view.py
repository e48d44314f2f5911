"""One run drawn from the store: status, live curves, gate heatmaps, results and downloads. Figures are cached
by what they depend on, so a live view that asks every second stays cheap.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from mmoe_core.agreement_plots import agreement_curves, specialisation_curves
from mmoe_core.config import RunConfig
from mmoe_core.expert_map import expert_map
from mmoe_core.gradients import task_pairs
from mmoe_core.hygiene import plain
from mmoe_core.plots import gate_evolution, gate_heatmap, loss_curves, model_order
from mmoe_core.report import run_report, slide_config, slide_title
from mmoe_core.runtime.jobs import RunState, run_state
from mmoe_core.source_names import display_name
from mmoe_core.specialisation import reading
from mmoe_core.views import (
    curve_frame,
    gate_matrix,
    gate_specialisation,
    gated_models,
    metrics_csv,
    model_label,
    n_tasks_of,
    point_count,
    progress_text,
    results_table,
    task_names,
    winner,
    winner_text,
)

from .access import may_read_error
from .server import get_store, page_path
from .sweep_view import show_sweep

REFRESH_S = 1.0  # how often a live view re-reads the run store
SECONDARY_S = 3.0  # how often, while a run is live, its gate and diagnostics charts are redrawn
_FIGURE_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_FIGURE_LOCK = threading.Lock()


def secondary_version(run_id: str, state: RunState, *final: Any) -> tuple:
    """Cache key of the charts beside the loss curves (gates, diagnostics) while a run is live: it changes
    every SECONDARY_S seconds, not with every point. Redrawing five Plotly charts every second kept a browser
    core 95% busy (60% at one redraw per 3 s); the loss curves still move every second. Once the run has ended
    the key is `final` (what the figures depend on), so the last state is always drawn."""
    if state.finished:
        return (run_id, "final", *final)
    return (run_id, "live", int(time.monotonic() // SECONDARY_S))


def cached_figure(key: tuple, build: Callable[[], Any]) -> Any:
    """Reuse a figure while its data has not changed: a live view asks every second, points come every few
    seconds. `key` must name everything the figure depends on (run id, row counts, options)."""
    with _FIGURE_LOCK:
        if key in _FIGURE_CACHE:
            _FIGURE_CACHE.move_to_end(key)
            return _FIGURE_CACHE[key]
    fig = build()
    with _FIGURE_LOCK:
        _FIGURE_CACHE[key] = fig
        while len(_FIGURE_CACHE) > 64:
            _FIGURE_CACHE.popitem(last=False)
    return fig


def load_run(run_id: str) -> tuple[dict | None, RunState]:
    store = get_store()
    row = store.run(run_id)
    pos = store.queue_position(run_id) if row and row["status"] == "queued" else None
    return row, run_state(row, pos)


def show_status(row: dict | None, state: RunState) -> None:
    """Progress while queued or running; one clear line once it has ended."""
    if row is None:
        st.warning("This run no longer exists (it was deleted). Press Start for a new one.")
        return
    if not state.finished:
        st.progress(state.fraction, text=progress_text(state))
        return
    summary = row.get("summary") or {}
    took = f" in {summary['seconds']:.1f} s" if summary.get("seconds") else ""
    if state.status == "done":
        st.success(f"Finished {state.total_steps:,} steps{took} on {row.get('device') or 'the server'}.")
    elif state.status == "cancelled":
        why = f" ({plain(state.error)})" if state.error and "paused" in state.error else ""  # the pause limit
        st.info(f"Stopped at step {state.step:,} of {state.total_steps:,}{why}. The curves so far are kept.")
    elif state.status == "failed" and not may_read_error(row):  # the message may quote a private table
        st.error("The run failed. It trained on private data, so only its owner sees the message.")
    elif state.status == "failed":
        st.error(plain(f"The run failed: {(state.error or 'unknown error').splitlines()[0]}"))
    else:
        st.warning(plain(state.error or f"This run ended as {state.status}."))


def show_run(run_id: str, key: str, row: dict | None = None, state: RunState | None = None) -> int:
    """Everything the store knows about one run, as figures. Safe to call every second. Returns how many
    points have been recorded."""
    store = get_store()
    if row is None or state is None:
        row, state = load_run(run_id)
    if row is None:
        return 0
    config = RunConfig.from_json(row["config"])
    metrics, gates, models = store.metrics(run_id), store.gates(run_id), store.models(run_id)
    names = task_names(row, n_tasks_of(metrics, config))

    c1, c2, c3, c4 = st.columns(4)
    if config.sweep:
        c1.metric("Task correlation p (swept)", f"{min(config.sweep):g} to {max(config.sweep):g}")
    elif config.dataset == "synthetic":
        c1.metric("Task correlation p (set)", f"{config.correlation:g}")
        corr_help = "Pearson correlation of the two tasks' training labels. The sine terms make it lower than p."
    else:
        c1.metric("Data", display_name(config.dataset))
        corr_help = "Pearson correlation of the first two tasks' training labels."
    corr = row.get("label_correlation")
    if config.sweep:
        c2.metric(
            "p values × seeds", f"{len(config.sweep)} × {config.seeds}", help="Models of each kind trained at once"
        )
    else:
        c2.metric("Label correlation (measured)", "…" if corr is None else f"{corr:.3f}", help=corr_help)
    c3.metric("Recorded points", f"{point_count(metrics)}")
    c4.metric("Rows / s", "…" if not row.get("rows_per_s") else f"{row['rows_per_s']:,.0f}")

    if config.sweep:  # every other view averages over replicas, which here are several p: one chart instead
        show_sweep(metrics, config, state, (run_id, len(metrics), tuple(names)), key)
        downloads(run_id, row, metrics, names, key)
        return point_count(metrics)
    labels = {
        m.model: f"{model_label(m.model)} · {int(m.params):,} params"
        for m in models.itertuples()
        if m.params is not None
    }
    left, right = st.columns([1, 3], vertical_alignment="center")
    metric = "loss"
    if (metrics["metric"] == "auc").any():  # binary tasks: AUC curves too
        metric = (
            right.segmented_control(
                "Curves",
                ["loss", "auc"],
                default="loss",
                key=f"{key}_metric",
                format_func={"loss": "Loss", "auc": "Validation AUC"}.get,
                label_visibility="collapsed",
            )
            or "loss"
        )
    log_y = left.toggle(
        "Log scale", value=True, key=f"{key}_log", help="Loss curves on a log axis", disabled=metric != "loss"
    )
    version = (run_id, len(metrics), len(gates), tuple(names))  # the store only appends while a run lives
    slow = secondary_version(run_id, state, len(gates), tuple(names))
    log_y = log_y and metric == "loss"
    title = slide_title(config, run_id)
    fig = cached_figure(
        version + ("loss", metric, log_y, tuple(sorted(labels.items()))),
        lambda: loss_curves(
            curve_frame(metrics, metric=metric), names, log_y=log_y, labels=labels, metric=metric, title=title
        ),
    )
    st.plotly_chart(fig, key=f"{key}_loss", config=slide_config(config, run_id, "loss"))
    if metric == "auc":
        st.caption("Validation AUC of each binary task: higher is better.")
    elif config.seeds > 1:
        st.caption(
            f"Lines: mean over {config.seeds} seeds; bands: ±1 standard deviation. "
            "Dashed: training loss, solid: validation loss."
        )
    else:
        st.caption("Dashed: training loss (mean since the previous point), solid: validation loss.")
    if labels:
        st.caption(
            "Legend counts: every trainable parameter, biases and gates included. The count shown before Start "
            "and the results' *Paper count* follow the paper (§5.1): expert and tower weights only."
        )

    show_agreement(metrics, names, version, key)
    show_specialisation(metrics, version, key)
    gated = gated_models(gates)
    if gated:
        st.markdown(
            f"**Gate weights** · mean over a fixed validation batch, seed {config.seed} (the first of "
            f"{config.seeds}). Each row sums to 1; white = even use (1/n), orange = more, blue = less."
            if config.seeds > 1
            else f"**Gate weights** · mean over a fixed validation batch, seed {config.seed}. Each row sums to 1; "
            "white = even use (1/n), orange = more, blue = less."
        )
        step = replay_step(gates, state, key)
        cols = st.columns(len(gated))
        for col, model in zip(cols, gated):
            col.plotly_chart(
                cached_figure(slow + ("gates", model, step), lambda m=model: _heatmap(gates, m, names, step, title)),
                key=f"{key}_gate_{model}",
                config=slide_config(config, run_id, f"gates_{model}"),
            )
        alignment = store.alignment(run_id) if config.dataset == "synthetic" else None
        if alignment is not None and not alignment.empty:
            show_expert_maps(gates, alignment, gated, names, step, slow, key)
        if "mmoe" in gated:
            fig = cached_figure(
                slow + ("evolution",),
                lambda: gate_evolution(
                    gates[gates["model"] == "mmoe"], names, title=f"MMoE gate weights over training · {title}"
                ),
            )
            st.plotly_chart(fig, key=f"{key}_evolution", config=slide_config(config, run_id, "gate_evolution"))
        st.caption(
            "Task difference: how differently the tasks use the experts (0 = the same mix, "
            "1 = disjoint experts). OMoE's single gate is shared, so its difference is 0 by design."
        )

    if state.finished and row.get("summary"):
        st.markdown("**Results on the test set**")
        text = winner_text(row["summary"], names)
        if text:  # the trophy only for a winner the evidence supports; plain text keeps user names inert
            icon = ":material/emoji_events:" if winner(row["summary"], names) else ":material/balance:"
            st.markdown(f"{icon} {markdown_literal(text)}")
        table = results_table(row["summary"], names, models)
        st.dataframe(table, hide_index=True, key=f"{key}_results", column_config=_result_columns(table))
    elif state.finished:
        table = results_table(None, names, models)
        if len(table):
            st.dataframe(table, hide_index=True, key=f"{key}_results")
    downloads(run_id, row, metrics, names, key)
    return point_count(metrics)


def markdown_literal(text: str) -> str:
    """Text shown literally inside markdown: every ASCII punctuation mark escaped, so a task name from a user's
    CSV cannot add links, emphasis or directives."""
    return "".join("\\" + c if c in _PUNCT else c for c in text)


_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def show_agreement(metrics: pd.DataFrame, names: list[str], version: tuple, key: str) -> None:
    """How much the tasks' gradients on the shared weights agree, per model, over training (#19)."""
    if not (metrics["metric"] == "grad_agreement").any():
        return
    pairs = [f"{names[i]} · {names[j]}" for i, j in task_pairs(len(names))]
    fig = cached_figure(
        version + ("agreement",),
        lambda: agreement_curves(curve_frame(metrics, "grad_agreement", ("probe",)), pairs),
    )
    st.markdown("**Gradient agreement** · cosine between the tasks' gradients on the shared weights")
    st.plotly_chart(fig, key=f"{key}_agreement", config={"displaylogo": False})
    st.caption(
        "1: the tasks pull the shared weights the same way; 0: unrelated pulls; below 0: they conflict. "
        "Measured on each seed's first 512 validation rows, on the expert bank (Shared-Bottom: its bottom)."
    )


def show_specialisation(metrics: pd.DataFrame, version: tuple, key: str) -> None:
    """Whether each task's gate picks the experts that carry that task's direction (synthetic data, #17)."""
    rows = metrics[metrics["metric"] == "routing_specialisation"]
    if rows.empty:
        return
    fig = cached_figure(
        version + ("specialisation",),
        lambda: specialisation_curves(curve_frame(metrics, "routing_specialisation", ("probe",))),
    )
    st.markdown("**Routing specialisation S** · do the gates send each task to the experts that carry it?")
    st.plotly_chart(fig, key=f"{key}_specialisation", config={"displaylogo": False})
    last = rows[rows["step"] == rows.groupby("model")["step"].transform("max")]
    for model in model_order(list(last["model"].unique())):
        st.caption(reading(model_label(model), last[last["model"] == model]["value"].tolist()))
    st.caption(
        "Each expert's alignment with task k is how strongly its first layer responds to the task's direction "
        "w_k (shares summing to 1 over tasks); S is how much more aligned each task's gate-weighted experts are "
        "than the average expert. 0 for one shared gate (OMoE) and for identical tasks (p = 1)."
    )


def show_expert_maps(
    gates: pd.DataFrame,
    alignment: pd.DataFrame,
    gated: list[str],
    names: list[str],
    step: int | None,
    slow: tuple,
    key: str,
) -> None:
    """Beside the heatmaps: what each expert learned, and which experts each task's gate uses (#17)."""
    shown = [m for m in gated if (alignment["model"] == m).any()]
    if not shown:
        return
    st.markdown(
        "**Expert map** · each dot is an expert, placed by how strongly it responds to the row's task direction "
        "(right = this task's expert) and sized by how much that task's gate uses it."
    )
    for col, model in zip(st.columns(len(shown)), shown):
        col.plotly_chart(
            cached_figure(
                slow + ("map", model, step),
                lambda m=model: expert_map(
                    gate_matrix(gates, m, step), gate_matrix(alignment, m, step, "value"), names, model_label(m)
                ),
            ),
            key=f"{key}_map_{model}",
            config={"displaylogo": False},
        )
    st.caption(
        "When the gates specialise, each row's big dots sit right of the dashed line (no preference): every task "
        "leans on the experts that carry its own direction. OMoE's one gate sizes the dots the same in every row."
    )


def replay_step(gates: pd.DataFrame, state: RunState, key: str) -> int | None:
    """Once a run has ended, a slider over its stored gate snapshots (to narrate the moment the gates split);
    None = the latest snapshot (always, while the run is live)."""
    steps = sorted(int(s) for s in gates["step"].unique())
    if not state.finished or len(steps) < 2:
        return None
    step = st.select_slider(
        "Replay the gates: snapshot at step",
        steps,
        value=steps[-1],
        key=f"{key}_replay",
        help="Drag to see the gate weights at any recorded step of training",
    )
    return None if step == steps[-1] else int(step)


def _heatmap(gates: pd.DataFrame, model: str, names: list[str], step: int | None = None, where: str = "") -> Any:
    matrix = gate_matrix(gates, model, step)
    spec = gate_specialisation(matrix)
    title = model_label(model) + (f" · task difference {spec:.2f}" if spec is not None else "")
    title += f" · step {step:,}" if step is not None else ""
    return gate_heatmap(matrix, names, title=f"{title} · {where}" if where else title)


def _result_columns(table: pd.DataFrame) -> dict:
    cfg: dict = {}
    for col in table.columns:
        if ("loss" in col or "AUC" in col) and table[col].dtype != object:  # "mean ± sd" cells stay text
            cfg[col] = st.column_config.NumberColumn(col, format="%.4f")
        elif col in ("Parameters", "Paper count"):
            cfg[col] = st.column_config.NumberColumn(
                col,
                format="localized",
                help="Paper count: expert and tower weights only, as in the paper's §5.1 (no biases or gates)"
                if col == "Paper count"
                else "Every trainable weight, per seed",
            )
        elif col == "Seconds":
            cfg[col] = st.column_config.NumberColumn(col, format="%.1f", help="Training time of this model")
    return cfg


def _metrics_csv(run_id: str, names: list[str]) -> bytes:
    return metrics_csv(get_store().metrics(run_id), names)


def _weights(run_id: str) -> bytes:
    return get_store().weights_path(run_id).read_bytes()


def downloads(run_id: str, row: dict, metrics: pd.DataFrame, names: list[str], key: str) -> None:
    """Files are made when clicked (deferred data): a live view redraws every second and must stay cheap."""
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button(
        "Metrics (CSV)",
        functools.partial(_metrics_csv, run_id, list(names)),
        file_name=f"mmoe_{run_id}_metrics.csv",
        mime="text/csv",
        key=f"{key}_dl_csv",
        on_click="ignore",
        disabled=not len(metrics),
        width="stretch",
        help="Every recorded point: model, step, seed, task, split, metric, value",
    )
    config_json = json.dumps(json.loads(row["config"]), indent=2)
    c2.download_button(
        "Configuration (JSON)",
        config_json,
        file_name=f"mmoe_{run_id}_config.json",
        mime="application/json",
        key=f"{key}_dl_json",
        on_click="ignore",
        width="stretch",
        help="Every setting of this run; load it with RunConfig.from_json to train it again",
    )
    ready = get_store().weights_path(run_id).exists()
    c3.download_button(
        "Weights (safetensors)",
        functools.partial(_weights, run_id),
        file_name=f"mmoe_{run_id}.safetensors",
        mime="application/octet-stream",
        key=f"{key}_dl_weights",
        on_click="ignore",
        disabled=not ready,
        width="stretch",
        help="Every model's weights with a leading seed axis" if ready else "Saved when the run ends",
    )
    c4.download_button(
        "Download report",
        functools.partial(run_report, get_store(), run_id),
        file_name=f"mmoe_{run_id}_report.html",
        mime="text/html",
        key=f"{key}_dl_report",
        on_click="ignore",
        icon=":material/description:",
        width="stretch",
        help="One HTML file: interactive figures (works offline), configuration and results",
    )
    if page_path("present"):
        st.page_link(
            page_path("present"),
            label="Present this run (full screen, large type)",
            icon=":material/slideshow:",
            query_params={"run": run_id},
        )
