"""The paper's synthetic tasks with a controlled correlation (Ma et al. 2018, §3.2).

For two tasks, exactly as the paper: orthonormal u1, u2; w1 = c·u1, w2 = c·(p·u1 + sqrt(1-p²)·u2);
x ~ N(0, I_d); y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k with α_i, β_i ~ N(0, 1) shared by the tasks.

For K > 2 tasks we write W = c·U·Lᵀ where U holds K orthonormal columns and L is the Cholesky factor of the
equicorrelation matrix G = (1-p)·I + p·11ᵀ, so every pair of weight vectors has cosine p. For K = 2 the
factor is [[1, 0], [p, sqrt(1-p²)]], which is the paper's construction. G is a valid Gram matrix only for
p >= -1/(K-1).

Noise: the paper writes ε ~ N(0, 0.01); we read 0.01 as the variance, so the default sd is 0.1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .task_data import TaskData


def task_loadings(n_tasks: int, correlation: float) -> torch.Tensor:
    """(k, k) L with L Lᵀ = (1-p)I + p·11ᵀ; row k gives w_k in the orthonormal basis. Lower-triangular (the
    Cholesky factor) except at p = -1/(k-1), where G is singular (the k weight vectors span only k-1
    dimensions: a regular simplex) and the factor comes from G's eigendecomposition."""
    p = float(correlation)
    if not -1.0 <= p <= 1.0:
        raise ValueError(f"correlation={p!r} is out of range; allowed -1 to 1")
    if n_tasks > 2 and p < -1.0 / (n_tasks - 1):
        raise ValueError(
            f"correlation={p!r} is impossible for {n_tasks} tasks: all pairs can share a cosine no lower than "
            f"-1/(k-1) = {-1.0 / (n_tasks - 1):.3f}; raise the correlation or use 2 tasks"
        )
    gram = torch.full((n_tasks, n_tasks), p, dtype=torch.float64)
    gram.fill_diagonal_(1.0)
    if p >= 1.0 or (n_tasks == 2 and p <= -1.0):  # singular: every task lies on u1
        loadings = torch.zeros(n_tasks, n_tasks, dtype=torch.float64)
        loadings[:, 0] = 1.0 if p >= 1.0 else torch.tensor([1.0, -1.0], dtype=torch.float64)
        return loadings
    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return factor
    values, vectors = torch.linalg.eigh(gram)  # singular but positive semi-definite: p = -1/(k-1)
    return vectors * values.clamp(min=0.0).sqrt()  # (k, k): rows' pairwise cosines are p


def _weights(
    g: torch.Generator, n_features: int, n_tasks: int, correlation: float, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal basis U (d, k) and task weights W = c·U·Lᵀ (d, k), drawn first from the seed's generator."""
    basis, _ = torch.linalg.qr(torch.randn(n_features, n_tasks, generator=g, dtype=torch.float64))  # (d, k)
    return basis, scale * basis @ task_loadings(n_tasks, correlation).T  # column k is w_k


def synthetic_weights(
    *, n_features: int = 100, n_tasks: int = 2, correlation: float = 0.5, scale: float = 1.0, random_state: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (u, w) that make_synthetic_tasks uses for this seed, for inspection and tests."""
    return _weights(torch.Generator().manual_seed(int(random_state)), n_features, n_tasks, correlation, scale)


def _draw_inputs(
    g: torch.Generator, n_rows: int, n_features: int, n_tasks: int, n_sine: int, x_out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything a seed draws, none of which depends on p: basis U (d, k), α, β (m,), x (n, d), unit noise (n, k),
    in the generator's order. So a seed's draw is the same at every p: a sweep over p is paired by seed.
    x_out: where x goes (a block of the caller's array: no 400 MB copy at a million rows); the same numbers."""
    basis, _ = torch.linalg.qr(torch.randn(n_features, n_tasks, generator=g, dtype=torch.float64))  # (d, k)
    alpha = torch.randn(n_sine, generator=g, dtype=torch.float64)  # (m,)
    beta = torch.randn(n_sine, generator=g, dtype=torch.float64)  # (m,)
    x = torch.randn(n_rows, n_features, generator=g, out=x_out)  # (n, d) float32
    noise = torch.randn(n_rows, n_tasks, generator=g, dtype=torch.float64)  # (n, k)
    return basis, alpha, beta, x, noise


LABEL_ROWS = 16_384  # rows per block of the label computation: its float64 temporaries stay in cache


def _labels(
    parts: tuple[torch.Tensor, ...], correlation: float, scale: float, noise_std: float, out: torch.Tensor
) -> torch.Tensor:
    """Fills out (n, k) float32 with one seed's labels at correlation p; returns the task weights w (d, k).
    Computed by blocks of rows (every value is a function of its row alone, so the numbers are the same as one
    pass: tests/test_core.py), which saves the n x d float64 copy of x: 0.45 -> 0.35 s at a million rows."""
    basis, alpha, beta, x, noise = parts
    weights = scale * basis @ task_loadings(basis.shape[1], correlation).T  # column k is w_k
    for a in range(0, x.shape[0], LABEL_ROWS):
        z = x[a : a + LABEL_ROWS].double() @ weights  # (b, k): w_kᵀx
        y = z + torch.sin(z.unsqueeze(-1) * alpha + beta).sum(-1)  # (b, k, m) summed over m
        out[a : a + LABEL_ROWS] = y + noise_std * noise[a : a + LABEL_ROWS]
    return weights


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def make_synthetic_tasks(
    *,
    n_train: int = 20_000,
    n_val: int = 2_000,
    n_test: int = 2_000,
    n_features: int = 100,
    correlation: float | Sequence[float] = 0.5,
    scale: float = 1.0,
    n_sine: int = 10,
    noise_std: float = 0.1,
    n_tasks: int = 2,
    random_state: int | Sequence[int] = 0,
) -> TaskData:
    """Generate regression tasks whose weight vectors have cosine `correlation`.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Rows in each split; all splits come from one draw of the weights and α, β.
    n_features : int
        Input dimension d (paper: 100).
    correlation : float in [-1, 1], or a sequence of them (a sweep)
        p, the cosine similarity of the task weight vectors (not the label correlation once n_sine > 0). A
        sequence of P values gives P × len(seeds) target replicas, p-major (replica j·S + s is p_j with seed
        s), each seed's inputs, α, β and basis shared across p and stored once (`TaskData.x_index`).
    random_state : int or sequence of int
        One seed gives one draw (q = 1). A sequence gives one independent draw per seed, stacked on the
        leading axis (q = len(seeds)): the paper's protocol of fresh data for every repeated run.

    Returns
    -------
    TaskData with x_* of shape (q, n, n_features) and y_* of shape (q, n, n_tasks).

    Examples
    --------
    >>> data = make_synthetic_tasks(n_train=1000, correlation=0.9, random_state=0)
    >>> tuple(data.x_train.shape), tuple(data.y_train.shape)
    ((1, 1000, 100), (1, 1000, 2))
    """
    if n_features < n_tasks:
        raise ValueError(f"n_features={n_features} must be at least n_tasks={n_tasks} for orthonormal weights")
    seeds = [int(random_state)] if isinstance(random_state, int) else [int(s) for s in random_state]
    sweep = not isinstance(correlation, (int, float))
    ps = [float(p) for p in correlation] if sweep else [float(correlation)]
    for p in ps:
        task_loadings(n_tasks, p)  # a clear error for an impossible p before anything is drawn
    draws = list(dict.fromkeys(seeds))  # a seed listed twice (shared data in a sweep) is drawn once
    n_rows = n_train + n_val + n_test
    # Filled in place: stacking a list of draws held the data twice (4.1 GB peak at 200 seeds instead of 2 GB).
    x = torch.empty(len(draws), n_rows, n_features)  # (qx, n, d): one block per distinct seed, shared across p
    y = torch.empty(len(ps) * len(seeds), n_rows, n_tasks)  # (q, n, k): replica j·S + s is (p_j, seed s)
    directions = torch.empty(len(ps) * len(seeds), n_features, n_tasks, dtype=torch.float64)  # (q, d, k)
    for i, seed in enumerate(draws):
        parts = _draw_inputs(torch.Generator().manual_seed(seed), n_rows, n_features, n_tasks, n_sine, x_out=x[i])
        for j, p in enumerate(ps):
            for s in (s for s, other in enumerate(seeds) if other == seed):
                q = j * len(seeds) + s
                directions[q] = _labels(parts, p, scale, noise_std, out=y[q])
    x_index = torch.tensor([draws.index(seed) for _ in ps for seed in seeds])
    if x_index.tolist() == list(range(len(y))):
        x_index = None  # one input block per replica, in order: the plain layout
    cut = [n_train, n_train + n_val]
    label = f"p = {', '.join(f'{p:g}' for p in ps)}" if sweep else f"p = {ps[0]:g}"
    return TaskData(
        x_train=x[:, : cut[0]],
        y_train=y[:, : cut[0]],
        x_val=x[:, cut[0] : cut[1]],
        y_val=y[:, cut[0] : cut[1]],
        x_test=x[:, cut[1] :],
        y_test=y[:, cut[1] :],
        task_names=[f"task {k + 1}" for k in range(n_tasks)],
        task_kinds=["regression"] * n_tasks,
        label_correlation=[pearson(yq[:n_train, 0], yq[:n_train, 1]) for yq in y],
        feature_names=[f"x{i}" for i in range(n_features)],
        description=f"synthetic, {label}, m = {n_sine}, d = {n_features}",
        task_directions=directions,
        x_index=x_index,
    )


__all__ = ["make_synthetic_tasks", "synthetic_weights", "task_loadings", "pearson"]
