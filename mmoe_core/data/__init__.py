"""Data sources; each returns a TaskData. `load_data(config)` picks one by the config's dataset name:
"synthetic" (the paper's §3.2 generator), "census1"/"census2" (UCI Census-Income task groups, §6.3; with
"_strict" also without the inputs that state marital status) or the
path of a .csv file with `targets` (and optionally `features`, `task_kinds`) naming its columns.
"""

from __future__ import annotations

from typing import Any

from ..config import RunConfig
from .census import DATASETS as CENSUS_GROUPS
from .census import load_census
from .csv_table import load_csv
from .synthetic import make_synthetic_tasks
from .task_data import TaskData

# Training settings the Data page recommends with each source; it sets them on the Playground's controls.
# Census: all four of the paper's models at its §5.1 sizes (8 experts of 16 units, towers of 8); 400 Adam steps
# of 1,024 rows at lr 3e-3 (2 epochs) take every model past the paper's Table 1 AUCs in about a minute of
# 2-core CPU time (to measure: `OMP_NUM_THREADS=1 python bench/census_tables.py --seeds 10`).
CENSUS_DEFAULTS: dict[str, Any] = {
    "models": ("single_task", "shared_bottom", "omoe", "mmoe"),
    "n_experts": 8,
    "expert_units": 16,
    "tower_units": 8,
    "steps": 400,
    "batch_size": 1024,
    "lr": 3e-3,
    "log_every": 20,
}


def is_table(dataset: str) -> bool:
    """True for a CSV path (its tasks come from `targets`)."""
    return dataset.lower().endswith(".csv")


def dataset_defaults(dataset: str, n_rows: int | None = None) -> dict[str, Any]:
    """Recommended training settings (RunConfig values) for a data source; {} keeps the current ones.

    For a CSV of `n_rows` rows: about 30 epochs, between 300 and 3,000 steps, with a batch that fits the
    training split, so a small table trains in seconds and a large one still shows a curve."""
    if dataset in CENSUS_GROUPS:
        return dict(CENSUS_DEFAULTS)
    if not is_table(dataset):
        return {}
    n_train = max(int(0.8 * (n_rows or 10_000)), 1)
    batch = 16  # the largest power of two up to 256 that gives at least 10 batches per epoch
    while batch * 2 <= min(256, n_train // 10):
        batch *= 2
    steps = min(3_000, max(300, 30 * n_train // batch))
    return {"batch_size": batch, "steps": steps, "lr": 1e-3, "log_every": max(1, steps // 40)}


def load_data(config: RunConfig) -> TaskData:
    """The data a run trains on, reproducible from the config alone."""
    if config.dataset == "synthetic":
        seeds = [config.data_seed + r for r in range(config.seeds)] if config.independent_data else config.data_seed
        return make_synthetic_tasks(
            n_train=config.rows,
            n_val=config.eval_rows,
            n_test=config.eval_rows,
            n_features=config.input_dim,
            correlation=config.correlation,
            scale=config.scale,
            n_sine=config.sine_terms,
            noise_std=config.noise_std,
            n_tasks=config.n_tasks,
            random_state=seeds,
        )
    if config.dataset in CENSUS_GROUPS:  # one fixed data set: every seed shares it (q = 1)
        return load_census(config.dataset, data_seed=config.data_seed)
    if is_table(config.dataset):
        return load_csv(config.dataset, config.targets, config.features, config.task_kinds, data_seed=config.data_seed)
    raise ValueError(f"dataset={config.dataset!r} is unknown")


__all__ = ["TaskData", "dataset_defaults", "is_table", "load_census", "load_csv", "load_data", "make_synthetic_tasks"]
