"""Generate sample_data/credit_limits.csv: a synthetic table of credit limits
(the limit a customer's finances justify, and two models' predictions of it)
with known, documented gaps (see sample_data/README.md).

Fixed seed: running it again writes the identical file.

Run:  .venv/bin/python sample_data/make_credit_limits.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261201
N = 5000
OUT = Path(__file__).with_name("credit_limits.csv")

AGE_GROUPS = ["18-29", "30-49", "50-64", "65+"]
AGE_P = [0.22, 0.42, 0.26, 0.10]
REGIONS = ["North", "South", "East", "West", "Islands"]
REGION_P = [0.3, 0.28, 0.22, 0.195, 0.005]  # Islands: a handful of rows, under 30


def generate(seed: int = SEED, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.48, 0.52]).astype(object)
    age_group = rng.choice(AGE_GROUPS, size=n, p=AGE_P)
    region = rng.choice(REGIONS, size=n, p=REGION_P)
    income = np.round(rng.lognormal(mean=10.7, sigma=0.5, size=n), -2)
    debt_ratio = np.clip(rng.beta(2, 5, size=n), 0, 1)

    # The limit the finances justify: the same rule for everyone.
    limit = 0.25 * income * (1.2 - debt_ratio) * rng.lognormal(0, 0.12, n)
    limit = np.round(np.clip(limit, 500, None), -1)

    # Model A: a good fit, plus two injected gaps.
    pred_a = limit * rng.lognormal(0, 0.10, n)
    pred_a[sex == "Female"] -= 1200                       # (1) women under-predicted
    old = age_group == "65+"
    pred_a[old] = limit[old] * rng.lognormal(0, 0.35, old.sum())  # (2) noisy for 65+
    # Model B: fair on sex and age, but over-predicts in the South
    pred_b = limit * rng.lognormal(0, 0.10, n)
    pred_b[region == "South"] += 900                      # (3) South over-predicted

    missing = rng.random(n) < 0.02                          # (5) sex unknown for about 2%
    sex[missing] = None
    return pd.DataFrame({
        "customer_id": np.arange(100001, 100001 + n), "sex": sex, "age_group": age_group,
        "region": region, "income": income, "debt_ratio": np.round(debt_ratio, 3),
        "credit_limit": limit, "model_a_limit": np.round(np.clip(pred_a, 0, None), -1),
        "model_b_limit": np.round(np.clip(pred_b, 0, None), -1)})


def main() -> None:
    df = generate()
    df.to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(df):,} rows)")


if __name__ == "__main__":
    main()
