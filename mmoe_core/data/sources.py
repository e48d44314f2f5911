"""The data-source registry: one entry per source a config may name, with how to load it and the training
settings the Data page recommends for it. A new source is one entry here plus its loader.

Names follow mmoe_core.source_names: built-in ids, `sample:<file>.csv` (sample_data/), `upload:<id>` (a
browser upload under MMOE_HOME/uploads/) and, for the command line only, a .csv path. Whether a *browser*
may name a source (its own uploads only) is decided in the web layer (ui/access.py); this module only
resolves names to files and loads them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..config import RunConfig
from ..source_names import BUILTIN, SAMPLE_PREFIX, UPLOAD_PREFIX, dataset_kind
from .synthetic import make_synthetic_tasks
from .task_data import TaskData

CENSUS_GROUPS = tuple(name for name in BUILTIN if name.startswith("census"))  # = census.DATASETS (tested)
SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"

# Census: all four of the paper's models at its §5.1 sizes (8 experts of 16 units, towers of 8); 400 Adam steps
# of 1,024 rows at lr 3e-3 (2 epochs) take every model past the paper's Table 1 AUCs in about a minute of
# 2-core CPU time (to measure: `OMP_NUM_THREADS=1 python -m bench.census_tables --seeds 10`).
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


@dataclass(frozen=True)
class Source:
    """One data source. `public`: its contents ship with the app (or are generated), so a message may quote
    them to any viewer; an upload or a server file is private to whoever chose it."""

    name: str
    public: bool
    load: Callable[[RunConfig, Path | None], TaskData]  # (config, file of a table source) -> data
    defaults: Callable[[int | None], dict[str, Any]]  # n_rows of a table -> recommended RunConfig values
    path: Path | None = None


def _synthetic(config: RunConfig, path: Path | None) -> TaskData:
    seeds: int | list[int]
    seeds = [config.data_seed + r for r in range(config.seeds)] if config.independent_data else config.data_seed
    if config.sweep:  # every seed at every p: seed s keeps its draw (u, α, β, x, noise) across p
        seeds = seeds if isinstance(seeds, list) else [seeds] * config.seeds
    return make_synthetic_tasks(
        n_train=config.rows,
        n_val=config.eval_rows,
        n_test=config.eval_rows,
        n_features=config.input_dim,
        correlation=config.sweep or config.correlation,
        scale=config.scale,
        n_sine=config.sine_terms,
        noise_std=config.noise_std,
        n_tasks=config.n_tasks,
        random_state=seeds,
    )


# The table loaders import pandas (~0.4 s): imported when a run reads a table, not when synthetic data is drawn.


def _census(config: RunConfig, path: Path | None) -> TaskData:  # one fixed data set: every seed shares it
    from .census import load_census

    return load_census(config.dataset, data_seed=config.data_seed)


def _table(config: RunConfig, path: Path | None) -> TaskData:
    from .csv_table import load_csv

    assert path is not None
    return load_csv(path, config.targets, config.features, config.task_kinds, data_seed=config.data_seed)


def table_defaults(n_rows: int | None) -> dict[str, Any]:
    """For a CSV of `n_rows` rows: about 30 epochs, between 300 and 3,000 steps, with a batch that fits the
    training split, so a small table trains in seconds and a large one still shows a curve."""
    n_train = max(int(0.8 * (n_rows or 10_000)), 1)
    batch = 16  # the largest power of two up to 256 that gives at least 10 batches per epoch
    while batch * 2 <= min(256, n_train // 10):
        batch *= 2
    steps = min(3_000, max(300, 30 * n_train // batch))
    return {"batch_size": batch, "steps": steps, "lr": 1e-3, "log_every": max(1, steps // 40)}


REGISTRY: dict[str, Source] = {
    "synthetic": Source("synthetic", True, _synthetic, lambda n: {}),
    **{g: Source(g, True, _census, lambda n: dict(CENSUS_DEFAULTS)) for g in CENSUS_GROUPS},
}


def samples() -> list[str]:
    """The file names in sample_data/ a browser may name as sample:<file>."""
    return sorted(p.name for p in SAMPLES.glob("*.csv"))


def uploads_dir(home: str | Path | None = None) -> Path:
    return Path(home if home is not None else settings.home()) / "uploads"


def resolve(name: str, home: str | Path | None = None) -> Source:
    """The Source a config's dataset names; ValueError when it names nothing this server has. `home` is the
    run store's folder (uploads live under it)."""
    kind = dataset_kind(name)
    if kind == "builtin":
        return REGISTRY[name]
    if kind == "sample":
        file = name[len(SAMPLE_PREFIX) :]
        if file not in samples():
            raise ValueError(f"dataset={name!r}: there is no such sample table; choose one on the Data page")
        return Source(name, True, _table, table_defaults, SAMPLES / file)
    if kind == "upload":
        path = uploads_dir(home) / f"{name[len(UPLOAD_PREFIX) :]}.csv"
        if not path.is_file():
            raise ValueError(f"dataset={name!r}: that upload is not on this server any more; upload the file again")
        return Source(name, False, _table, table_defaults, path)
    return Source(name, False, _table, table_defaults, Path(name))  # the command line's own file


def load_data(config: RunConfig, home: str | Path | None = None) -> TaskData:
    """The data a run trains on, reproducible from the config alone (and the run store's uploads)."""
    source = resolve(config.dataset, home)
    return source.load(config, source.path)


def dataset_defaults(dataset: str, n_rows: int | None = None) -> dict[str, Any]:
    """Recommended training settings (RunConfig values) for a data source; {} keeps the current ones."""
    kind = dataset_kind(dataset)
    return REGISTRY[dataset].defaults(n_rows) if kind == "builtin" else table_defaults(n_rows)


def store_upload(data: bytes, home: str | Path | None = None) -> str:
    """Check uploaded bytes, store them as uploads/<random id>.csv and return the source name upload:<id>.

    The id is random, not a hash of the bytes: it neither reveals nor confirms a file's contents, and two
    people uploading the same file get different ids. The user's file name never reaches the file system."""
    from .csv_read import max_upload_bytes
    from .table_probe import probe, remember

    limit = max_upload_bytes()
    if len(data) > limit:
        raise ValueError(
            f"the uploaded file is {len(data) / 1e6:.1f} MB, over this server's upload limit of {limit / 1e6:g} MB "
            "(MMOE_MAX_UPLOAD_MB); upload fewer rows or columns"
        )
    folder = uploads_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = secrets.token_hex(8)
    path = folder / f"{upload_id}.csv"
    tmp = path.with_suffix(f".{os.getpid()}.tmp.csv")
    tmp.write_bytes(data)
    try:  # parsed and checked in a child process with a memory cap (table_probe), never in this process
        answer = probe(tmp, "the uploaded file")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    remember(path, answer)  # the Data page shows this answer without parsing the file again
    return UPLOAD_PREFIX + upload_id


def is_public(name: str) -> bool:
    """Whether messages about this source may quote its contents to any viewer (False for unknown names)."""
    try:
        return dataset_kind(name) in ("builtin", "sample")
    except ValueError:
        return False
