"""RunConfig: everything that describes one run, validated, as plain JSON and URL query parameters.

One frozen dataclass; each field carries its range and help text in `metadata`, so validation, the CLI,
the URL round-trip and the page widgets all read the same table (as TensorFlow Playground's `State.PROPS`).
A run is fully reproducible from its stored config: data, initialisation and batch order all derive from
`data_seed` and `seed`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from . import limits
from .model_kinds import MODEL_KINDS, kinds_using
from .source_names import BUILTIN, browser_refusal, dataset_kind

DEVICES = ("auto", "cpu", "cuda")
DATASETS = BUILTIN  # or sample:<file>.csv, upload:<id>, or (CLI only) a .csv path: mmoe_core.source_names
WEIGHTINGS = ("equal", "uncertainty", "gradnorm", "pcgrad")  # mmoe_core.weighting implements each
TABLE_TASK_KINDS = ("auto", "regression", "binary")  # per CSV target; auto = two values -> binary

# Guard rails for a shared server (overridable through the environment, issue 7).
_LIMITS_ON = contextvars.ContextVar("mmoe_limits_on", default=True)


@contextlib.contextmanager
def server_limits_off() -> Iterator[None]:
    """Build templates (the study presets) that a tight MMOE_MAX_WORK would refuse: a module must still import,
    and the limit applies when a job is made from the template."""
    token = _LIMITS_ON.set(False)
    try:
        yield
    finally:
        _LIMITS_ON.reset(token)


def _f(default: Any, lo: float | None = None, hi: float | None = None, help: str = "", **extra: Any) -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "help": help, **extra})


@dataclass(frozen=True)
class RunConfig:
    # --- data (paper §3.2) ---
    dataset: str = _f(
        "synthetic",
        help="data source: synthetic, census1, census2 (UCI Census-Income task groups of the paper's §6.3; "
        "census1_strict, census2_strict also drop the inputs that state marital status), "
        "sample:<file>.csv, upload:<id> from the Data page, or (command line only) the path of a .csv file",
    )
    correlation: float = _f(0.5, -1.0, 1.0, "task correlation p: cosine of the two tasks' weight vectors")
    rows: int = _f(100_000, 100, 2_000_000, "training rows")
    eval_rows: int = _f(2_000, 50, 500_000, "rows in each of the validation and test sets")
    input_dim: int = _f(100, 2, 2_000, "input dimension d (paper: 100)")
    n_tasks: int = _f(2, 2, 8, "number of tasks")
    sine_terms: int = _f(10, 0, 100, "sine terms m; 0 makes the tasks linear")
    scale: float = _f(1.0, 0.01, 100.0, "weight scale c")
    noise_std: float = _f(0.1, 0.0, 10.0, "label noise sd (paper's N(0, 0.01) read as a variance)")
    data_seed: int = _f(0, 0, 2**31 - 1, "seed of the data: u1, u2, alpha, beta, inputs and noise")
    independent_data: bool = _f(False, help="each seed gets its own data draw (the paper's protocol)")
    sweep: tuple[float, ...] = _f(
        (),
        help="p values to train at once (the Playground's p-sweep): every seed at every p in one batched run, "
        "each seed's data shared across p; empty trains at `correlation` alone",
    )
    # --- table data (a .csv dataset; census groups fix their own); empty tuples keep old configs valid ---
    targets: tuple[str, ...] = _f((), help="CSV target columns, 2 to 8, e.g. income,churn (one task each)")
    features: tuple[str, ...] = _f((), help="CSV input columns; empty takes every column that is not a target")
    task_kinds: tuple[str, ...] = _f((), help="per CSV target: auto, regression or binary; empty detects each")
    # --- models ---
    models: tuple[str, ...] = _f(("shared_bottom", "omoe", "mmoe"), help="models trained side by side")
    n_experts: int = _f(8, 1, 256, "experts in OMoE/MMoE (paper: 8)")
    expert_units: int = _f(16, 1, 4_096, "hidden units per expert layer (paper: 16)")
    expert_layers: int = _f(1, 1, 8, "ReLU layers per expert (paper: 1)")
    tower_units: int = _f(8, 1, 4_096, "hidden units per tower layer (paper: 8)")
    tower_layers: int = _f(1, 0, 8, "hidden layers per tower (paper: 1)")
    bottom_units: int = _f(0, 0, 65_536, "Shared-Bottom width; 0 matches MMoE's parameter count (paper: 113)")
    shared_experts: int = _f(4, 0, 256, "CGC/PLE experts shared by all tasks, per level (4 + 2 x 2 tasks = MMoE's 8)")
    task_experts: int = _f(2, 0, 256, "CGC/PLE experts of each task, per level (its gate also sees the shared)")
    levels: int = _f(2, 1, 8, "PLE extraction levels; CGC is PLE with one level")
    top_k: int = _f(0, 0, 256, "experts each gate keeps per row (noisy top-k, Shazeer et al. 2017); 0 = dense softmax")
    gate_noise: bool = _f(False, help="add trainable Gaussian noise to the gate logits while training")
    balance_weight: float = _f(0.0, 0.0, 100.0, "weight of the importance + load CV² balancing loss; 0 = off")
    weighting: str = _f("equal", help="how task losses are combined: equal, uncertainty, gradnorm or pcgrad")
    # --- training ---
    steps: int = _f(1_500, 1, 1_000_000, "optimizer steps")
    batch_size: int = _f(256, 1, 65_536, "mini-batch rows")
    lr: float = _f(1e-3, 1e-6, 10.0, "Adam learning rate")
    sweep_lr: tuple[float, ...] = _f(
        (),
        help="learning rates to train at once (a study's rate grid): every seed (and p) at every rate in one "
        "batched run, each replica with its own rate in the one Adam; empty trains at `lr` alone",
    )
    seed: int = _f(0, 0, 2**31 - 1, "seed of initialisation and batch order; replica r uses seed + r (at every p)")
    seeds: int = _f(1, 1, 1_000, "independently initialised replicas trained at once")
    log_every: int = _f(50, 1, 100_000, "steps between recorded points")
    device: str = _f("auto", help="auto picks CUDA when present")

    def __post_init__(self) -> None:
        if isinstance(self.models, (list, str)):  # accept a list or "a,b" from JSON and the CLI
            items = self.models.split(",") if isinstance(self.models, str) else self.models
            object.__setattr__(self, "models", tuple(m.strip() for m in items if m.strip()))
        for name in ("targets", "features", "task_kinds"):  # the same for the table columns
            value = getattr(self, name)
            if isinstance(value, (list, str)):
                items = value.split(",") if isinstance(value, str) else value
                object.__setattr__(self, name, tuple(str(m).strip() for m in items if str(m).strip()))
        _normalise_sweep(self, "sweep", -1.0, 1.0, "p values such as 0,0.5,1")
        _normalise_sweep(self, "sweep_lr", 1e-6, 10.0, "learning rates such as 1e-4,1e-3,1e-2")
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            if f.type in ("int", "float"):
                _check_number(f.name, value, f.type, lo, hi)
        dataset_kind(self.dataset)  # raises with the allowed forms
        _check_columns(self.targets, self.features, self.task_kinds)
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={self.weighting!r} is unknown; choose one of {', '.join(WEIGHTINGS)}")
        if self.dataset == "synthetic" and self.n_tasks > 2 and self.correlation < -1.0 / (self.n_tasks - 1) - 1e-12:
            raise ValueError(
                f"correlation={self.correlation:g} is impossible for n_tasks={self.n_tasks}: every pair of tasks can "
                f"share a cosine no lower than -1/(n_tasks-1) = {-1.0 / (self.n_tasks - 1):.3f}; raise the "
                "correlation or use 2 tasks"
            )
        _check_sweep(self)
        if self.device not in DEVICES:
            raise ValueError(f"device={self.device!r} is unknown; choose one of {', '.join(DEVICES)}")
        if not self.models:
            raise ValueError("models is empty; choose at least one of " + ", ".join(MODEL_KINDS))
        bad = [m for m in self.models if m not in MODEL_KINDS]
        if bad:
            raise ValueError(f"models={bad[0]!r} is unknown; choose from {', '.join(MODEL_KINDS)}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models={','.join(self.models)!r} names a model twice; list each once")
        expert_groups = [m for m in self.models if m in kinds_using("shared_experts")]
        if expert_groups and self.shared_experts + self.task_experts == 0:
            raise ValueError(
                f"shared_experts=0 and task_experts=0 leave {'/'.join(MODEL_KINDS[m] for m in expert_groups)} "
                "without experts; "
                "set at least one of them to 1 or more"
            )
        if self.log_every > self.steps:
            object.__setattr__(self, "log_every", self.steps)
        if _limited(self):  # parameters x seeds, memory, work and inputs of the whole config (mmoe_core.limits)
            limits.check(self)

    # ------------------------------------------------------------------ derived facts
    @property
    def replicas(self) -> int:
        """Models trained at once per model kind: every seed, at every p and learning rate of a sweep."""
        return self.seeds * max(1, len(self.sweep)) * max(1, len(self.sweep_lr))

    @property
    def data_replicas(self) -> int:
        """Target blocks the data holds: every seed at every p; the rates of a sweep share them."""
        return self.seeds * max(1, len(self.sweep))

    def replica_seeds(self) -> list[int]:
        """Each replica's seed (initialisation, batch order, gate noise): seed + r, and in a sweep seed + s at
        every p and rate, so replica (lr_i, p_j, s) is the single run with seed + s at p_j and lr_i, paired."""
        return [self.seed + r % self.seeds for r in range(self.replicas)]

    def replica_correlation(self, replica: int) -> float:
        """The p that replica trains at. Replica order: rate-major, then p, then seed (replica
        (i·P + j)·seeds + s is rate i, p_j, seed s)."""
        return self.sweep[(replica // self.seeds) % len(self.sweep)] if self.sweep else self.correlation

    def replica_lr(self, replica: int) -> float:
        """The Adam learning rate that replica trains at (see replica_correlation for the order)."""
        return self.sweep_lr[replica // self.data_replicas] if self.sweep_lr else self.lr

    def replica_lrs(self) -> list[float]:
        return [self.replica_lr(r) for r in range(self.replicas)]

    def work(self) -> float:
        """Multiply-adds of the whole run (mmoe_core.limits.estimate), to refuse jobs that would hold a shared
        server for hours."""
        return limits.estimate(self).work

    def with_(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["models"] = list(self.models)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown config key {unknown[0]!r}; known keys: {', '.join(field_names())}")
        return cls(**dict(d))

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    # ------------------------------------------------------------------ URL query parameters
    def to_query(self) -> dict[str, str]:
        """Only fields that differ from the defaults, so a shared link stays short."""
        default = RunConfig()
        return {
            f.name: _encode(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[RunConfig, list[str]]:
        """Parse what it can; a bad value falls back to its default with a warning, never an exception.
        A link is browser input: it may name a data source, never a server path. Each value is checked alone
        for its type and range, then the limits (work, memory, parameters) are checked on the whole
        configuration: `seeds=1000&steps=1&batch_size=1` is small, `seeds=1000` alone with the default
        steps is not."""
        warnings: list[str] = []
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for key, raw in query.items():
            if key not in types:
                continue  # other pages' parameters share the URL
            try:
                values[key] = _decode(str(raw), types[key])
                if key == "dataset" and (refusal := browser_refusal(values[key])):
                    raise ValueError(refusal)
                with server_limits_off():  # this field's type and range; the limits judge the whole config
                    cls(**{key: values[key]})
            except (ValueError, TypeError) as exc:
                values.pop(key, None)
                warnings.append(f"URL parameter {key}={_shorten(str(raw))!r} ignored: {exc}")
        try:
            return cls(**values), warnings
        except ValueError as exc:  # fields fine alone, bad together (e.g. too much work)
            return cls(), warnings + [f"URL configuration ignored: {exc}"]


def _shorten(text: str, limit: int = 80) -> str:
    """A value quoted back in a message: a long URL value must not fill the page."""
    return text if len(text) <= limit else text[:limit] + "…"


def _limited(config: RunConfig) -> bool:
    """Whether the server limits apply: not inside server_limits_off(), and never to the defaults, which every
    page builds to show its controls (a tight MMOE_MAX_WORK must refuse jobs, not break the app)."""
    return _LIMITS_ON.get() and any(getattr(config, f.name) != f.default for f in fields(config))


def field_names() -> list[str]:
    return [f.name for f in fields(RunConfig)]


def field_help(name: str) -> str:
    return next(f.metadata["help"] for f in fields(RunConfig) if f.name == name)


def field_range(name: str) -> tuple[float | None, float | None]:
    f = next(f for f in fields(RunConfig) if f.name == name)
    return f.metadata.get("lo"), f.metadata.get("hi")


SWEEP_MAX = 11


def _normalise_sweep(config: RunConfig, name: str, lo: float, hi: float, example: str) -> None:
    """Accept "0,0.5,1" (URL, CLI) or a list (JSON) for a sweep field: a tuple of floats in [lo, hi]."""
    value = getattr(config, name)
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={_shorten(str(item))!r} is not a number; write {example}") from None
        if not math.isfinite(number) or not lo <= number <= hi:
            raise ValueError(f"{name}={number:g} is out of range; every value lies between {lo:g} and {hi:g}")
        out.append(number)
    object.__setattr__(config, name, tuple(out))


def _check_sweep(config: RunConfig) -> None:
    rates = config.sweep_lr
    if rates and not 2 <= len(rates) <= SWEEP_MAX:
        raise ValueError(f"sweep_lr={_encode(rates)!r} names {len(rates)} rates; allowed 2 to {SWEEP_MAX}")
    if len(set(rates)) != len(rates):
        raise ValueError(f"sweep_lr={_encode(rates)!r} names a rate twice; list each once")
    ps = config.sweep
    if not ps:
        return
    if config.dataset != "synthetic":
        raise ValueError(
            f"sweep={_encode(ps)!r} needs the synthetic data, whose task correlation p can be set; "
            f"dataset={config.dataset!r} fixes its own tasks (clear the sweep or choose synthetic)"
        )
    if not 2 <= len(ps) <= SWEEP_MAX:
        raise ValueError(f"sweep={_encode(ps)!r} names {len(ps)} p values; allowed 2 to {SWEEP_MAX}")
    if len(set(ps)) != len(ps):
        raise ValueError(f"sweep={_encode(ps)!r} names a p value twice; list each once")
    if config.n_tasks > 2 and min(ps) < -1.0 / (config.n_tasks - 1) - 1e-12:
        raise ValueError(
            f"sweep={_encode(ps)!r} includes p = {min(ps):g}, impossible for n_tasks={config.n_tasks}: every pair "
            f"of tasks can share a cosine no lower than -1/(n_tasks-1) = {-1.0 / (config.n_tasks - 1):.3f}"
        )


def _check_columns(targets: tuple[str, ...], features: tuple[str, ...], task_kinds: tuple[str, ...]) -> None:
    """Checks that need no file; the CSV loader checks the names against the table itself."""
    if len(targets) > 8:
        raise ValueError(f"targets={','.join(targets)!r} names {len(targets)} columns; allowed 2 to 8")
    for name, cols in (("targets", targets), ("features", features)):
        if len(set(cols)) != len(cols):
            raise ValueError(f"{name}={','.join(cols)!r} names a column twice; list each once")
    bad = [k for k in task_kinds if k not in TABLE_TASK_KINDS]
    if bad:
        raise ValueError(f"task_kinds={bad[0]!r} is unknown; choose from {', '.join(TABLE_TASK_KINDS)}")


def _check_number(name: str, value: Any, kind: str, lo: float | None, hi: float | None) -> None:
    ok_type = isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        ok_type = ok_type or isinstance(value, float)
    if not ok_type:
        raise ValueError(f"{name}={value!r} must be {'an integer' if kind == 'int' else 'a number'}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number between {lo:g} and {hi:g}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name}={value!r} is out of range; allowed {lo:g} to {hi:g}")


def _encode(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(v if isinstance(v, str) else f"{v:g}" for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def _integer(raw: str) -> int:
    """'2000', '2e3' or '2000.0' -> 2000: people write big counts in scientific notation; the range check that
    follows then names the allowed range instead of Python's "invalid literal for int()"."""
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{_shorten(raw)!r} is not a whole number") from None
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{_shorten(raw)!r} is not a whole number")
    return int(value)


def _decode(raw: str, kind: str) -> Any:
    if kind == "int":
        return _integer(raw)
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{_shorten(raw)!r} is not a number") from None
    if kind == "bool":
        if raw.lower() not in ("1", "0", "true", "false"):
            raise ValueError("must be 1 or 0")
        return raw.lower() in ("1", "true")
    if kind == "tuple[str, ...]":
        return tuple(s for s in raw.split(",") if s)
    if kind == "tuple[float, ...]":
        return raw  # RunConfig parses and checks each p, naming the bad one
    return raw
