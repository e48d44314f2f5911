"""Playground: set the data, models and training, press Start, watch the race live.

widgets (keys = RunConfig field names) -> RunConfig -> JobQueue.submit -> a fragment that re-reads the run
store about once a second and redraws. The page never waits on training: only the run id is kept.
"""

from __future__ import annotations

import streamlit as st

from mmoe_core.config import DEVICES, WEIGHTINGS, RunConfig, field_help, field_names
from mmoe_core.hygiene import plain
from mmoe_core.model_kinds import KINDS, MODEL_KINDS, family_fields, kinds_using
from mmoe_core.runs import RUN_ID
from mmoe_core.runtime.jobs import QueueFull, RunState
from mmoe_core.store_faults import StoreError
from mmoe_core.studies.teaching import teaching_evidence
from mmoe_core.views import config_summary, refresh_mode
from mmoe_core.weighting import WEIGHTING_LABELS
from ui import keys
from ui.access import READ_ONLY, adopt_key, may_change, new_owner_key, owner_query, remember, source_refusal
from ui.controls import (
    KEEP,
    build_config,
    control_values,
    data_source,
    load_into_controls,
    matched_width,
    number_field,
    source_label,
    sweep_controls,
)
from ui.run_view import REFRESH_S, load_run, show_run, show_status
from ui.server import device_label, ensure_app_frame, get_queue, get_store, page_path, requester

FIRST_POINT_S = 0.25  # refresh interval while waiting for a run's first point
WARMUP_S = 2.0  # after this, an idle Playground loads the chart library (chart_warmup)
QUEUED_S = 2.0  # refresh interval while waiting in the queue: many waiting sessions must not load the server


# ---------------------------------------------------------------------------------------------- state
def restore_from_url() -> None:
    """Once per session: the URL's configuration (a shared link) sets every control."""
    if st.session_state.get(keys.URL_LOADED):
        return
    st.session_state[keys.URL_LOADED] = True
    query = st.query_params.to_dict()
    config, warnings = RunConfig.from_query(query)
    run_id, key = query.get("run", ""), query.get("key", "")
    if key and not adopt_key(run_id, key):  # before the data check: an owner link also grants the run's upload
        warnings.append("URL parameter key ignored: it is not this run's owner key, so the run opens read-only")
    if config.sweep_lr:  # the Playground has no control for it: say so rather than drop it silently
        warnings.append(
            "URL parameter sweep_lr ignored: learning-rate grids run as studies (Experiments page, or "
            "`mmoe sweep --lrs`); the Playground trains at one rate"
        )
    refusal = source_refusal(config.dataset)
    if refusal:
        warnings.append(f"URL parameter dataset ignored: {refusal}")
        config = config.with_(dataset="synthetic")
    if set(query) & set(field_names()):  # a shared link: it describes the whole config (defaults left out)
        chosen = st.session_state.get(keys.DATA_SOURCE)  # the Data page may have been visited first
        load_into_controls(config)
        if config.dataset == "synthetic" and chosen is not None:
            st.session_state[keys.DATA_SOURCE] = chosen
    if run_id and keys.RUN_ID not in st.session_state:
        if RUN_ID.match(run_id) and load_run(run_id)[0] is not None:
            st.session_state[keys.RUN_ID] = run_id
        else:
            warnings.append(f"URL parameter run={run_id!r} ignored: there is no such run on this server")
    st.session_state[keys.URL_WARNINGS] = warnings


def sync_url(config: RunConfig | None, run_config: RunConfig | None) -> None:
    """Keep the address bar a shareable link: non-default settings, plus the run being watched while the
    controls still describe it (moved controls describe a new run: `run=` would point at the old one)."""
    if config is None:
        return
    desired = config.to_query()
    if st.session_state.get(keys.RUN_ID) and run_config == config:
        desired.update(owner_query(st.session_state[keys.RUN_ID]))  # the owner's address keeps its key
    if st.query_params.to_dict() != desired:
        st.query_params.from_dict(desired)


# ---------------------------------------------------------------------------------------------- actions
def start() -> None:
    config, error = build_config()
    st.session_state.pop(keys.START_ERROR, None)
    if error:
        st.session_state[keys.START_ERROR] = error
        return
    refusal = source_refusal(config.dataset)
    if refusal:
        st.session_state[keys.START_ERROR] = f"{refusal}."
        return
    secret, key_hash = new_owner_key()
    try:
        run_id = get_queue().submit(config, **requester(), key_hash=key_hash)
    except (QueueFull, StoreError) as exc:  # a full queue, your quota, a full disk: each says what to do
        st.session_state[keys.START_ERROR] = f"{exc}."
        return
    remember(run_id, secret)
    st.session_state[keys.RUN_ID] = run_id


def stop() -> None:
    run_id = st.session_state.get(keys.RUN_ID)
    if run_id and may_change(load_run(run_id)[0]):  # the button is disabled otherwise; checked again here
        get_queue().cancel(run_id)


def set_pace(pace: str) -> None:
    """Pause ("pause"), Step ("step") or Resume (""): a request the run's worker reads between steps."""
    run_id = st.session_state.get(keys.RUN_ID)
    if run_id and may_change(load_run(run_id)[0]):  # the buttons are disabled otherwise; checked again here
        get_store().set_pace(run_id, pace)


TRAINING_RESET = ("steps", "batch_size", "lr", "log_every")  # what the Data page sets for Census or a CSV


def use_synthetic() -> None:
    """Back to the synthetic generator, with its training defaults: Census's or a CSV's steps, batch and
    learning rate were chosen for that data."""
    st.session_state.pop(keys.DATA_SOURCE, None)
    defaults = control_values(RunConfig())
    for key in TRAINING_RESET:
        st.session_state[key] = defaults[key]


def reset_defaults() -> None:
    """Every control back to RunConfig's defaults, synthetic data."""
    load_into_controls(RunConfig())


# ---------------------------------------------------------------------------------------------- controls
def controls() -> None:
    sb = st.sidebar
    sb.subheader("Data")
    source = data_source()
    if source:
        sb.info(f"Training on **{plain(source_label(source))}**, chosen on the Data page.")
        sb.button("Use synthetic data instead", on_click=use_synthetic, width="stretch")
    else:
        sb.slider(
            "Task correlation p",
            -1.0,
            1.0,
            step=0.05,
            key="correlation",
            persist_state=KEEP,
            disabled=bool(st.session_state.get(keys.SWEEP_ON)),
            help="Cosine similarity of the two tasks' weight vectors (paper §3.2). 1 = the same task "
            "up to the sine terms; 0 = unrelated; −1 = opposite.",
        )
        sweep_controls(sb)
        a, b = sb.columns(2)
        number_field("rows", a)
        number_field("input_dim", b)
        number_field("sine_terms", a)
        number_field("noise_std", b)
        number_field("data_seed", a)
        number_field("n_tasks", b)
        with sb.expander("More data settings"):
            c, d = st.columns(2)
            number_field("scale", c)
            number_field("eval_rows", d)
            st.checkbox(
                "Each seed draws its own data",
                key="independent_data",
                persist_state=KEEP,
                help=field_help("independent_data").capitalize(),
            )

    sb.subheader("Models")
    sb.pills(
        "Models trained side by side",
        list(MODEL_KINDS),
        selection_mode="multi",
        key="models",
        format_func=MODEL_KINDS.get,
        persist_state=KEEP,
        label_visibility="collapsed",
        help="All chosen models train on the same mini-batches, in lock-step.",
    )

    cfg, _ = build_config()
    summary = f"{cfg.n_experts} experts × {cfg.expert_units}, towers {cfg.tower_units}" if cfg else "check the values"
    with sb.expander(f"**Architecture** · {summary}"):
        a, b = st.columns(2)
        number_field("n_experts", a)
        number_field("expert_units", b)
        number_field("expert_layers", a)
        number_field("tower_units", b)
        number_field("tower_layers", a)
        matched = st.toggle(
            "Shared-Bottom: match MMoE's parameter count",
            key=keys.MATCH_BOTTOM,
            persist_state=KEEP,
            help="The paper sizes Shared-Bottom so its parameter count "
            "matches MMoE's (113 units at the paper's sizes): a fair comparison.",
        )
        if matched:
            width = matched_width(cfg) if cfg else None
            st.caption(f"Shared-Bottom width: **{width} units**" if width else "Shared-Bottom width: matched")
        else:
            number_field("bottom_units")
        chosen = set(st.session_state.get("models") or ())
        shown = [f for f in family_fields() if chosen & set(kinds_using(f))]  # e.g. CGC/PLE's experts, levels
        if shown:
            families = [MODEL_KINDS[m] for m in MODEL_KINDS if m in chosen and set(KINDS[m].fields) & set(shown)]
            st.caption(f"**{' / '.join(families)}**")  # what each field does: its help, from RunConfig
            cols = st.columns(2)
            for i, name in enumerate(shown):
                number_field(name, cols[i % 2])
        st.caption("**Gates** (Shazeer et al. 2017)")
        a, b = st.columns(2)
        number_field("top_k", a)
        number_field("balance_weight", b)
        st.checkbox("Noisy gates", key="gate_noise", persist_state=KEEP, help=field_help("gate_noise").capitalize())

    sb.subheader("Training")
    a, b = sb.columns(2)
    number_field("steps", a)
    number_field("batch_size", b)
    number_field("lr", a)
    number_field("seeds", b)
    sb.selectbox(
        "Device",
        DEVICES,
        key="device",
        format_func=device_label,
        persist_state=KEEP,
        help="Auto uses a CUDA GPU when the server has one. Training runs in a background worker.",
    )
    with sb.expander("More training settings"):
        c, d = st.columns(2)
        number_field("seed", c)
        number_field("log_every", d)
        st.selectbox(
            "Loss weighting",
            WEIGHTINGS,
            key="weighting",
            format_func=WEIGHTING_LABELS.get,
            persist_state=KEEP,
            help="How the task losses become one update. Equal is the paper's setting; the others balance the "
            "tasks (formulas on the Learn page).",
        )
    sb.button(
        "Reset to defaults",
        on_click=reset_defaults,
        icon=":material/restart_alt:",
        width="stretch",
        key="reset_defaults",
        help="Every setting back to the paper's defaults, on synthetic data",
    )


# ---------------------------------------------------------------------------------------------- live view
def live_panel(run_id: str) -> None:
    row, state = load_run(run_id)
    show_status(row, state)
    points = 0
    if row is not None:
        st.caption(f"Run `{run_id}` · {plain(config_summary(RunConfig.from_json(row['config']), row.get('summary')))}")
        points = show_run(run_id, key="pg", row=row, state=state)
        show_diagnostics(run_id, row, state)
    if st.session_state.get(keys.LIVE) and state.finished:  # the run just ended: redraw Start/Stop once
        st.session_state[keys.LIVE] = False
        st.rerun()
    # The refresh interval is fixed when the page runs (views.refresh_mode); rerun it when the mode changes:
    # the run's turn came (poll for the first point), or the first point is drawn (one refresh a second).
    mode = st.session_state.get(keys.REFRESH_MODE)
    if (mode == "queued" and state.status != "queued") or (mode == "first_point" and points):
        st.session_state[keys.REFRESH_MODE] = None
        st.rerun()


def show_diagnostics(run_id: str, row: dict, state: RunState) -> None:
    """Expert utilisation of every gated model (issue 8): collapse and copy warnings, then the curves."""
    from mmoe_core import diagnostics
    from mmoe_core.plots import diagnostics_figure
    from mmoe_core.views import n_tasks_of, task_names
    from ui.run_view import cached_figure, secondary_version

    if RunConfig.from_json(row["config"]).sweep:  # its probe rows are one p's first seed: the sweep chart says more
        return
    probe = get_store().metrics(run_id, split=diagnostics.PROBE_SPLIT)
    if probe.empty:
        return
    names = task_names(row, n_tasks_of(probe, RunConfig.from_json(row["config"])))  # per-task rows: 0..k-1
    seed = RunConfig.from_json(row["config"]).seed
    st.markdown(f"**Expert utilisation** · gates on the fixed validation batch, seed {seed}")
    for text in diagnostics.warning_messages(diagnostics.latest(probe), MODEL_KINDS, names):
        st.warning(plain(text), icon=":material/warning:")  # names the tasks: user text
    fig = cached_figure(
        secondary_version(run_id, state, len(probe)) + ("diagnostics",), lambda: diagnostics_figure(probe, names)
    )
    st.plotly_chart(fig, key="pg_diagnostics", config={"displaylogo": False})
    st.caption(
        "Load entropy: how evenly a task's gate spreads its weight over the experts it may use (0 = one "
        "expert takes all). Largest share: the busiest expert's part of the weight. Similarity: mean "
        "cosine between the experts' first-layer weights (1 = copies). Line style: solid = the first task (or "
        "the whole model), dashed = the second, dotted = the third. Thin grey dotted: where a warning starts."
    )


def preview(config: RunConfig | None) -> None:
    """Before any run: what Start will train, with each model's parameter count."""
    if config is None:
        return
    from mmoe_core.models.zoo import build_spec, paper_count

    st.markdown("**Ready to train**: " + plain(config_summary(config)))
    evidence = teaching_evidence(config)  # measured on held-out seeds, shown only at the measured settings
    if evidence:
        st.caption(evidence)
    cols = st.columns(len(config.models))
    for col, model in zip(cols, config.models):
        count = paper_count(build_spec(model, config))
        col.metric(
            f"{MODEL_KINDS[model]} · parameters",
            f"{count:,}",
            help="As the paper counts them (§5.1): expert and tower weights, no biases or gates",
            border=True,
        )
    st.caption(
        "Parameter counts as in the paper (§5.1): expert and tower weights only. Once training starts, the "
        "legend counts every trainable parameter (biases and gates too), so its numbers are larger."
    )
    # Where the curves will be. A plain box, not an empty Plotly chart: loading the chart library cost every
    # page view ~0.7 s of drawing in the browser (bench/load_test.py); the first point after Start pays it once.
    with st.container(border=True, height=300, key="pg_placeholder"):
        st.caption(
            "Press **Start**: each model's validation loss, gate task difference and routing specialisation "
            "appear here against p, filling in as training goes."
            if config.sweep
            else "Press **Start**: the loss curves of every model appear here, then the gate heatmaps show "
            "which experts each task uses."
        )


def chart_warmup() -> None:
    """An empty, hidden chart (app.py's style), drawn by the fragment's first timed rerun: the browser then
    loads the chart library while the user reads the page, not while it draws the page. Without it the first
    point after Start waited ~1.7 s for the library here; with the chart drawn at once, every page view took
    ~0.6 s longer (bench/README.md). The second tick reruns the page once to stop the timer: each tick cost
    an idle page ~60 ms of browser CPU, whatever it drew."""
    state = st.session_state.get(keys.CHART_WARM)
    if not st.session_state.get(keys.WARMUP_ARMED) or state == "done":
        return
    if state == "drawn":  # the library has had a tick to load
        st.session_state[keys.CHART_WARM] = "done"
        st.rerun()  # re-registers this fragment without a timer
    from mmoe_core.plots import empty_figure

    st.session_state[keys.CHART_WARM] = "drawn"
    with st.container(key="pg_chart_warmup"):
        st.plotly_chart(empty_figure("", 120), key="pg_chart_warmup_fig", config={"staticPlot": True})


# ---------------------------------------------------------------------------------------------- page
ensure_app_frame()
restore_from_url()
for key, value in control_values(RunConfig()).items():  # first visit: defaults
    st.session_state.setdefault(key, value)

st.title("MMoE Playground")
st.markdown(
    "Set a task correlation, press **Start**, and watch MMoE's gates specialise while it races "
    "Shared-Bottom and OMoE on the same data (Ma et al., KDD 2018)."
)

controls()
config, error = build_config()
for warning in st.session_state.pop(keys.URL_WARNINGS, []):
    st.warning(plain(warning))  # URL values are anyone's text
if error:
    st.error(plain(error))
source = data_source()
d1, d2 = st.columns([3, 1], vertical_alignment="center")
if source is None:
    d1.caption("Data: the paper's synthetic generator (§3.2), set in the sidebar.")
else:
    d1.caption(f"Data: **{plain(source_label(source))}**, chosen on the Data page.")
if page_path("data"):
    d2.page_link(page_path("data"), label="Choose data", icon=":material/table:")

run_id = st.session_state.get(keys.RUN_ID)
row, state = load_run(run_id) if run_id else (None, None)
active = state is not None and not state.finished
owned = may_change(row)
st.session_state[keys.LIVE] = active

holding = active and state.status == "running" and (get_store().pace(run_id) or "") != ""  # paused or stepping
pacing = active and owned and state.status == "running" and get_queue().backend == "local"  # Ray tasks never pause
b1, b2, b3, b4, b5 = st.columns([1, 1, 1, 1, 3], vertical_alignment="center")
b1.button(
    "Start",
    type="primary",
    on_click=start,
    disabled=config is None or active,
    width="stretch",
    icon=":material/play_arrow:",
    key="start",
)
b2.button("Stop", on_click=stop, disabled=not (active and owned), width="stretch", icon=":material/stop:", key="stop")
b3.button(
    "Resume" if holding else "Pause",
    on_click=set_pace,
    args=("" if holding else "pause",),
    disabled=not pacing,
    width="stretch",
    icon=":material/play_circle:" if holding else ":material/pause:",
    key="pace",
    help="Pause holds the run in memory (no progress, no CPU) so you can explain; Resume goes on. "
    "Runs on a Ray cluster cannot pause.",
)
b4.button(
    "Step",
    on_click=set_pace,
    args=("step",),
    disabled=not (pacing and holding),
    width="stretch",
    icon=":material/skip_next:",
    key="step_once",
    help="While paused: train to the next recorded point, then pause again",
)
if st.session_state.get(keys.START_ERROR):
    b5.error(plain(st.session_state.pop(keys.START_ERROR)))
elif active and not owned:
    b5.caption(READ_ONLY.format(what="run"))
elif active:
    b5.caption(
        "Training in a background worker; you can switch pages and come back. This address is your owner "
        "link: keep it to stop the run later; share the link without `key=` to let others watch."
    )

sync_url(config, RunConfig.from_json(row["config"]) if row else None)
if run_id:
    # Until the first point arrives, look four times a second, so it shows as soon as the worker writes it.
    queue = get_queue()
    mode = refresh_mode(
        state,
        free_slot=len(queue.active()) < queue.max_concurrent,
        has_points=active and not queue.store.metrics(run_id).empty,
    )
    st.session_state[keys.REFRESH_MODE] = mode
    every = {"first_point": FIRST_POINT_S, "queued": QUEUED_S, "live": REFRESH_S}.get(mode)
    st.fragment(run_every=every)(live_panel)(run_id)
else:
    preview(config)
    st.fragment(run_every=None if st.session_state.get(keys.CHART_WARM) == "done" else WARMUP_S)(chart_warmup)()
    st.session_state[keys.WARMUP_ARMED] = True
