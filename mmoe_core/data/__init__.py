"""Data sources; each returns a TaskData. `load_data(config)` picks one by the config's dataset name."""

from __future__ import annotations

from ..config import RunConfig
from .synthetic import make_synthetic_tasks
from .task_data import TaskData


def load_data(config: RunConfig) -> TaskData:
    """The data a run trains on, reproducible from the config alone."""
    if config.dataset == "synthetic":
        seeds = (
            [config.data_seed + r for r in range(config.seeds)] if config.independent_data else config.data_seed
        )
        return make_synthetic_tasks(
            n_train=config.rows, n_val=config.eval_rows, n_test=config.eval_rows, n_features=config.input_dim,
            correlation=config.correlation, scale=config.scale, n_sine=config.sine_terms,
            noise_std=config.noise_std, n_tasks=config.n_tasks, random_state=seeds,
        )
    raise ValueError(f"dataset={config.dataset!r} is unknown")


__all__ = ["TaskData", "load_data", "make_synthetic_tasks"]
