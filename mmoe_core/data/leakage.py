"""Inputs that give a target away: an input column (or one of its text values) whose correlation with a target
is almost ±1 on the training rows. A model then learns the copy, not the task, and every comparison between
architectures reads as a tie at a perfect score; the Data page warns before training.

For a text input each value is a one-hot input; the correlation of value v's indicator with target y needs
only the value's share p and the mean of y where it occurs (mu_v): cov = p (mu_v - mu), var = p (1 - p),
so no one-hot matrix is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .csv_table import encode_target, is_numeric

LEAK_CORRELATION = 0.99  # |r| at or above this: the input is (nearly) a copy of the target


def _numeric_corr(x: pd.Series, y: np.ndarray) -> float:
    x = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or x[ok].std() == 0 or y[ok].std() == 0:
        return 0.0
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _category_corr(codes: np.ndarray, values: pd.Index, y: np.ndarray) -> tuple[float, str]:
    """The text value (codes into `values`) whose indicator correlates most with y: (r, value)."""
    ok = np.isfinite(y)
    c, yy = codes[ok], y[ok]
    if len(yy) < 3 or yy.std() == 0:
        return 0.0, ""
    size = np.bincount(c, minlength=len(values)).astype(float)
    total = np.bincount(c, weights=yy, minlength=len(values))
    p = size / len(yy)
    inside = (p > 0) & (p < 1)
    if not inside.any():
        return 0.0, ""
    mean = total[inside] / size[inside]
    r = p[inside] * (mean - yy.mean()) / np.sqrt(p[inside] * (1 - p[inside]) * yy.var())
    best = int(np.argmax(np.abs(r)))
    return float(r[best]), str(values[np.flatnonzero(inside)[best]])


def leak_warnings(
    train: pd.DataFrame, features: Sequence[str], targets: Sequence[str], kinds: Sequence[str]
) -> list[str]:
    """One warning per (input, target) pair with |correlation| >= LEAK_CORRELATION on the training rows."""
    out = []
    text = [c for c in features if not is_numeric(train[c])]
    coded = {c: pd.factorize(train[c].astype(object).where(train[c].notna(), "(missing)").astype(str)) for c in text}
    for target, kind in zip(targets, kinds):
        y, _ = encode_target(train[target], kind)
        for col in features:
            if col in coded:
                r, value = _category_corr(coded[col][0], pd.Index(coded[col][1]), y)
                what = f"input column {col!r} (value {value!r})"
            else:
                r, what = _numeric_corr(train[col], y), f"input column {col!r}"
            if abs(r) >= LEAK_CORRELATION:
                out.append(
                    f"{what} has correlation {r:+.3f} with target {target!r} on the training rows: it gives the "
                    "answer away, so every model scores near-perfectly and the comparison means nothing. Leave it "
                    "out of the inputs unless that is what you want to see"
                )
    return out
