"""The bundled samples: reproducible, and the audit finds the documented
injected disparities (sample_data/README.md)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from fairness_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOANS = ROOT / "sample_data" / "loans.csv"
ADULT = ROOT / "sample_data" / "adult_test_predictions.csv"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_synthetic",
                                                  ROOT / "sample_data" / "make_synthetic.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_sample_is_reproducible_from_its_script():
    fresh = _load_generator().generate()
    committed = pd.read_csv(LOANS, keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(fresh.reset_index(drop=True), committed,
                                  check_dtype=False, check_exact=False, rtol=1e-12)


@pytest.fixture(scope="module")
def loans_audit(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "audit.json"
    rc = main([str(LOANS), "--label", "repaid", "--positive", "yes",
               "--prediction", "model_a_approved", "--prediction", "model_b_approved",
               "--sensitive", "sex", "--sensitive", "race", "--sensitive", "age_group",
               "--json", str(out), "--quiet", "--fail-on-disparity"])
    assert rc == 1  # the sample has disparities, so the CI gate trips
    return json.loads(out.read_text())


def _rate(df, model, attr, group, num, den):
    """Hand count with pandas: share of rows meeting `num` among rows meeting `den`."""
    g = df[df[attr].fillna("(missing)") == group]
    d = den(g)
    return (num(g) & d).sum() / d.sum()


def _disp(js, model, attr, metric, group):
    rows = [d for d in js["disparities"] if d["model"] == model and d["attribute"] == attr
            and d["metric"] == metric and d["group"] == group]
    assert len(rows) == 1
    return rows[0]


def test_injected_race_penalty_fails_demographic_parity(loans_audit):
    df = pd.read_csv(LOANS)
    approved = lambda g: g["model_a_approved"] == "yes"  # noqa: E731
    everyone = lambda g: g["repaid"].notna()  # noqa: E731
    black = _rate(df, "model_a_approved", "race", "Black", approved, everyone)
    white = _rate(df, "model_a_approved", "race", "White", approved, everyone)
    d = _disp(loans_audit, "model_a_approved", "race", "selection_rate", "Black")
    assert d["reference"] == "White"
    assert d["ratio"] == pytest.approx(black / white, abs=1e-12)
    assert d["ratio"] < 0.8 and d["verdict"] == "fail"
    s = next(s for s in loans_audit["summary"]
             if s["model"] == "model_a_approved" and s["attribute"] == "race")
    assert s["demographic_parity_ratio"] < 0.8


def test_injected_sex_gap_fails_equal_opportunity(loans_audit):
    df = pd.read_csv(LOANS)
    approved = lambda g: g["model_a_approved"] == "yes"  # noqa: E731
    repaid = lambda g: g["repaid"] == "yes"  # noqa: E731
    f = _rate(df, "model_a_approved", "sex", "Female", approved, repaid)
    m = _rate(df, "model_a_approved", "sex", "Male", approved, repaid)
    d = _disp(loans_audit, "model_a_approved", "sex", "tpr", "Female")
    assert d["ratio"] == pytest.approx(f / m, abs=1e-12) and d["verdict"] == "fail"


def test_injected_age_leniency_fails_false_positive_rate(loans_audit):
    d = _disp(loans_audit, "model_b_approved", "age_group", "fpr", "18-25")
    assert d["reference"] == "26-40" and d["ratio"] > 3 and d["verdict"] == "fail"


def test_fair_model_passes_selection_rate_on_race_and_sex(loans_audit):
    for attr in ("race", "sex"):
        rows = [d for d in loans_audit["disparities"] if d["model"] == "model_b_approved"
                and d["attribute"] == attr and d["metric"] == "selection_rate"
                and d["group"] not in ("Native American",)]
        assert rows and all(r["verdict"] == "pass" for r in rows)


def test_small_group_and_missing_values(loans_audit):
    rows = [d for d in loans_audit["disparities"] if d["group"] == "Native American"]
    assert rows and all(r["verdict"] == "insufficient" for r in rows)
    df = pd.read_csv(LOANS)
    missing = next(g for g in loans_audit["groups"] if g["model"] == "model_a_approved"
                   and g["attribute"] == "sex" and g["group"] == "(missing)")
    assert missing["n"] == df["sex"].isna().sum() > 0


def test_adult_sample_shape_and_credit():
    df = pd.read_csv(ADULT)
    assert len(df) == 16281
    assert set(df["income"]) == {">50K", "<=50K"}
    assert set(df["predicted_income"]) <= {">50K", "<=50K"}
    assert df["score"].between(0, 1).all()
    readme = (ROOT / "sample_data" / "README.md").read_text()
    assert "CC BY 4.0" in readme and "10.24432/C5XW20" in readme
