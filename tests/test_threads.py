"""An audit is the same on one thread as on several: text columns encoded
and hashed side by side, score columns counted side by side."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, audit
from fairness_core.threads import ENV, thread_map, workers


def _table(n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], n)
    race = rng.choice(["Black", "White", "Asian", "Other"], n, p=[0.3, 0.5, 0.15, 0.05])
    age = rng.choice(["<25", "25-45", ">45"], n)
    y = rng.random(n) < 0.4
    a = np.clip(0.4 * y + rng.normal(0.3, 0.2, n) + 0.05 * (sex == "Male"), 0, 1)
    b = np.clip(0.3 * y + rng.normal(0.35, 0.25, n), 0, 1)
    df = pd.DataFrame({"sex": sex, "race": race, "age": age, "label": y.astype(int),
                       "score_a": a, "score_b": b, "w": rng.uniform(0.5, 2.0, n)})
    return df.astype({"sex": "str", "race": "str", "age": "str"})


def _json(result) -> dict:
    out = json.loads(result.to_json())
    out["provenance"].pop("created_utc", None)
    return out


@pytest.mark.parametrize("weight", [None, "w"])
def test_an_audit_on_one_thread_equals_the_audit_on_several(monkeypatch, weight):
    df = _table()
    spec = AuditSpec(label="label", scores=["score_a", "score_b"],
                     sensitive=["sex", "race", "age"], intersectional=True, weight=weight,
                     n_bootstrap=200)
    monkeypatch.setenv(ENV, "1")
    assert workers() == 1
    one = audit(df, spec)
    monkeypatch.setenv(ENV, "4")
    several = audit(df, spec)
    assert _json(one) == _json(several)
    # and each model's numbers stand on their own: hand counts of the first
    # score model's selections at its threshold, per sex
    g = one.group_metrics
    sel = g[(g["model"] == "score_a") & (g["attribute"] == "sex")].set_index("group")
    picked = df["score_a"] >= one.provenance["thresholds"]["score_a"]["threshold"]
    if weight is None:
        expected = picked.groupby(df["sex"]).mean()
    else:
        expected = (df["w"] * picked).groupby(df["sex"]).sum() / df["w"].groupby(df["sex"]).sum()
    for group, value in expected.items():
        assert sel.loc[group, "selection_rate"] == pytest.approx(value, abs=1e-12)


def test_thread_map_keeps_the_order_and_raises_the_first_error(monkeypatch):
    monkeypatch.setenv(ENV, "3")
    assert thread_map(lambda x: x * x, range(50)) == [x * x for x in range(50)]

    def fail_on_seven(x):
        if x == 7:
            raise ValueError("seven")
        return x

    with pytest.raises(ValueError, match="seven"):
        thread_map(fail_on_seven, range(20))


def test_a_thread_cap_that_is_not_a_number_is_ignored(monkeypatch):
    monkeypatch.setenv(ENV, "many")
    assert workers() >= 1
    monkeypatch.setenv(ENV, "0")
    assert workers() == 1
