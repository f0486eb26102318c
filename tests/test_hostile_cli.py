"""Hostile command lines: requests for more work than a machine holds, huge
seeds, a browser that cannot print, names that try to reorder a terminal,
scores on their own scale.  Whatever is the input's fault ends in exit
status 2 and one line that says what is wrong and how to fix it; exit
status 3 stays for real bugs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, InputError
from test_bad_inputs import _cli, assert_cli_refuses

BASE_CLI = ["--label", "y", "--prediction", "p", "--sensitive", "g"]
BASE_SPEC = dict(label="y", predictions=["p"], sensitive=["g"])


def _groups_csv(path, n_groups: int, per_group: int = 3, seed: int = 0) -> pd.DataFrame:
    """A table with ``n_groups`` distinct values of ``g`` (each ``per_group`` rows)."""
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                       "g": [f"g{i % n_groups:05d}" for i in range(n)]})
    df.to_csv(path, index=False)
    return df


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    rng = np.random.default_rng(1)
    n = 400
    pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                  "g": np.where(np.arange(n) % 3 == 0, "A", "B")}).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------
# 1. Bootstrap replicates: the limit before any work, the memory before drawing
# --------------------------------------------------------------------------
def test_too_many_bootstrap_replicates_refused_before_the_file_is_read(tmp_path, capsys):
    # the file does not even exist: the spec is refused before anything is read
    argv = [tmp_path / "absent.csv", *BASE_CLI, "--bootstrap", "100000000"]
    line = assert_cli_refuses(capsys, argv, ("100,000,000", "100,000", "fewer replicates",
                                             "FAIRNESS_AUDIT_MAX_BOOTSTRAP"))
    assert "absent.csv" not in line
    with pytest.raises(InputError) as exc:
        AuditSpec(**BASE_SPEC, n_bootstrap=100_000_001)
    assert exc.value.field == "n_bootstrap"


def test_bootstrap_limit_follows_the_environment(monkeypatch):
    assert AuditSpec(**BASE_SPEC, n_bootstrap=100_000).n_bootstrap == 100_000
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_BOOTSTRAP", "5000")
    with pytest.raises(InputError, match="5,000"):
        AuditSpec(**BASE_SPEC, n_bootstrap=5001)
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_BOOTSTRAP", "200000000")
    assert AuditSpec(**BASE_SPEC, n_bootstrap=100_000_000).n_bootstrap == 100_000_000


# --------------------------------------------------------------------------
# 2. Many groups: a limit on --max-groups, 10,000 real groups finish
# --------------------------------------------------------------------------
def test_group_limit_above_the_hard_limit_is_refused(tmp_path, capsys):
    argv = [tmp_path / "absent.csv", *BASE_CLI, "--max-groups", "20000"]
    assert_cli_refuses(capsys, argv, ("20,000", "10,000", "FAIRNESS_AUDIT_MAX_GROUPS"))


# --------------------------------------------------------------------------
# 3. Seeds of any size
# --------------------------------------------------------------------------
def test_a_seed_above_2_to_the_64_is_used_as_given(small_csv, tmp_path, capsys):
    big = 2 ** 64 + 1
    out_json = tmp_path / "out.json"
    rc, _out, err = _cli(capsys, [small_csv, *BASE_CLI, "--seed", big, "--bootstrap", "200",
                                  "--quiet", "--json", out_json])
    assert rc == 0, err
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["spec"]["seed"] == big and doc["provenance"]["bootstrap_seed"] == big
    assert AuditSpec(**BASE_SPEC, seed=str(2 ** 200)).seed == 2 ** 200


@pytest.mark.parametrize("bad", ["-1", "1.5"])
def test_a_negative_or_fractional_seed_is_refused_with_the_range(small_csv, capsys, bad):
    assert_cli_refuses(capsys, [small_csv, *BASE_CLI, "--seed", bad],
                       ("seed", "at least 0", "any size"))
    with pytest.raises(InputError, match="at least 0"):
        AuditSpec(**BASE_SPEC, seed=float(bad))
