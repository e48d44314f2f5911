"""Sidebar controls as RunConfig fields: number widgets built from RunConfig's field table (range and help),
widget values from a config and back, and the data source chosen on the Data page.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from mmoe_core.config import RunConfig, field_help, field_names, field_range
from mmoe_core.model_kinds import family_fields
from mmoe_core.p_sweep import DEFAULT_PS, DEFAULT_SEEDS
from mmoe_core.source_names import display_name

from . import keys
from .access import source_refusal
from .server import device_info

# The Playground's controls, by group. Each key is a RunConfig field; "match_bottom" is the one UI-only switch
# (on = bottom_units 0, the width that matches MMoE's parameter count).
DATA_KEYS = (
    "correlation",
    "rows",
    "input_dim",
    "sine_terms",
    "noise_std",
    "data_seed",
    "n_tasks",
    "scale",
    "eval_rows",
    "independent_data",
)
ARCH_KEYS = ("n_experts", "expert_units", "expert_layers", "tower_units", "tower_layers", "bottom_units")
ARCH_KEYS += family_fields()  # fields some model kinds read on their own (CGC/PLE experts, levels: model_kinds.py)
ARCH_KEYS += ("top_k", "gate_noise", "balance_weight")  # gate options (Shazeer et al. 2017)
TRAIN_KEYS = ("steps", "batch_size", "lr", "seeds", "device", "seed", "log_every", "weighting")
CONTROL_KEYS = DATA_KEYS + ("models",) + ARCH_KEYS + TRAIN_KEYS
KEEP = "session"  # widget values survive a visit to another page
SWEEP_CHOICES = (-0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0)  # the p values the Playground's sweep offers
SWEEP_DEFAULT, SWEEP_SEEDS = DEFAULT_PS, DEFAULT_SEEDS  # what the sweep switch starts with

# How each numeric RunConfig field is shown: label, step and number format. Its range and help text come from
# RunConfig's field table (lo, hi, help), so no page types a range.
NUMBER_WIDGETS: dict[str, tuple[str, float, str | None]] = {
    "rows": ("Training rows", 1_000, None),
    "input_dim": ("Input dim d", 10, None),
    "sine_terms": ("Sine terms m", 1, None),
    "noise_std": ("Noise σ", 0.05, "%.3f"),
    "data_seed": ("Data seed", 1, None),
    "n_tasks": ("Tasks", 1, None),
    "scale": ("Weight scale c", 0.1, "%g"),
    "eval_rows": ("Val/test rows", 500, None),
    "n_experts": ("Experts", 1, None),
    "expert_units": ("Expert units", 1, None),
    "expert_layers": ("Expert layers", 1, None),
    "tower_units": ("Tower units", 1, None),
    "tower_layers": ("Tower layers", 1, None),
    "bottom_units": ("Shared-Bottom width", 1, None),
    "shared_experts": ("Shared experts", 1, None),
    "task_experts": ("Experts per task", 1, None),
    "levels": ("PLE levels", 1, None),
    "top_k": ("Top-k (0 = all)", 1, None),
    "balance_weight": ("Balance loss", 0.01, "%g"),
    "steps": ("Steps", 100, None),
    "batch_size": ("Batch size", 32, None),
    "lr": ("Learning rate", 1e-4, "%g"),
    "seeds": ("Seeds", 1, None),
    "seed": ("Seed", 1, None),
    "log_every": ("Log every", 10, None),
}


def number_field(name: str, where: Any = st, *, key_prefix: str = "", label: str | None = None) -> None:
    """A number input for RunConfig field `name`: its range and help from the field table, its label, step and
    format from NUMBER_WIDGETS, its key `key_prefix + name`."""
    default_label, step, fmt = NUMBER_WIDGETS[name]
    lo, hi = field_range(name)
    kind = float if isinstance(getattr(RunConfig(), name), float) else int
    where.number_input(
        label or default_label,
        kind(lo),
        kind(hi),
        step=kind(step),
        key=key_prefix + name,
        help=field_help(name).capitalize(),
        format=fmt,
        persist_state=KEEP,
    )


def matched_width(config: RunConfig) -> int:
    from mmoe_core.models.zoo import matched_bottom_units  # pure arithmetic; the module imports torch once

    return matched_bottom_units(config)


def control_values(config: RunConfig) -> dict[str, Any]:
    """Widget values (by key) that show `config`."""
    values: dict[str, Any] = {k: getattr(config, k) for k in CONTROL_KEYS}
    values["models"] = list(config.models)
    values[keys.SWEEP_ON] = bool(config.sweep)
    values[keys.SWEEP_VALUES] = [p for p in SWEEP_CHOICES if p in config.sweep] if config.sweep else list(SWEEP_DEFAULT)
    values["match_bottom"] = config.bottom_units == 0
    if config.bottom_units == 0:
        values["bottom_units"] = matched_width(config)
    return values


def load_into_controls(config: RunConfig) -> None:
    """Set the Playground's controls to `config` (Runs page: open or re-run a stored run)."""
    for key, value in control_values(config).items():
        st.session_state[key] = value
    st.session_state[keys.URL_LOADED] = True  # these settings win over the address the Playground opens with
    if config.dataset != "synthetic":
        default = RunConfig()
        st.session_state[keys.DATA_SOURCE] = {
            k: v
            for k, v in config.to_dict().items()
            if k not in CONTROL_KEYS and v != getattr(default, k) and k != "bottom_units"
        }
    else:
        st.session_state.pop(keys.DATA_SOURCE, None)


def data_source() -> dict[str, Any] | None:
    """The Data page's choice (a dict of RunConfig values); None means the Playground's synthetic controls."""
    source = st.session_state.get(keys.DATA_SOURCE)
    if not isinstance(source, dict) or source.get("dataset", "synthetic") == "synthetic":
        return None
    return source


def source_label(source: dict[str, Any]) -> str:
    """How a data source is named on the pages: the Data page's label, else the file or set name."""
    return str(source.get("label") or display_name(str(source.get("dataset", "synthetic"))))


def build_config() -> tuple[RunConfig | None, str | None]:
    """The RunConfig the controls describe, or the validation message that names what to fix."""
    ss = st.session_state
    defaults = control_values(RunConfig())
    values = {k: ss.get(k, defaults[k]) for k in CONTROL_KEYS}
    values["models"] = tuple(ss.get("models", defaults["models"]) or ())
    if ss.get(keys.SWEEP_ON) and not data_source():
        chosen = tuple(sorted(float(p) for p in ss.get(keys.SWEEP_VALUES) or ()))
        if len(chosen) < 2:
            return None, "Choose at least two p values to sweep, or turn the sweep off."
        values["sweep"] = chosen
    if ss.get(keys.MATCH_BOTTOM, True):
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
    refusal = source_refusal(config.dataset)  # a path, or another session's upload (a stored run, a link)
    if refusal:
        return None, f"{refusal}."
    if config.device == "cuda" and not device_info()["cuda"]:
        return None, "This server has no CUDA GPU; choose Auto or CPU as the device."
    return config, None


def _sweep_switched() -> None:
    """A sweep needs a band over seeds to be read: one seed becomes SWEEP_SEEDS, each with its own data draw."""
    if st.session_state.get(keys.SWEEP_ON) and int(st.session_state.get("seeds", 1)) < 2:
        st.session_state["seeds"] = SWEEP_SEEDS
        st.session_state["independent_data"] = True


def sweep_controls(sb: Any) -> None:
    """The Playground's p-sweep switch and, when on, the p values it trains at (RunConfig.sweep)."""
    sb.toggle(
        "Sweep p: train at several correlations at once",
        key=keys.SWEEP_ON,
        persist_state=KEEP,
        on_change=_sweep_switched,
        help="Every chosen model at every p below, each seed paired across p (the same data draw, "
        "only the tasks' angle changes), in one batched run: the paper's Fig. 4 in one press.",
    )
    if st.session_state.get(keys.SWEEP_ON):
        sb.pills(
            "p values to sweep",
            list(SWEEP_CHOICES),
            selection_mode="multi",
            key=keys.SWEEP_VALUES,
            format_func=lambda p: f"{p:g}",
            persist_state=KEEP,
        )
