"""Data sources; each returns a TaskData. `load_data(config)` looks the config's dataset name up in the
registry (sources.py): "synthetic" (the paper's §3.2 generator), "census1"/"census2" (UCI Census-Income task
groups, §6.3), "sample:<file>.csv", "upload:<id>" or (command line only) a .csv path, with `targets` (and
optionally `features`, `task_kinds`) naming the table's columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..source_names import is_table
from .sources import CENSUS_DEFAULTS, dataset_defaults, load_data, resolve, store_upload
from .synthetic import make_synthetic_tasks
from .task_data import TaskData

if TYPE_CHECKING:
    from .census import load_census
    from .csv_table import load_csv


def __getattr__(name: str) -> Any:
    """The table loaders on first use: they import pandas, which synthetic runs never need (issue #18)."""
    if name == "load_census":
        from .census import load_census

        return load_census
    if name == "load_csv":
        from .csv_table import load_csv

        return load_csv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CENSUS_DEFAULTS",
    "TaskData",
    "dataset_defaults",
    "is_table",
    "load_census",
    "load_csv",
    "load_data",
    "make_synthetic_tasks",
    "resolve",
    "store_upload",
]
