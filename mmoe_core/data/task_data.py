"""TaskData: the one shape every data source produces, so the trainer never asks where data came from.

Inputs and targets carry a leading data-replica axis `q`: q = 1 when all seeds share one draw, q = R when
each seed has its own (the paper's protocol for its repeated runs). A sweep over correlations (the
Playground's p-sweep) shares inputs across p: targets then have q = R replicas and inputs fewer, with
`x_index` (R,) naming the input replica of each target replica.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

TASK_KINDS = ("regression", "binary")


@dataclass
class TaskData:
    x_train: torch.Tensor  # (q, n_train, d) float32
    y_train: torch.Tensor  # (q, n_train, k) float32
    x_val: torch.Tensor  # (q, n_val, d)
    y_val: torch.Tensor  # (q, n_val, k)
    x_test: torch.Tensor  # (q, n_test, d)
    y_test: torch.Tensor  # (q, n_test, k)
    task_names: list[str]
    task_kinds: list[str]  # one of TASK_KINDS per task
    label_correlation: list[float]  # Pearson of tasks 0 and 1 on the training labels, one per replica
    feature_names: list[str] = field(default_factory=list)
    description: str = ""
    task_directions: torch.Tensor | None = None  # (q, d, k) synthetic data only: w_k of each draw (specialisation.py)
    x_index: torch.Tensor | None = None  # (q,) long: input replica of each target replica; None: the same index

    def __post_init__(self) -> None:
        qx, _, d = self.x_train.shape
        q = int(self.y_train.shape[0])
        k = len(self.task_names)
        for name in ("x_val", "x_test"):
            assert getattr(self, name).shape[0] == qx and getattr(self, name).shape[2] == d, name
        for name in ("y_train", "y_val", "y_test"):
            assert getattr(self, name).shape[0] == q and getattr(self, name).shape[2] == k, name
        assert (qx == q) if self.x_index is None else tuple(self.x_index.shape) == (q,), "x_index"
        assert len(self.task_kinds) == k and all(t in TASK_KINDS for t in self.task_kinds)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[2])

    @property
    def replicas(self) -> int:
        return int(self.y_train.shape[0])

    def inputs(self, split: str, rows: int | None = None) -> torch.Tensor:
        """x of a split, (q, n, d) with one input block per target replica (expanded through x_index); for the
        small validation and test splits, where every replica's copy costs little."""
        x = getattr(self, f"x_{split}")[:, :rows]
        return x if self.x_index is None else x[self.x_index]

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[1])

    def to(self, device: torch.device | str) -> TaskData:
        moved = {n: getattr(self, n).to(device) for n in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        return TaskData(
            **moved,
            task_names=self.task_names,
            task_kinds=self.task_kinds,
            label_correlation=self.label_correlation,
            feature_names=self.feature_names,
            description=self.description,
            task_directions=self.task_directions,  # stays on the CPU: read at log steps only
            x_index=None if self.x_index is None else self.x_index.to(device),
        )
