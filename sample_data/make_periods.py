"""Generate two periods of loan decisions with one documented, planted change,
to show (and test) the comparison of two audits.

Both periods draw applicants as ``loans.csv`` does (the same true ability to
repay in every group), and one model approves them:

- period 1 (``loans_period1.csv``): the model penalises Black applicants
  (a logit penalty of 1.1 for everyone) and holds back qualified women (a
  penalty of 1.2 for women who will repay);
- period 2 (``loans_period2.csv``): the model was retrained; the race
  penalty is down to 0.2, the penalty on qualified women is unchanged.

So the race gaps should narrow significantly and the sex gaps should not
change.  Fixed seeds: running it again writes identical files.

Run:  .venv/bin/python sample_data/make_periods.py [OUT_FOLDER]
(default: the current folder).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

RACES = ["White", "Black", "Hispanic", "Asian"]
RACE_P = [0.62, 0.17, 0.14, 0.07]
#: (seed, rows, race penalty, penalty on qualified women) per period
PERIODS = {1: (20261201, 5000, 1.1, 1.2), 2: (20261202, 5000, 0.2, 1.2)}


def generate(seed: int, n: int, race_penalty: float, female_penalty: float) -> pd.DataFrame:
    """One period's decisions (see the module's description)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], size=n, p=[0.46, 0.54])
    race = rng.choice(RACES, size=n, p=RACE_P)
    ability = rng.normal(0, 1.3, n)
    repaid = ability + rng.normal(0, 0.6, n) > -0.75
    logit = 1.5 * ability + 0.6 + rng.normal(0, 0.5, n)
    logit[race == "Black"] -= race_penalty
    logit[(sex == "Female") & repaid] -= female_penalty
    approved = rng.random(n) < 1 / (1 + np.exp(-logit))
    yes_no = np.array(["no", "yes"], dtype=object)
    return pd.DataFrame({"sex": sex, "race": race, "repaid": yes_no[repaid.astype(int)],
                         "approved": yes_no[approved.astype(int)]})


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    for period, params in PERIODS.items():
        path = out / f"loans_period{period}.csv"
        generate(*params).to_csv(path, index=False)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
