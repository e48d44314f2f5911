"""How differently the tasks' gates route: the measure behind the p-sweep's gate panel and the heatmaps'
specialisation figure. numpy alone, so the trainer records it without importing the tables' pandas."""

from __future__ import annotations

import numpy as np


def task_difference(gates: np.ndarray) -> np.ndarray:
    """(..., k, e) gate weights -> (...) mean total-variation distance over task pairs (k >= 2); the trainer
    records it per replica for the p-sweep, gate_specialisation reads it off a heatmap's matrix."""
    k = gates.shape[-2]
    pairs = [0.5 * np.abs(gates[..., i, :] - gates[..., j, :]).sum(-1) for i in range(k) for j in range(i + 1, k)]
    return np.mean(pairs, axis=0)
