"""What every page shares: the one JobQueue and RunStore of this server process, the session's owner id, the
server's device, and the view of one run (status, live curves, gates, results, downloads).

Pages import this module; it imports streamlit, so it lives beside the pages, not in mmoe_core. Nothing here
holds a model or a thread in session state: only run ids and plain values.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable

import pandas as pd
import streamlit as st

from mmoe_core.config import RunConfig, field_names
from mmoe_core.jobs import JobQueue, RunState, run_state
from mmoe_core.plots import gate_evolution, gate_heatmap, loss_curves
from mmoe_core.runs import RunStore, default_home
from mmoe_core.views import (curve_frame, gate_matrix, gate_specialisation, gated_models, metrics_csv,
                             model_label, n_tasks_of, point_count, progress_text, results_table, task_names,
                             winner_text)

REFRESH_S = 1.0  # how often a live view re-reads the run store
SECONDARY_S = 3.0  # how often, while a run is live, its gate and diagnostics charts are redrawn
OWNER_PREFIX = "web:"
_REAP_EVERY_S = 15.0
# After a session's websocket closes, how long its queued runs wait for it to reconnect before they are dropped.
SESSION_GRACE_S = float(os.environ.get("MMOE_SESSION_GRACE_S", 30))
_started: list[tuple[JobQueue, threading.Event]] = []  # every queue this process made (tests shut them down)


# ---------------------------------------------------------------------------------------------- app frame
def ensure_app_frame() -> None:
    """Call first in every page. Streamlit decides per process whether `pages/` is an old-style folder of
    pages; until app.py has called st.navigation once, a first visit straight to /runs would run the page
    alone, without app.py's frame and navigation. Then: switch that mode off and rerun through app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - streamlit internals moved; the pages still work alone
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---------------------------------------------------------------------------------------------- server state
def worker_threads() -> int:
    """Torch threads per training worker behind the web app: every CPU but one, shared among the jobs that
    may run at once. The spare core keeps the web server and a local browser from stalling torch's thread
    pool: on a busy 2-core machine, 2 threads trained 6-8x slower than 1 (bench/bench_live.py notes).
    MMOE_WORKER_THREADS overrides."""
    if os.environ.get("MMOE_WORKER_THREADS"):
        return max(1, int(os.environ["MMOE_WORKER_THREADS"]))
    jobs = max(1, int(os.environ.get("MMOE_MAX_JOBS", 1)))
    return max(1, ((os.cpu_count() or 1) - 1) // jobs)


@st.cache_resource(show_spinner=False)
def _queue_for(home: str) -> JobQueue:
    queue = JobQueue(RunStore(home), threads=worker_threads())
    stop = threading.Event()
    _started.append((queue, stop))
    threading.Thread(target=_reap_sessions, args=(queue, stop), name="mmoe-session-reaper", daemon=True).start()
    return queue


def get_queue() -> JobQueue:
    """One JobQueue per server process and run-store folder (MMOE_HOME), shared by every session."""
    queue = _queue_for(str(default_home()))
    _watch_session(queue)
    return queue


def get_store() -> RunStore:
    return get_queue().store


def shutdown_queues() -> None:
    """Tests: stop every dispatcher, warm worker and session reaper this process started."""
    while _started:
        queue, stop = _started.pop()
        stop.set()
        queue.shutdown(timeout=2.0)
    _queue_for.clear()


def session_owner() -> str:
    """This browser session's id: runs are submitted under it so its queued runs leave when it ends."""
    if "_owner" not in st.session_state:
        try:
            from streamlit.runtime.scriptrunner import get_script_run_ctx

            ctx = get_script_run_ctx()
            sid = ctx.session_id if ctx else uuid.uuid4().hex
        except Exception:  # pragma: no cover - streamlit internals moved
            sid = uuid.uuid4().hex
        st.session_state["_owner"] = OWNER_PREFIX + sid
    return st.session_state["_owner"]


class _SessionLease:
    """Held in a session-scoped resource cache: Streamlit releases it when the session's websocket closes."""

    def __init__(self, owner: str, queue: JobQueue):
        self.owner, self.queue = owner, queue


def _watch_session(queue: JobQueue) -> None:
    """Once a session has submitted runs (it has an owner id), hold a lease whose release drops its queue."""
    try:
        owner = st.session_state.get("_owner")
        if owner:
            _session_lease(owner, str(queue.store.home))
    except Exception:  # outside a script run (a thread, a test without a session): the reaper is the backstop
        pass


def _release_session(lease: _SessionLease) -> None:
    """Streamlit's session-end hook (on_release). It runs on the server's event loop, so the wait for a
    reconnect (a reload, a flaky network) happens on a timer thread."""
    timer = threading.Timer(SESSION_GRACE_S, _drop_if_gone, args=(lease,))
    timer.daemon = True
    timer.start()


def _drop_if_gone(lease: _SessionLease) -> int:
    """Drop the session's queued runs unless it has reconnected meanwhile."""
    try:
        from streamlit.runtime import Runtime

        if Runtime.exists() and Runtime.instance().is_active_session(lease.owner[len(OWNER_PREFIX):]):
            return 0
        return lease.queue.drop_owner(lease.owner)
    except Exception as exc:  # never let a session hook take anything down
        print(f"mmoe session release: {type(exc).__name__}: {exc}", flush=True)
        return 0


@st.cache_resource(scope="session", on_release=_release_session, show_spinner=False)
def _session_lease(owner: str, home: str) -> _SessionLease:
    return _SessionLease(owner, _queue_for(home))


def orphaned_owners(store: RunStore, alive_sessions: set[str]) -> set[str]:
    """Owners of queued runs whose browser session the server no longer knows (CLI runs have no owner)."""
    owners = {(store.run(r) or {}).get("owner") or "" for r in store.queued()}
    return {o for o in owners if o.startswith(OWNER_PREFIX) and o[len(OWNER_PREFIX):] not in alive_sessions}


def _reap_sessions(queue: JobQueue, stop: threading.Event) -> None:
    """Drop queued runs of sessions that ended (tab closed). Streamlit has no public session-end hook, so this
    asks its session manager every few seconds; a recently disconnected session (a reload, a flaky network)
    counts as alive until Streamlit itself forgets it."""
    while not stop.wait(_REAP_EVERY_S):
        try:
            from streamlit.runtime import Runtime

            if not Runtime.exists():
                continue
            alive = {s.session.id for s in Runtime.instance()._session_mgr.list_sessions()}
            for owner in orphaned_owners(queue.store, alive):
                queue.drop_owner(owner)
        except Exception as exc:  # never let the reaper take anything down
            print(f"mmoe session reaper: {type(exc).__name__}: {exc}", flush=True)


@st.cache_resource(show_spinner=False)
def device_info() -> dict[str, Any]:
    """What this server can train on. Imports torch once, lazily, in the server process."""
    import torch

    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "cuda_name": torch.cuda.get_device_name(0) if cuda else None,
            "cpus": os.cpu_count() or 1}


def device_label(name: str) -> str:
    info = device_info()
    gpu = f"CUDA ({info['cuda_name']})" if info["cuda"] else None
    return {"auto": f"Auto ({gpu or 'CPU'} on this server)", "cpu": f"CPU ({info['cpus']} cores)",
            "cuda": gpu or "CUDA (not available here)"}.get(name, name)


def page_path(name: str) -> str | None:
    """pages/<name>.py when that page exists (other pages may land later)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pages", f"{name}.py")
    return f"pages/{name}.py" if os.path.exists(path) else None


# ---------------------------------------------------------------------------------------------- controls
# The Playground's controls, by group. Each key is a RunConfig field; "match_bottom" is the one UI-only switch
# (on = bottom_units 0, the width that matches MMoE's parameter count).
DATA_KEYS = ("correlation", "rows", "input_dim", "sine_terms", "noise_std", "data_seed", "n_tasks", "scale",
             "eval_rows", "independent_data")
ARCH_KEYS = ("n_experts", "expert_units", "expert_layers", "tower_units", "tower_layers", "bottom_units")
# CGC/PLE experts and gate options (Tang et al. 2020; Shazeer et al. 2017), where the library has them
ARCH_KEYS += tuple(k for k in ("shared_experts", "task_experts", "levels", "top_k", "gate_noise", "balance_weight")
                   if k in field_names())
TRAIN_KEYS = ("steps", "batch_size", "lr", "seeds", "device", "seed", "log_every")
CONTROL_KEYS = DATA_KEYS + ("models",) + ARCH_KEYS + TRAIN_KEYS


def matched_width(config: RunConfig) -> int:
    from mmoe_core.models.zoo import matched_bottom_units  # pure arithmetic; the module imports torch once

    return matched_bottom_units(config)


def control_values(config: RunConfig) -> dict[str, Any]:
    """Widget values (by key) that show `config`."""
    values: dict[str, Any] = {k: getattr(config, k) for k in CONTROL_KEYS}
    values["models"] = list(config.models)
    values["match_bottom"] = config.bottom_units == 0
    if config.bottom_units == 0:
        values["bottom_units"] = matched_width(config)
    return values


def load_into_controls(config: RunConfig) -> None:
    """Set the Playground's controls to `config` (Runs page: open or re-run a stored run)."""
    for key, value in control_values(config).items():
        st.session_state[key] = value
    st.session_state["_url_loaded"] = True  # these settings win over the address the Playground opens with
    if config.dataset != "synthetic":
        default = RunConfig()
        st.session_state["data_source"] = {
            k: v for k, v in config.to_dict().items()
            if k not in CONTROL_KEYS and v != getattr(default, k) and k != "bottom_units"}
    else:
        st.session_state.pop("data_source", None)


def data_source() -> dict[str, Any] | None:
    """The Data page's choice (a dict of RunConfig values); None means the Playground's synthetic controls."""
    source = st.session_state.get("data_source")
    if not isinstance(source, dict) or source.get("dataset", "synthetic") == "synthetic":
        return None
    return source


def source_label(source: dict[str, Any]) -> str:
    """How a data source is named on the pages: the Data page's label, else the file or set name."""
    return str(source.get("label") or os.path.basename(str(source.get("dataset", "synthetic"))))


def build_config() -> tuple[RunConfig | None, str | None]:
    """The RunConfig the controls describe, or the validation message that names what to fix."""
    ss = st.session_state
    defaults = control_values(RunConfig())
    values = {k: ss.get(k, defaults[k]) for k in CONTROL_KEYS}
    values["models"] = tuple(ss.get("models", defaults["models"]) or ())
    if ss.get("match_bottom", True):
        values["bottom_units"] = 0
    source = data_source()
    if source:
        values.update({k: v for k, v in source.items() if k in field_names()})
    if not values["models"]:
        return None, "Choose at least one model to train."
    try:
        config = RunConfig(**values)
    except (TypeError, ValueError) as exc:
        return None, f"{exc}."
    if config.device == "cuda" and not device_info()["cuda"]:
        return None, "This server has no CUDA GPU; choose Auto or CPU as the device."
    return config, None


# ---------------------------------------------------------------------------------------------- one run
_FIGURE_CACHE: "OrderedDict[tuple, Any]" = OrderedDict()
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
        st.info(f"Stopped at step {state.step:,} of {state.total_steps:,}. The curves so far are kept.")
    elif state.status == "failed":
        st.error(f"The run failed: {(state.error or 'unknown error').splitlines()[0]}")
    else:
        st.warning(state.error or f"This run ended as {state.status}.")


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
    if config.dataset == "synthetic":
        c1.metric("Task correlation p (set)", f"{config.correlation:g}")
        corr_help = "Pearson correlation of the two tasks' training labels. The sine terms make it lower than p."
    else:
        c1.metric("Data", os.path.basename(config.dataset))
        corr_help = "Pearson correlation of the first two tasks' training labels."
    corr = row.get("label_correlation")
    c2.metric("Label correlation (measured)", "…" if corr is None else f"{corr:.3f}", help=corr_help)
    c3.metric("Recorded points", f"{point_count(metrics)}")
    c4.metric("Rows / s", "…" if not row.get("rows_per_s") else f"{row['rows_per_s']:,.0f}")

    labels = {m.model: f"{model_label(m.model)} · {int(m.params):,} params" for m in models.itertuples()
              if m.params is not None}
    left, right = st.columns([1, 3], vertical_alignment="center")
    metric = "loss"
    if (metrics["metric"] == "auc").any():  # binary tasks: AUC curves too
        metric = right.segmented_control("Curves", ["loss", "auc"], default="loss", key=f"{key}_metric",
                                         format_func={"loss": "Loss", "auc": "Validation AUC"}.get,
                                         label_visibility="collapsed") or "loss"
    log_y = left.toggle("Log scale", value=True, key=f"{key}_log", help="Loss curves on a log axis",
                        disabled=metric != "loss")
    version = (run_id, len(metrics), len(gates), tuple(names))  # the store only appends while a run lives
    slow = secondary_version(run_id, state, len(gates), tuple(names))
    log_y = log_y and metric == "loss"
    fig = cached_figure(version + ("loss", metric, log_y, tuple(sorted(labels.items()))),
                        lambda: loss_curves(curve_frame(metrics, metric=metric), names, log_y=log_y, labels=labels,
                                            metric=metric))
    st.plotly_chart(fig, key=f"{key}_loss", config={"displaylogo": False})
    if metric == "auc":
        st.caption("Validation AUC of each binary task: higher is better.")
    elif config.seeds > 1:
        st.caption(f"Lines: mean over {config.seeds} seeds; bands: ±1 standard deviation. "
                   "Dashed: training loss, solid: validation loss.")
    else:
        st.caption("Dashed: training loss (mean since the previous point), solid: validation loss.")

    gated = gated_models(gates)
    if gated:
        st.markdown("**Gate weights** · mean over a fixed validation batch, seed 1. Each row sums to 1.")
        cols = st.columns(len(gated))
        for col, model in zip(cols, gated):
            col.plotly_chart(cached_figure(slow + ("gates", model), lambda m=model: _heatmap(gates, m, names)),
                             key=f"{key}_gate_{model}", config={"displaylogo": False})
        if "mmoe" in gated:
            fig = cached_figure(slow + ("evolution",), lambda: gate_evolution(
                gates[gates["model"] == "mmoe"], names, title="MMoE gate weights over training"))
            st.plotly_chart(fig, key=f"{key}_evolution", config={"displaylogo": False})
        st.caption("Task difference: how differently the tasks use the experts (0 = the same mix, "
                   "1 = disjoint experts). OMoE's single gate is shared, so its difference is 0 by design.")

    if state.finished and row.get("summary"):
        st.markdown("**Results on the test set**")
        text = winner_text(row["summary"])
        if text:
            st.markdown(f":material/emoji_events: **{text}**")
        table = results_table(row["summary"], names, models)
        st.dataframe(table, hide_index=True, key=f"{key}_results", column_config=_result_columns(table))
    elif state.finished:
        table = results_table(None, names, models)
        if len(table):
            st.dataframe(table, hide_index=True, key=f"{key}_results")
    downloads(run_id, row, metrics, names, key)
    return point_count(metrics)


def _heatmap(gates: pd.DataFrame, model: str, names: list[str]) -> Any:
    matrix = gate_matrix(gates, model)
    spec = gate_specialisation(matrix)
    title = model_label(model) + (f" · task difference {spec:.2f}" if spec is not None else "")
    return gate_heatmap(matrix, names, title=title)


def _result_columns(table: pd.DataFrame) -> dict:
    cfg: dict = {}
    for col in table.columns:
        if "loss" in col or "AUC" in col:
            cfg[col] = st.column_config.NumberColumn(col, format="%.4f")
        elif col in ("Parameters", "Paper count"):
            cfg[col] = st.column_config.NumberColumn(
                col, format="localized",
                help="Paper count: expert and tower weights only, as in the paper's §5.1 (no biases or gates)"
                if col == "Paper count" else "Every trainable weight, per seed")
        elif col == "Seconds":
            cfg[col] = st.column_config.NumberColumn(col, format="%.1f", help="Training time of this model")
    return cfg


def _metrics_csv(run_id: str, names: list[str]) -> bytes:
    return metrics_csv(get_store().metrics(run_id), names)


def _weights(run_id: str) -> bytes:
    return get_store().weights_path(run_id).read_bytes()


def downloads(run_id: str, row: dict, metrics: pd.DataFrame, names: list[str], key: str) -> None:
    """Files are made when clicked (deferred data): a live view redraws every second and must stay cheap."""
    c1, c2, c3 = st.columns(3)
    c1.download_button("Metrics (CSV)", functools.partial(_metrics_csv, run_id, list(names)),
                       file_name=f"mmoe_{run_id}_metrics.csv", mime="text/csv", key=f"{key}_dl_csv",
                       on_click="ignore", disabled=not len(metrics), width="stretch",
                       help="Every recorded point: model, step, seed, task, split, metric, value")
    config_json = json.dumps(json.loads(row["config"]), indent=2)
    c2.download_button("Configuration (JSON)", config_json, file_name=f"mmoe_{run_id}_config.json",
                       mime="application/json", key=f"{key}_dl_json", on_click="ignore", width="stretch",
                       help="Every setting of this run; load it with RunConfig.from_json to train it again")
    ready = get_store().weights_path(run_id).exists()
    c3.download_button("Weights (safetensors)", functools.partial(_weights, run_id),
                       file_name=f"mmoe_{run_id}.safetensors", mime="application/octet-stream",
                       key=f"{key}_dl_weights", on_click="ignore", disabled=not ready, width="stretch",
                       help="Every model's weights with a leading seed axis" if ready else "Saved when the run ends")
