"""Models: one mixture layer (mixture.py) and the named constructors over it (zoo.py)."""

from .mixture import MixtureModel, MixtureOutput, MixtureSpec
from .zoo import (
    SPECS,
    build_model,
    build_spec,
    matched_bottom_units,
    mmoe,
    omoe,
    paper_count,
    shared_bottom,
    single_task,
)

__all__ = [
    "MixtureModel",
    "MixtureOutput",
    "MixtureSpec",
    "SPECS",
    "build_model",
    "build_spec",
    "matched_bottom_units",
    "mmoe",
    "omoe",
    "paper_count",
    "shared_bottom",
    "single_task",
]
