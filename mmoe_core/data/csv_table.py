"""Tables as multi-task data: read and check a CSV, detect each target's kind, preprocess the inputs.

The same preprocessing serves the user's CSV and Census-Income (census.py): numeric inputs are scaled with
scikit-learn's StandardScaler, text inputs are one-hot encoded, both fitted on the training split only
(a `ColumnTransformer`), so nothing about the validation or test rows leaks into the inputs.

Missing values, said once so every message can point here:
- a row whose *target* is missing is dropped (the count is reported);
- a missing *numeric input* becomes the training median; a missing *text input* becomes its own category.

Every problem with a table raises `ValueError` with a message that names the problem and the fix; the Data
page shows it as is. Limits come from the environment so a shared server can tighten them:
MMOE_MAX_UPLOAD_MB (default 50), MMOE_MAX_ROWS (default 500,000), MMOE_MAX_COLUMNS (default 200).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import settings
from .csv_read import MIN_ROWS, read_csv_path

MAX_CATEGORIES = 64  # per text column; rarer values share one "infrequent" input (keeps IDs from exploding d)
SPLIT = (0.8, 0.1, 0.1)  # train / validation / test fractions of a CSV, shuffled with data_seed
_YES = {"1", "yes", "y", "true", "t", "positive", "pos"}


def is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def detect_kind(s: pd.Series) -> str:
    """'binary' for a column with exactly two distinct values, else 'regression' (numeric columns only)."""
    values = s.dropna()
    if values.nunique() == 2:
        return "binary"
    if is_numeric(s):
        return "regression"
    raise ValueError(target_problem(s) or f"column {s.name!r} cannot be a target")


def target_problem(s: pd.Series, kind: str = "auto") -> str | None:
    """Why column `s` cannot be a target of this kind, or None when it can."""
    values = s.replace([np.inf, -np.inf], np.nan).dropna()
    n = values.nunique()
    if n == 0:
        return f"target {s.name!r} has no values (every row is missing); choose another column"
    if n == 1:
        return (
            f"target {s.name!r} has one class only ({_plain(values.iloc[0])!r} in every row), so there is nothing "
            "to learn; choose another column"
        )
    if kind == "regression" and not is_numeric(s):
        return f"target {s.name!r} is text; a regression target must be numeric — choose binary if it has two values"
    if kind == "binary" and n != 2:
        return (
            f"target {s.name!r} has {n} distinct values; a binary target needs exactly two — "
            "choose regression or another column"
        )
    if not is_numeric(s) and n > 2:
        shown = ", ".join(repr(_plain(v)) for v in values.unique()[:3])
        return (
            f"target {s.name!r} is text with {n} distinct values ({shown}, ...); a target must be a number "
            "(regression) or have exactly two values (binary)"
        )
    return None


def encode_target(s: pd.Series, kind: str) -> tuple[np.ndarray, str]:
    """(n,) float64 targets with NaN where missing, and a note saying what the numbers mean."""
    problem = target_problem(s, kind)
    if problem:
        raise ValueError(problem)
    clean = s.replace([np.inf, -np.inf], np.nan)
    if kind == "binary":
        values = list(pd.unique(clean.dropna()))
        positive = _positive_value(values)
        y = np.where(clean.isna(), np.nan, (clean == positive).astype(float))
        negative = next(v for v in values if v != positive)
        return y, f"{s.name}: 1 = {_plain(positive)!r}, 0 = {_plain(negative)!r}"
    return clean.to_numpy(dtype=float), f"{s.name}: regression"


def _plain(v: object) -> object:
    return v.item() if isinstance(v, np.generic) else v  # np.int64(1) -> 1 in messages


def _positive_value(values: list) -> object:
    """Which of two values is 1: a yes-like value, else the larger number, else the later in sort order."""
    yes = [v for v in values if str(v).strip().lower() in _YES]
    if len(yes) == 1:
        return yes[0]
    try:
        return max(values)
    except TypeError:
        return sorted(values, key=str)[-1]


def column_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per column for the Data page: type, distinct values, missing, and target suitability."""
    rows = []
    for name in df.columns:
        s = df[name]
        kind = detect_kind(s) if target_problem(s) is None else "no"
        rows.append(
            {
                "column": name,
                "type": "number" if is_numeric(s) else "text",
                "distinct": int(s.nunique()),
                "missing": int(s.isna().sum()),
                "as target": kind,
                "example": str(s.dropna().iloc[0]) if s.notna().any() else "",
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- inputs
OTHER, MISSING = "(other)", "(missing)"


def vocabulary(train: pd.Series) -> list[str]:
    """The text values a column one-hot encodes: all of them, or the MAX_CATEGORIES - 1 most frequent in
    the training rows plus one shared "(other)" input, so an ID-like column cannot blow up the input size."""
    counts = _as_text(train).value_counts()
    if len(counts) <= MAX_CATEGORIES:
        return sorted(counts.index)
    return sorted(counts.index[: MAX_CATEGORIES - 1]) + [OTHER]


def category_codes(s: pd.Series, vocab: list[str]) -> np.ndarray:
    """(n,) int codes into vocab; values outside it go to "(other)" when present, else -1 (all-zero row)."""
    codes = pd.Index(vocab).get_indexer(_as_text(s)).astype(np.int64)  # -1: not in vocab
    if vocab and vocab[-1] == OTHER:
        codes[codes < 0] = len(vocab) - 1
    return codes


def _as_text(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), MISSING).astype(str)


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.2f} MB"


def _float32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)  # keeps the stacked inputs float32 (half the memory of float64)


def make_preprocessor(numeric: Sequence[str], vocabs: dict[str, list[str]]):
    """StandardScaler for numbers (missing -> training median), OneHotEncoder for text columns given as
    integer codes (numpy fast path; names come from the vocabularies). Output: numeric columns first."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", keep_empty_features=True),
                    StandardScaler(),
                    FunctionTransformer(_float32),
                ),
                list(numeric),
            )
        )
    if vocabs:
        onehot = OneHotEncoder(
            categories=[np.arange(len(v)) for v in vocabs.values()],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
        parts.append(("cat", onehot, list(vocabs)))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def split_columns(df: pd.DataFrame, features: Sequence[str]) -> tuple[list[str], list[str]]:
    """Numeric and text input columns (booleans count as text: two categories)."""
    numeric = [c for c in features if is_numeric(df[c])]
    return numeric, [c for c in features if c not in numeric]


@dataclass
class PreparedTable:
    """Numpy arrays ready to become a TaskData (float32 inputs, float32 targets)."""

    x: dict[str, np.ndarray]  # split -> (n, d)
    y: dict[str, np.ndarray]  # split -> (n, k)
    feature_names: list[str]
    n_numeric: int
    notes: list[str]


def prepare_splits(
    frames: dict[str, pd.DataFrame],
    features: Sequence[str],
    targets: Sequence[str],
    kinds: Sequence[str],
    numeric: Sequence[str] | None = None,
    expand: bool = True,
) -> PreparedTable:
    """Encode targets, drop rows whose target is missing, fit the preprocessor on 'train', transform all.

    `numeric` names the columns to scale; None takes every numeric-typed input (a coded column such as an
    industry code is a category even though it is written as a number: name the numeric ones then).
    expand=False stops after the size check, before any one-hot matrix exists: x stays empty, the names and
    targets are filled (what the Data page needs to show a choice)."""
    leaked = sorted(set(features) & set(targets))
    if leaked:
        raise ValueError(f"column {leaked[0]!r} is both a target and an input; remove it from the inputs")
    if not features:
        raise ValueError("no input columns are left; keep at least one column that is not a target")
    train = frames["train"]
    if numeric is None:
        numeric, categorical = split_columns(train, features)
    else:
        numeric, categorical = list(numeric), [c for c in features if c not in numeric]
    notes, ys, keep = [], {}, {}
    for split, df in frames.items():
        cols, notes_split = [], []
        for t, kind in zip(targets, kinds):
            y, note = encode_target(df[t], kind)
            cols.append(y)
            notes_split.append(note)
        y = np.stack(cols, axis=1)  # (n, k)
        keep[split] = ~np.isnan(y).any(axis=1)
        ys[split] = y[keep[split]].astype(np.float32)
        if split == "train":
            notes += notes_split
    dropped = sum(int((~k).sum()) for k in keep.values())
    if dropped:
        notes.append(f"{dropped} rows with a missing target were dropped")
    if len(ys["train"]) < MIN_ROWS * SPLIT[0]:
        raise ValueError(
            f"only {len(ys['train'])} training rows have every target; at least "
            f"{int(MIN_ROWS * SPLIT[0])} are needed — fill the missing targets or choose others"
        )
    missing = int(sum(frames[s][list(features)].isna().sum().sum() for s in frames))
    if missing:
        notes.append(f"{missing} missing input values: numbers take the training median, text gets its own category")
    rows = {s: df.loc[keep[s]] for s, df in frames.items()}
    vocabs = {c: vocabulary(rows["train"][c]) for c in categorical}
    n_inputs = len(numeric) + sum(len(v) for v in vocabs.values())
    need = 4.0 * n_inputs * sum(len(df) for df in rows.values())  # float32 inputs held in memory
    MAX_DATA_BYTES = settings.get("MMOE_MAX_DATA_BYTES")

    if need > MAX_DATA_BYTES:
        raise ValueError(
            f"the inputs would take {_size(need)} ({n_inputs:,} after one-hot encoding), over "
            f"this server's limit of {_size(MAX_DATA_BYTES)} (MMOE_MAX_DATA_BYTES); leave out "
            "text columns with many values, or use fewer rows"
        )
    if not expand:
        names = [str(c) for c in numeric] + [f"{c}={v}" for c, vocab in vocabs.items() for v in vocab]
        return PreparedTable({}, ys, names, len(numeric), notes)
    coded = {
        s: pd.DataFrame(
            {**{c: df[c].to_numpy() for c in numeric}, **{c: category_codes(df[c], vocabs[c]) for c in categorical}}
        )
        for s, df in rows.items()
    }
    for df in coded.values():  # numbers stay numbers; NaN is imputed by the numeric pipeline
        df[numeric] = df[numeric].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    pre = make_preprocessor(numeric, vocabs)
    pre.fit(coded["train"])
    xs = {s: np.ascontiguousarray(pre.transform(df), dtype=np.float32) for s, df in coded.items()}
    names = [str(c) for c in numeric] + [f"{c}={v}" for c, vocab in vocabs.items() for v in vocab]
    assert len(names) == xs["train"].shape[1], (len(names), xs["train"].shape)
    return PreparedTable(xs, ys, names, len(numeric), notes)


def standardize_regression(table: PreparedTable, kinds: Sequence[str]) -> list[str]:
    """Scale regression targets to mean 0, sd 1 on the training split, so one learning rate fits every
    table and a test loss of 1.0 means 'no better than predicting the mean'."""
    notes = []
    for k, kind in enumerate(kinds):
        if kind != "regression":
            continue
        mu, sd = float(table.y["train"][:, k].mean()), float(table.y["train"][:, k].std()) or 1.0
        for split in table.y:
            table.y[split][:, k] = (table.y[split][:, k] - mu) / sd
        notes.append(f"target {k + 1} standardised (mean {mu:.4g}, sd {sd:.4g})")
    return notes


def pearson_first_two(y: np.ndarray) -> float:
    """Pearson correlation of the first two targets; NaN when one is constant."""
    a, b = y[:, 0].astype(float), y[:, 1].astype(float)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------------- CSV -> TaskData
def resolve_columns(
    df: pd.DataFrame, targets: Sequence[str], features: Sequence[str], task_kinds: Sequence[str]
) -> tuple[list[str], list[str], list[str]]:
    """Check the chosen columns against the table; returns (targets, features, kinds) with kinds resolved."""
    if len(targets) < 2:
        raise ValueError(
            f"a CSV run needs two or more target columns (targets={','.join(targets)!r}); "
            "choose them on the Data page or pass --targets col_a,col_b"
        )
    missing = [c for c in list(targets) + list(features) if c not in df.columns]
    if missing:
        raise ValueError(
            f"column {missing[0]!r} is not in the table; its columns are {', '.join(map(str, df.columns[:20]))}"
        )
    if task_kinds and len(task_kinds) != len(targets):
        raise ValueError(
            f"task_kinds has {len(task_kinds)} entries for {len(targets)} targets; give one per "
            "target (auto, regression or binary) or none"
        )
    kinds = []
    for t, kind in zip(targets, list(task_kinds) or ["auto"] * len(targets)):
        problem = target_problem(df[t], kind)
        if problem:
            raise ValueError(problem)
        kinds.append(detect_kind(df[t]) if kind == "auto" else kind)
    feats = list(features) or [c for c in df.columns if c not in targets]
    return list(targets), feats, kinds


def split_rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """Shuffled 80/10/10 row indices, reproducible from the data seed."""
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(n * SPLIT[0]), int(n * (SPLIT[0] + SPLIT[1]))
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


@dataclass
class TableChoice:
    """What the Data page shows before a run: the resolved tasks and the inputs they will see."""

    targets: list[str]
    features: list[str]
    kinds: list[str]
    n_inputs: int  # after one-hot encoding
    n_train: int
    label_correlation: float
    notes: list[str]
    warnings: list[str] = field(default_factory=list)  # e.g. an input that gives a target away (leakage.py)

    def source(self, path: str | Path, label: str, all_features: bool) -> dict:
        """RunConfig values for this choice (the Playground merges them into its config)."""
        out = {
            "dataset": str(path),
            "targets": tuple(self.targets),
            "features": () if all_features else tuple(self.features),
            "task_kinds": tuple(self.kinds),
            "n_tasks": len(self.targets),
            "label": label,
        }
        if 2 <= self.n_inputs <= 2_000:  # RunConfig.input_dim's range; the loader reads d from the data anyway
            out["input_dim"] = self.n_inputs
        return out


def check_choice(
    df: pd.DataFrame,
    targets: Sequence[str],
    features: Sequence[str] = (),
    task_kinds: Sequence[str] = (),
    data_seed: int = 0,
) -> TableChoice:
    """Everything load_csv would check and compute, on a table already read (raises ValueError). The inputs are
    sized, not built: the one-hot matrix of a wide table is the largest thing in memory, and only the training
    worker needs it."""
    from .leakage import leak_warnings

    targets, feats, kinds = resolve_columns(df, targets, features, task_kinds)
    frames = {s: df.iloc[i].reset_index(drop=True) for s, i in split_rows(len(df), data_seed).items()}
    table = prepare_splits(frames, feats, targets, kinds, expand=False)
    return TableChoice(
        targets,
        feats,
        kinds,
        len(table.feature_names),
        len(table.y["train"]),
        pearson_first_two(table.y["train"]),
        table.notes,
        leak_warnings(frames["train"], feats, targets, kinds),
    )


def load_csv(
    path: str | Path,
    targets: Sequence[str],
    features: Sequence[str] = (),
    task_kinds: Sequence[str] = (),
    data_seed: int = 0,
):
    """A CSV as TaskData: shuffled 80/10/10 split, preprocessed on the training rows."""
    import torch

    from .task_data import TaskData

    df = read_csv_path(path)
    targets, feats, kinds = resolve_columns(df, targets, features, task_kinds)
    idx = split_rows(len(df), data_seed)
    frames = {s: df.iloc[i].reset_index(drop=True) for s, i in idx.items()}
    table = prepare_splits(frames, feats, targets, kinds)
    notes = table.notes + standardize_regression(table, kinds)
    t = {f"{v}_{s}": torch.from_numpy(getattr(table, v)[s]).unsqueeze(0) for v in ("x", "y") for s in idx}
    return TaskData(
        **t,
        task_names=[str(c) for c in targets],
        task_kinds=kinds,
        label_correlation=[pearson_first_two(table.y["train"])],
        feature_names=table.feature_names,
        description=f"{Path(path).name}: {len(df):,} rows, {len(feats)} input columns -> "
        f"{len(table.feature_names)} inputs; " + "; ".join(notes),
    )


__all__ = [
    "TableChoice",
    "check_choice",
    "column_summary",
    "detect_kind",
    "encode_target",
    "load_csv",
    "prepare_splits",
]
