"""What a run will cost, estimated from its whole config before it is queued, and the server's limits on it.

A shared server must refuse a run that would hold it for hours or exhaust its memory *before* a worker
allocates anything, and say which setting to lower. Everything here is arithmetic on the config (no torch):
parameters per model (the MixtureModel/PLEModel layout: stacked experts, gates, towers, biases), times seeds;
training memory (weights, gradients and Adam's two moments, activations of one batch, the float32 inputs);
and work (multiply-adds of every training step and evaluation). The limits are environment settings
(mmoe_core/settings.py): MMOE_MAX_PARAMS, MMOE_MAX_MEMORY_BYTES, MMOE_MAX_WORK and MMOE_MAX_DATA_BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from . import settings

if TYPE_CHECKING:
    from .config import RunConfig

BYTES_PER_PARAM = 16  # float32 weight + gradient + Adam's m and v
ACTIVATION_COPIES = 4  # per hidden unit and row: pre-activation, ReLU output and their gradients
# The settings a cost grows with; the message names the one furthest above its default.
MODEL_FACTORS = (
    "n_experts",
    "expert_units",
    "expert_layers",
    "input_dim",
    "tower_units",
    "tower_layers",
    "bottom_units",
    "shared_experts",
    "task_experts",
    "levels",
    "n_tasks",
    "seeds",
)
WORK_FACTORS = MODEL_FACTORS + ("steps", "batch_size", "eval_rows")
MEMORY_FACTORS = MODEL_FACTORS + ("batch_size", "rows", "eval_rows")


def _mlp(sizes: tuple[int, ...]) -> int:
    """Weights and biases of a chain of dense layers."""
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def _bank(d: int, experts: int, units: tuple[int, ...]) -> tuple[int, int]:
    """(parameters, hidden units per row) of `experts` stacked experts reading d inputs."""
    return experts * _mlp((d, *units)), experts * sum(units)


def model_cost(kind: str, c: RunConfig) -> tuple[int, int]:
    """(parameters of one seed, hidden units one row passes through) of model `kind` under config c."""
    k, d = c.n_tasks, c.input_dim
    units = (c.expert_units,) * c.expert_layers
    towers = k * _mlp((units[-1], *(c.tower_units,) * c.tower_layers, 1))
    tower_units = k * c.tower_units * c.tower_layers
    gates = 2 if c.gate_noise else 1  # a noisy gate has a second (noise) weight matrix
    if kind in ("single_task", "shared_bottom"):
        if c.bottom_units:
            width = (c.bottom_units,) * c.expert_layers
            towers = k * _mlp((width[-1], *(c.tower_units,) * c.tower_layers, 1))
            params, hidden = _bank(d, 1, width)
        else:  # matched to MMoE's parameter count (models.zoo.matched_bottom_units)
            params, hidden = _bank(d, c.n_experts, units)
            towers = 0
        if kind == "single_task":
            params, hidden = k * params, k * hidden
        return params + towers, hidden + tower_units
    if kind in ("omoe", "mmoe"):
        n_gates = 1 if kind == "omoe" else k
        params, hidden = _bank(d, c.n_experts, units)
        return params + gates * d * n_gates * c.n_experts + towers, hidden + n_gates * c.n_experts + tower_units
    levels = c.levels if kind == "ple" else 1
    e = c.shared_experts + k * c.task_experts
    params = hidden = 0
    for level in range(levels):
        d_in = d if level == 0 else units[-1]
        p, h = _bank(d_in, e, units)
        n_gates = k + (1 if level < levels - 1 else 0)  # PLE's shared gate feeds the next level
        params += p + gates * d_in * n_gates * e
        hidden += h + n_gates * e
    return params + towers, hidden + tower_units


@dataclass(frozen=True)
class Cost:
    params: dict[str, int]  # model -> parameters of one seed
    total_params: int  # every model, every seed
    memory_bytes: float  # training memory of the worker: parameters with Adam, one batch, the inputs
    data_bytes: float  # float32 inputs held in memory
    work: float  # multiply-adds: forward + backward of every step, plus the evaluations


def estimate(c: RunConfig) -> Cost:
    """The run's cost from its config alone (a CSV's true input width is only known to its loader, which
    checks its own bytes; here input_dim stands for it)."""
    per_model = {m: model_cost(m, c) for m in c.models}
    params = {m: p for m, (p, _) in per_model.items()}
    seed_params = sum(params.values())
    hidden = sum(h for _, h in per_model.values())
    r = c.replicas  # every seed at every p of a sweep; a seed's inputs are shared across p
    rows = c.rows + 2 * c.eval_rows
    targets = c.n_tasks * c.data_replicas if c.sweep else 0  # a p-sweep: targets per p and seed, inputs per seed
    data_bytes = 4.0 * rows * (c.input_dim * (c.seeds if c.independent_data else 1) + targets)
    activations = 4.0 * ACTIVATION_COPIES * r * c.batch_size * (hidden + c.input_dim)
    memory = BYTES_PER_PARAM * seed_params * r + activations + data_bytes
    evaluations = c.steps // max(c.log_every, 1) + 2
    work = r * seed_params * (3.0 * c.steps * c.batch_size + evaluations * c.eval_rows)
    return Cost(params, seed_params * r, memory, data_bytes, work)


def biggest_factor(c: RunConfig, names: tuple[str, ...]) -> str:
    """'n_experts=256 (32x its default 8)': the setting furthest above its default, the one to lower first."""
    defaults = {f.name: f.default for f in fields(c)}
    best, ratio = None, 0.0
    for name in names:
        default = defaults[name] or (113 if name == "bottom_units" else 1)  # 0 = matched width (paper: 113)
        value = getattr(c, name)
        if value and value / default > ratio:
            best, ratio = name, value / default
    if best is None or ratio <= 1.0:
        return f"{len(c.models)} models side by side"
    return f"{best}={getattr(c, best)} ({ratio:,.0f}x its default {defaults[best]})"


def _others(c: RunConfig, names: tuple[str, ...], *usual: str) -> str:
    """', or steps, batch_size or seeds': the usual settings to lower, less the one already named."""
    named = biggest_factor(c, names).split("=")[0]
    rest = [n for n in usual if n != named]
    return ", or " + (", ".join(rest[:-1]) + " or " + rest[-1] if len(rest) > 1 else rest[0])


def check(c: RunConfig) -> None:
    """Raise ValueError naming the limit, the variable that sets it and the setting to lower first."""
    cost = estimate(c)
    max_data, max_params = settings.get("MMOE_MAX_DATA_BYTES"), settings.get("MMOE_MAX_PARAMS")
    max_memory, max_work = settings.get("MMOE_MAX_MEMORY_BYTES"), settings.get("MMOE_MAX_WORK")
    if cost.data_bytes > max_data:
        raise ValueError(
            f"rows x input_dim x seeds needs {cost.data_bytes / 1e9:.1f} GB of inputs, over this server's "
            f"limit of {max_data / 1e9:.1f} GB; lower rows, input_dim or seeds (MMOE_MAX_DATA_BYTES sets the limit)"
        )
    if cost.total_params > max_params:
        raise ValueError(
            f"the models would have {cost.total_params:,} parameters over {c.replicas} seed(s) and p values, over this server's "
            f"limit of {max_params:,.0f} (MMOE_MAX_PARAMS); the biggest factor is "
            f"{biggest_factor(c, MODEL_FACTORS)}: lower it{_others(c, MODEL_FACTORS, 'n_experts', 'expert_units', 'expert_layers')}"
        )
    if cost.memory_bytes > max_memory:
        raise ValueError(
            f"training would need about {cost.memory_bytes / 1e9:.1f} GB of memory (parameters with Adam, one "
            f"batch of activations, the inputs), over this server's limit of {max_memory / 1e9:.1f} GB "
            f"(MMOE_MAX_MEMORY_BYTES); the biggest factor is {biggest_factor(c, MEMORY_FACTORS)}: lower it"
            f"{_others(c, MEMORY_FACTORS, 'batch_size', 'seeds')}"
        )
    if cost.work > max_work:
        raise ValueError(
            f"this run is too much work for this server ({cost.work:.2g} > {max_work:.2g} multiply-adds, "
            f"MMOE_MAX_WORK); the biggest factor is {biggest_factor(c, WORK_FACTORS)}: lower it"
            f"{_others(c, WORK_FACTORS, 'steps', 'batch_size', 'seeds')}"
        )
