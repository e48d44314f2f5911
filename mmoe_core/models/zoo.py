"""The named models as small constructors over MixtureSpec, defaulting to the paper's §5.1 sizes. Each is
registered under its name with `@kind_spec`; its label, colour and Learn text are its entry in
mmoe_core/model_kinds.py."""

from __future__ import annotations

from collections.abc import Callable

from ..config import RunConfig
from ..model_kinds import KINDS
from .mixture import MixtureModel, MixtureSpec
from .ple import PLEModel, PLESpec, ple_spec

SPECS: dict[str, Callable[..., MixtureSpec]] = {}  # kind name -> constructor, filled by @kind_spec


def kind_spec(fn: Callable[..., MixtureSpec]) -> Callable[..., MixtureSpec]:
    """Register a constructor under its function name, which must be a kind of model_kinds.KINDS."""
    if fn.__name__ not in KINDS:
        raise ValueError(f"{fn.__name__!r} has no entry in mmoe_core/model_kinds.py KINDS; add one")
    SPECS[fn.__name__] = fn
    return fn


def _layers(units: int, layers: int) -> tuple[int, ...]:
    return (units,) * layers


@kind_spec
def single_task(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    bottom_units: int = 113,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    **_: int,
) -> MixtureSpec:
    """One bottom per task, each as wide as the Shared-Bottom: the no-sharing baseline."""
    route = tuple(tuple(1.0 if j == i else 0.0 for j in range(n_tasks)) for i in range(n_tasks))
    return MixtureSpec(
        "single_task",
        input_dim,
        n_tasks,
        n_tasks,
        _layers(bottom_units, expert_layers),
        _layers(tower_units, tower_layers),
        0,
        route,
    )


@kind_spec
def shared_bottom(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    bottom_units: int = 113,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    **_: int,
) -> MixtureSpec:
    """y_k = h_k(f(x)): one shared network, a tower per task."""
    route = tuple((1.0,) for _ in range(n_tasks))
    return MixtureSpec(
        "shared_bottom",
        input_dim,
        n_tasks,
        1,
        _layers(bottom_units, expert_layers),
        _layers(tower_units, tower_layers),
        0,
        route,
    )


@kind_spec
def omoe(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    n_experts: int = 8,
    expert_units: int = 16,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    top_k: int = 0,
    gate_noise: bool = False,
    **_: int,
) -> MixtureSpec:
    """y_k = h_k(Σ_i g(x)_i f_i(x)): one gate shared by every task."""
    return MixtureSpec(
        "omoe",
        input_dim,
        n_tasks,
        n_experts,
        _layers(expert_units, expert_layers),
        _layers(tower_units, tower_layers),
        1,
        top_k=top_k,
        gate_noise=gate_noise,
    )


@kind_spec
def mmoe(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    n_experts: int = 8,
    expert_units: int = 16,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    top_k: int = 0,
    gate_noise: bool = False,
    **_: int,
) -> MixtureSpec:
    """y_k = h_k(Σ_i g_k(x)_i f_i(x)): a gate per task."""
    return MixtureSpec(
        "mmoe",
        input_dim,
        n_tasks,
        n_experts,
        _layers(expert_units, expert_layers),
        _layers(tower_units, tower_layers),
        n_tasks,
        top_k=top_k,
        gate_noise=gate_noise,
    )


@kind_spec
def cgc(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    shared_experts: int = 4,
    task_experts: int = 2,
    expert_units: int = 16,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    top_k: int = 0,
    gate_noise: bool = False,
    **_: int,
) -> PLESpec:
    """Tang et al. 2020 §4.2: task k's gate over its own experts and the shared ones (4 + 2·2 = MMoE's 8)."""
    return ple_spec(
        "cgc",
        input_dim=input_dim,
        n_tasks=n_tasks,
        shared_experts=shared_experts,
        task_experts=task_experts,
        levels=1,
        expert_units=_layers(expert_units, expert_layers),
        tower_units=_layers(tower_units, tower_layers),
        top_k=top_k,
        gate_noise=gate_noise,
    )


@kind_spec
def ple(
    *,
    input_dim: int = 100,
    n_tasks: int = 2,
    shared_experts: int = 4,
    task_experts: int = 2,
    levels: int = 2,
    expert_units: int = 16,
    expert_layers: int = 1,
    tower_units: int = 8,
    tower_layers: int = 1,
    top_k: int = 0,
    gate_noise: bool = False,
    **_: int,
) -> PLESpec:
    """Tang et al. 2020 §4.3: CGC stacked in `levels`, a shared gate feeding each next level's shared experts."""
    return ple_spec(
        "ple",
        input_dim=input_dim,
        n_tasks=n_tasks,
        shared_experts=shared_experts,
        task_experts=task_experts,
        levels=levels,
        expert_units=_layers(expert_units, expert_layers),
        tower_units=_layers(tower_units, tower_layers),
        top_k=top_k,
        gate_noise=gate_noise,
    )


missing = set(KINDS) - set(SPECS)
if missing:
    raise ImportError(f"model kinds without a @kind_spec constructor in models/zoo.py: {', '.join(sorted(missing))}")


def paper_count(spec: MixtureSpec) -> int:
    """The §5.1 count without building the model: expert weights + tower hidden-layer weights."""
    sizes = (spec.input_dim, *spec.expert_units)
    experts = spec.n_experts * sum(a * b for a, b in zip(sizes, sizes[1:]))
    if isinstance(spec, PLESpec) and spec.levels > 1:  # later levels read an expert's output, not x
        deep = (spec.expert_units[-1], *spec.expert_units)
        experts += (spec.levels - 1) * spec.n_experts * sum(a * b for a, b in zip(deep, deep[1:]))
    towers = (spec.expert_units[-1], *spec.tower_units)
    return experts + spec.n_tasks * sum(a * b for a, b in zip(towers, towers[1:]))


def matched_bottom_units(config: RunConfig) -> int:
    """The Shared-Bottom width whose parameter count is closest to MMoE's (113 at the paper's sizes)."""
    kw = _kwargs(config, bottom_units=1)
    target = paper_count(mmoe(**kw))

    def count(width: int) -> int:
        return paper_count(shared_bottom(**{**kw, "bottom_units": width}))

    lo, hi = 1, 2  # the count grows with the width: bisect for the last width at or below the target
    while count(hi) <= target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= target else (lo, mid)
    if count(lo) > target:  # even one unit is over: nothing smaller to try
        return lo
    return hi if abs(count(hi) - target) < abs(count(lo) - target) else lo


def _kwargs(config: RunConfig, **over: int) -> dict[str, int]:
    kw = dict(
        input_dim=config.input_dim,
        n_tasks=config.n_tasks,
        n_experts=config.n_experts,
        expert_units=config.expert_units,
        expert_layers=config.expert_layers,
        tower_units=config.tower_units,
        tower_layers=config.tower_layers,
        bottom_units=config.bottom_units,
        shared_experts=config.shared_experts,
        task_experts=config.task_experts,
        levels=config.levels,
        top_k=config.top_k,
        gate_noise=config.gate_noise,
    )
    kw.update(over)
    return kw


def build_spec(kind: str, config: RunConfig, input_dim: int | None = None, n_tasks: int | None = None) -> MixtureSpec:
    """The spec of model `kind` for a run; data sources may override input_dim and n_tasks."""
    if kind not in SPECS:
        raise ValueError(f"model {kind!r} is unknown; choose from {', '.join(SPECS)}")
    cfg = config.with_(input_dim=input_dim or config.input_dim, n_tasks=n_tasks or config.n_tasks)
    bottom = cfg.bottom_units or matched_bottom_units(cfg)
    return SPECS[kind](**_kwargs(cfg, bottom_units=bottom))


def build_model(
    kind: str, config: RunConfig, replicas: int | None = None, input_dim: int | None = None, n_tasks: int | None = None
) -> MixtureModel:
    spec = build_spec(kind, config, input_dim, n_tasks)
    cls = PLEModel if isinstance(spec, PLESpec) else MixtureModel
    r = replicas or config.replicas
    model = cls(spec, replicas=r, seed=config.replica_seeds() if r == config.replicas else config.seed)
    model.balance = config.balance_weight > 0  # forward then returns the balancing loss as `aux`
    return model
