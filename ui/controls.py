"""The Playground's sidebar controls as RunConfig fields: widget values from a config and back, and the data
source chosen on the Data page.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from mmoe_core.config import RunConfig, field_names

from . import keys
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
# CGC/PLE experts and gate options (Tang et al. 2020; Shazeer et al. 2017), where the library has them
ARCH_KEYS += tuple(
    k
    for k in ("shared_experts", "task_experts", "levels", "top_k", "gate_noise", "balance_weight")
    if k in field_names()
)
TRAIN_KEYS = ("steps", "batch_size", "lr", "seeds", "device", "seed", "log_every", "weighting")
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
    return str(source.get("label") or os.path.basename(str(source.get("dataset", "synthetic"))))


def build_config() -> tuple[RunConfig | None, str | None]:
    """The RunConfig the controls describe, or the validation message that names what to fix."""
    ss = st.session_state
    defaults = control_values(RunConfig())
    values = {k: ss.get(k, defaults[k]) for k in CONTROL_KEYS}
    values["models"] = tuple(ss.get("models", defaults["models"]) or ())
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
    if config.device == "cuda" and not device_info()["cuda"]:
        return None, "This server has no CUDA GPU; choose Auto or CPU as the device."
    return config, None
