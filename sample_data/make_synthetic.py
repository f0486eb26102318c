"""Generate sample_data/loans.csv: a synthetic loan-approval decision table
with known, documented disparities (see sample_data/README.md).

Fixed seed: running it again writes the identical file.

Run:  .venv/bin/python sample_data/make_synthetic.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261123
N = 6000
OUT = Path(__file__).with_name("loans.csv")

RACES = ["White", "Black", "Hispanic", "Asian", "Native American"]
RACE_P = [0.62, 0.16, 0.14, 0.0765, 0.0035]  # Native American: ~21 rows, under 30
AGE_GROUPS = ["18-25", "26-40", "41-60", "61+"]
AGE_RANGES = [(18, 26), (26, 41), (41, 61), (61, 80)]
AGE_P = [0.18, 0.40, 0.32, 0.10]


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def generate(seed: int = SEED, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.46, 0.54]).astype(object)
    race = rng.choice(RACES, size=n, p=RACE_P)
    age_idx = rng.choice(len(AGE_GROUPS), size=n, p=AGE_P)
    age = np.array([rng.integers(*AGE_RANGES[i]) for i in age_idx])
    income = np.round(rng.lognormal(mean=10.8, sigma=0.45, size=n), -2)
    debt_ratio = np.clip(rng.beta(2, 5, size=n), 0, 1)

    # True ability to repay: the same distribution in every group.
    ability = (0.9 * (np.log(income) - 10.8) / 0.45 - 1.2 * (debt_ratio - 0.29) / 0.16
               + rng.normal(0, 1.0, n))
    repaid = ability + rng.normal(0, 0.6, n) > -0.75          # base rate about 70%

    # Model A: a legitimate score plus two injected biases.
    logit_a = 1.5 * ability + 0.6 + rng.normal(0, 0.5, n)
    logit_a[race == "Black"] -= 1.1                            # (1) race penalty for everyone
    logit_a[(sex == "Female") & repaid] -= 1.2                 # (2) qualified women held back
    score_a = _sigmoid(logit_a)

    # Model B: fair on sex and race, but (3) over-approves the young: it is lenient on
    # applicants aged 18-25 who will not repay.
    logit_b = 1.4 * ability + 0.5 + rng.normal(0, 0.6, n)
    young_bad = (age_idx == 0) & ~repaid
    logit_b[young_bad] += 1.6
    score_b = _sigmoid(logit_b)

    sex[rng.random(n) < 0.025] = None                          # (5) sex missing for ~2.5%

    yes_no = np.array(["no", "yes"], dtype=object)
    return pd.DataFrame({
        "application_id": [f"A{100000 + i}" for i in range(n)],
        "sex": sex, "race": race, "age": age,
        "age_group": np.asarray(AGE_GROUPS, dtype=object)[age_idx],
        "income": income, "debt_ratio": np.round(debt_ratio, 3),
        "repaid": yes_no[repaid.astype(int)],
        "model_a_score": np.round(score_a, 4),
        "model_a_approved": yes_no[(score_a >= 0.5).astype(int)],
        "model_b_score": np.round(score_b, 4),
        "model_b_approved": yes_no[(score_b >= 0.5).astype(int)],
    })


def main() -> None:
    df = generate()
    df.to_csv(OUT, index=False)
    print(f"wrote {OUT.name}: {len(df):,} rows")


if __name__ == "__main__":
    main()
