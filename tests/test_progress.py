"""The progress line while an engine counts: what the callback receives from
a real DuckDB query, the one line the command line rewrites on stderr and
erases at the end, and when it stays silent (--quiet, not a terminal).

The delay before the line appears is a parameter (2 s in use); the tests
set it to 0 so that small, quick tables show it too.
"""
from __future__ import annotations

import json
import re
import threading

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec
from fairness_core.cli import main
from fairness_core.engine import prepare_from_engine
from fairness_core.progress import Status, TerminalLine, format_status, watch

duckdb = pytest.importorskip("duckdb", reason="the engines extra is part of the test set-up")

LINE = re.compile(r"^Counting in duckdb(, query [12] of 2)?"
                  r"( \.\.\.| \[[#-]{20}\] +\d{1,3}%)  \d+ s$")


def _frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sex": rng.choice(["F", "M"], n), "y": rng.integers(0, 2, n),
                         "d": rng.integers(0, 2, n), "s": rng.random(n)})


ARGS = ["--label", "y", "--positive", "1", "--prediction", "d", "--sensitive", "sex",
        "--bootstrap", "0"]


def test_format_of_the_line():
    assert format_status(Status("duckdb", 12.4, 0.45, step=(2, 2))) == \
        "Counting in duckdb, query 2 of 2 [#########-----------]  45%  12 s"
    assert format_status(Status("postgresql", 3.6)) == "Counting in postgresql ...  4 s"
    assert format_status(Status("spark", 0.2, 1.0)) == \
        "Counting in spark [####################] 100%  0 s"


def test_terminal_line_rewrites_itself_and_is_erased():
    class Stream:
        text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass
    out = Stream()
    line = TerminalLine(out)
    line(Status("duckdb", 1.0, 0.5, step=(1, 2)))
    line(Status("duckdb", 2.0))
    line(Status("duckdb", 2.5, done=True))
    first = "Counting in duckdb, query 1 of 2 [##########----------]  50%  1 s"
    second = "Counting in duckdb ...  2 s"
    # the shorter second line is padded over the first; the end blanks the widest
    assert out.text == (f"\r{first}\r{second}{' ' * (len(first) - len(second))}"
                        f"\r{' ' * len(first)}\r")
    assert "\n" not in out.text


def test_duckdb_reports_the_share_done_of_a_running_query():
    con = duckdb.connect()
    from fairness_core.progress import _duckdb_source

    seen, lock = [], threading.Lock()

    def callback(s):
        with lock:
            seen.append(s)
    # long enough to be watched a few times (about a second on a fast machine)
    with watch(_duckdb_source(con), callback, engine="duckdb", delay=0, interval=0.005):
        n = con.execute("SELECT sum(hash(i) % 7) FROM range(30000000) t(i)").fetchone()[0]
    assert n > 0
    assert seen[0].done is False and seen[-1].done is True and len(seen) >= 3
    fractions = [s.fraction for s in seen[:-1] if s.fraction is not None]
    assert fractions, "DuckDB never said how far the query was"
    assert all(0 <= f <= 1 for f in fractions)
    assert max(fractions) > 0
    assert all(b.elapsed >= a.elapsed for a, b in zip(seen, seen[1:]))


def test_engine_count_calls_back_and_ends_done():
    df = _frame()
    spec = AuditSpec(label="y", positive="1", predictions=["d"], scores=["s"],
                     sensitive=["sex"], n_bootstrap=0)
    seen = []
    prepared, info = prepare_from_engine(df, spec, progress=seen.append, progress_delay=0)
    assert prepared.n_rows_read == len(df)
    assert seen and seen[-1].done and not any(s.done for s in seen[:-1])
    assert {s.engine for s in seen} == {"duckdb"}
    # without a callback, nothing is watched; a slow count never shows before its delay
    quiet = []
    prepare_from_engine(df, spec, progress=quiet.append, progress_delay=3600)
    assert quiet == []


def _stderr_segments(err: str) -> list:
    assert err.startswith("\r") and err.endswith("\r"), repr(err[:80])
    return err[1:-1].split("\r")


def test_cli_draws_one_line_and_erases_it(tmp_path, capsys, monkeypatch):
    path = tmp_path / "rows.parquet"
    _frame().to_parquet(path, index=False)
    monkeypatch.setenv("FAIRNESS_AUDIT_PROGRESS_DELAY", "0")
    rc = main([str(path), *ARGS, "--engine", "duckdb", "--progress", "always",
               "--json", str(tmp_path / "a.json")])
    out, err = capsys.readouterr()
    assert rc == 0 and "Fairness audit of rows.parquet" in out
    assert "\n" not in err  # one line, rewritten in place
    segments = _stderr_segments(err)
    *shown, last = segments
    assert shown and all(LINE.match(s.rstrip(" ")) for s in shown), shown
    assert last == " " * max(len(s) for s in shown)  # erased, not left behind
    assert json.loads((tmp_path / "a.json").read_text())["provenance"]["rows_read"] == 4000


@pytest.mark.parametrize("extra", [["--quiet", "--progress", "always"],  # --quiet wins
                                   [],                    # auto: stderr is not a terminal
                                   ["--progress", "never"]])
def test_cli_is_silent_when_asked_or_not_on_a_terminal(tmp_path, capsys, monkeypatch, extra):
    path = tmp_path / "rows.parquet"
    _frame().to_parquet(path, index=False)
    monkeypatch.setenv("FAIRNESS_AUDIT_PROGRESS_DELAY", "0")
    rc = main([str(path), *ARGS, "--engine", "duckdb", *extra])
    out, err = capsys.readouterr()
    assert rc == 0 and err == ""
    assert ("Fairness audit of" in out) == ("--quiet" not in extra)


def test_environment_chooses_the_default(tmp_path, capsys, monkeypatch):
    path = tmp_path / "rows.parquet"
    _frame().to_parquet(path, index=False)
    monkeypatch.setenv("FAIRNESS_AUDIT_PROGRESS_DELAY", "0")
    monkeypatch.setenv("FAIRNESS_AUDIT_PROGRESS", "always")
    assert main([str(path), *ARGS, "--engine", "duckdb"]) == 0
    err = capsys.readouterr().err
    assert "Counting in duckdb" in err and err.endswith("\r")


@pytest.mark.parametrize("env, value, words", [
    ("FAIRNESS_AUDIT_PROGRESS_DELAY", "soon", ["FAIRNESS_AUDIT_PROGRESS_DELAY", "seconds"]),
    ("FAIRNESS_AUDIT_PROGRESS", "sometimes", ["FAIRNESS_AUDIT_PROGRESS", "auto, always"])])
def test_bad_settings_are_one_line(tmp_path, capsys, monkeypatch, env, value, words):
    from test_bad_inputs import assert_cli_refuses

    path = tmp_path / "rows.parquet"
    _frame(50).to_parquet(path, index=False)
    monkeypatch.setenv(env, value)
    assert_cli_refuses(capsys, [path, *ARGS, "--engine", "duckdb", "--progress", "always"]
                       if env.endswith("DELAY") else [path, *ARGS, "--engine", "duckdb"],
                       words)
