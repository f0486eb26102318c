"""Generate sample_data/triage.csv: a synthetic emergency-department triage
table (four levels) with known, documented gaps (see sample_data/README.md).

Fixed seed: running it again writes the identical file.

Run:  .venv/bin/python sample_data/make_triage.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261201
N = 8000
OUT = Path(__file__).with_name("triage.csv")

LEVELS = np.array(["1 immediate", "2 urgent", "3 standard", "4 non-urgent"], dtype=object)
LEVEL_P = [0.08, 0.27, 0.45, 0.20]          # the same in every group
RACES = ["White", "Black", "Hispanic", "Asian", "Pacific Islander"]
RACE_P = [0.58, 0.20, 0.14, 0.0775, 0.0025]  # Pacific Islander: about 20 rows, under 30
AGE_GROUPS = ["18-39", "40-64", "65+"]
AGE_RANGES = [(18, 40), (40, 65), (65, 95)]
AGE_P = [0.38, 0.37, 0.25]
#: How often a model gives the true level; otherwise a neighbouring level.
RIGHT = 0.82


def _assign(rng, true: np.ndarray, right: float) -> np.ndarray:
    """The true level with probability ``right``, else one level up or down
    (at the ends, the only neighbour)."""
    n = len(true)
    step = np.where(rng.random(n) < 0.5, -1, 1)
    step = np.where(true == 0, 1, np.where(true == len(LEVELS) - 1, -1, step))
    return np.where(rng.random(n) < right, true, true + step)


def generate(seed: int = SEED, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.52, 0.48]).astype(object)
    race = rng.choice(RACES, size=n, p=RACE_P)
    age_idx = rng.choice(len(AGE_GROUPS), size=n, p=AGE_P)
    age = np.array([rng.integers(*AGE_RANGES[i]) for i in age_idx])
    true = rng.choice(len(LEVELS), size=n, p=LEVEL_P)

    # Model A: mostly right, with three injected gaps.
    a = _assign(rng, true, RIGHT)
    u = rng.random(n)
    # (1) Black patients who are truly 'urgent' are under-triaged to 'standard'.
    a[(race == "Black") & (true == 1) & (u < 0.40)] = 2
    # (2) Women who are truly 'immediate' are under-triaged to 'urgent'.
    a[(sex == "Female") & (true == 0) & (u < 0.35)] = 1
    # (3) Patients aged 65+ who are truly 'standard' are over-triaged to 'urgent'.
    a[(age_idx == 2) & (true == 2) & (u < 0.25)] = 1

    # Model B: the same accuracy, no injected gap.
    b = _assign(rng, true, RIGHT)

    return pd.DataFrame({
        "patient_id": [f"P{i:05d}" for i in range(1, n + 1)],
        "sex": sex, "race": race, "age": age,
        "age_group": np.array(AGE_GROUPS, dtype=object)[age_idx],
        "true_level": LEVELS[true],
        "model_a_level": LEVELS[a],
        "model_b_level": LEVELS[b],
    })


def main() -> None:
    generate().to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
