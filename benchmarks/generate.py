"""Generate the benchmark table: N rows, 3 sensitive attributes (2 x 5 x 4 = 40
intersectional groups), a label, 2 models (decision + score each).

Usage: .venv/bin/python benchmarks/generate.py 1000000 [10000000 ...]
Writes benchmarks/data/bench_<N>.parquet (and .csv for N <= 1M).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).with_name("data")
COLUMNS = ["label", "model_a", "model_b", "score_a", "score_b", "sex", "race", "age_group"]


def generate(n: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["Female", "Male"], dtype=object), n, p=[0.48, 0.52])
    race = rng.choice(np.array(["White", "Black", "Hispanic", "Asian", "Other"], dtype=object),
                      n, p=[0.6, 0.13, 0.17, 0.06, 0.04])
    age = rng.choice(np.array(["18-25", "26-40", "41-60", "61+"], dtype=object), n,
                     p=[0.2, 0.4, 0.3, 0.1])
    z = rng.normal(size=n)
    label = (z + rng.normal(0, 0.7, n) > 0.3).astype(np.int8)
    score_a = 1 / (1 + np.exp(-(1.6 * z + rng.normal(0, 0.6, n) - 0.2 * (race == "Black"))))
    score_b = 1 / (1 + np.exp(-(1.3 * z + rng.normal(0, 0.8, n))))
    return pd.DataFrame({
        "label": label, "model_a": (score_a >= 0.5).astype(np.int8),
        "model_b": (score_b >= 0.5).astype(np.int8), "score_a": score_a, "score_b": score_b,
        "sex": pd.array(sex, dtype="str"), "race": pd.array(race, dtype="str"),
        "age_group": pd.array(age, dtype="str")})


def ensure(n: int, csv: bool = False) -> Path:
    DATA.mkdir(exist_ok=True)
    path = DATA / f"bench_{n}.parquet"
    if not path.exists():
        df = generate(n)
        df.to_parquet(path, index=False)
        if csv:
            df.to_csv(path.with_suffix(".csv"), index=False)
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["1000000"]:
        n = int(arg)
        print(ensure(n, csv=n <= 1_000_000))
