"""Audit evidence as files (``fairness_core.exports`` and the CLI's --csv,
--xlsx, --suppress-below, --config, --save-config): spreadsheet formula
injection is neutralised while numbers stay numbers, small groups are
suppressed, and saved configurations load back to the same numbers.

Every output is read back with a real reader (pandas.read_csv,
openpyxl.load_workbook, json, hashlib), never with this project's code.
Bugs once found here are tests that assert the correct
behaviour.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math

import numpy as np
import openpyxl
import pandas as pd
import pytest

import fairness_core
from fairness_core import AuditSpec, InputError, charts, errors, exports
from fairness_core.cli import main

FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")
KEEP_TEXT = ("model", "attribute", "group", "suppressed")  # not blanked by suppression


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _write_csv(path, header, rows):
    """A CSV with every text value quoted (so a leading tab or a carriage
    return inside a value survives) and numbers bare."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC)
        w.writerow(header)
        w.writerows(rows)
    return path


def _group_rows(group, n, selected=None):
    """``n`` rows of (label, prediction, group): labels alternate 1/0; the
    first ``selected`` rows (default: every other pair) are predicted 1."""
    rows = []
    for i in range(n):
        p = (i // 2) % 2 if selected is None else int(i < selected)
        rows.append((i % 2, p, group))
    return rows


def _cli(capsys, argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _read_csv(path, **kw):
    return pd.read_csv(path, encoding="utf-8-sig", dtype={"group": str}, **kw)


def _sheet_records(ws):
    """(header, rows of cells) of an openpyxl worksheet."""
    rows = list(ws.iter_rows())
    return [c.value for c in rows[0]], rows[1:]


def _column_cells(ws, name):
    header, rows = _sheet_records(ws)
    assert name in header, (ws.title, name, header)
    j = header.index(name)
    return [r[j] for r in rows]


def _assert_no_formula_cells(wb):
    """No cell of any sheet is a formula or a text starting with a formula
    character; returns how many text cells were checked."""
    checked = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    checked += 1
                    assert not cell.value.startswith(FORMULA_CHARS), (
                        ws.title, cell.coordinate, cell.value)
    return checked


def assert_cli_refuses(capsys, argv, keywords=()):
    """Exit 2, exactly one line on stderr, no traceback."""
    rc, out, err = _cli(capsys, argv)
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "internal error" not in err
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("fairness-audit: error:"), err
    for k in keywords:
        assert k in err, (k, err)
    return err


# --------------------------------------------------------------------------
# 1. Formula injection through the CLI
# --------------------------------------------------------------------------
INJECT = ['=HYPERLINK("http://example.invalid","x")', "+1+1", "-2+3", "@SUM(A1)",
          "\tTAB", "\rCR"]
NORMAL = "normal"


def _expected_label(value: str) -> str:
    """The exported text of a group value.  Group values are kept as they
    are in the file, a leading tab or CR included (" Male" and "Male" are
    two groups); one that starts with a formula character, a tab or a CR
    among them, gets an apostrophe."""
    return "'" + value if value.startswith(FORMULA_CHARS) else value


def test_formula_injection_neutralised_in_csv_and_xlsx(tmp_path, capsys):
    rows = []
    for k, g in enumerate(INJECT + [NORMAL]):
        rows += _group_rows(g, 30 + k)
    data = _write_csv(tmp_path / "inject.csv", ["y", "p", "group"], rows)
    out_csv, out_xlsx = tmp_path / "groups.csv", tmp_path / "audit.xlsx"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "p", "--sensitive",
                                 "group", "--bootstrap", "0", "--quiet", "--csv", out_csv,
                                 "--xlsx", out_xlsx])
    assert rc == 0, (out, err)
    expected = {g: _expected_label(g) for g in INJECT + [NORMAL]}
    for g in ('=HYPERLINK("http://example.invalid","x")', "+1+1", "-2+3", "@SUM(A1)"):
        assert expected[g] == "'" + g  # the apostrophe and otherwise the original

    # ---- CSV: the raw bytes, then pandas
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    df = _read_csv(out_csv, keep_default_na=False)
    grp = df[df["attribute"] == "group"]
    assert sorted(grp["group"]) == sorted(expected.values())
    for g, label in expected.items():
        row = grp[grp["group"] == label]
        assert len(row) == 1, (g, label, list(grp["group"]))
        assert int(row["n"].iloc[0]) == 30 + (INJECT + [NORMAL]).index(g)
    for cell in df["group"]:
        assert not cell.startswith(FORMULA_CHARS), cell
    for col in ("n", "selection_rate", "tp"):
        assert pd.api.types.is_numeric_dtype(df[col]), (col, df[col].dtype)
    assert (df["n"] >= 30).all()

    # ---- XLSX: every cell of every sheet
    wb = openpyxl.load_workbook(out_xlsx)
    assert {"groups", "disparities", "summary"} <= set(wb.sheetnames)
    assert _assert_no_formula_cells(wb) > 0
    groups = [c.value for c in _column_cells(wb["groups"], "group")]
    # (XML reads a carriage return in a cell's text as a line feed)
    assert sorted(g for g in groups if g != "(all)") == \
        sorted(v.replace("\r", "\n") for v in expected.values())
    refs = {c.value for c in _column_cells(wb["disparities"], "group")}
    assert refs >= {"'+1+1", "'-2+3", "'@SUM(A1)"}
    for name in ("n", "tp"):
        cells = _column_cells(wb["groups"], name)
        assert cells and all(c.data_type == "n" and isinstance(c.value, (int, float))
                             and not isinstance(c.value, bool) for c in cells), name
    rates = _column_cells(wb["groups"], "selection_rate")
    assert all(c.data_type == "n" and isinstance(c.value, (int, float)) for c in rates)


def test_formula_column_names_neutralised(tmp_path, capsys):
    """A sensitive column named ``=cmd`` and a model column named ``@pred``:
    wherever those names land in the outputs (cells or headers) they are
    text."""
    rows = [(y, p, g) for y, p, g in _group_rows("a", 40) + _group_rows("b", 35)]
    data = _write_csv(tmp_path / "cols.csv", ["y", "@pred", "=cmd"], rows)
    out_csv, out_xlsx = tmp_path / "g.csv", tmp_path / "a.xlsx"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "@pred",
                                 "--sensitive", "=cmd", "--bootstrap", "0", "--quiet",
                                 "--csv", out_csv, "--xlsx", out_xlsx])
    assert rc == 0, (out, err)
    df = _read_csv(out_csv, keep_default_na=False)
    assert not any(str(c).startswith(FORMULA_CHARS) for c in df.columns)
    assert set(df["model"]) == {"'@pred"}
    assert set(df.loc[df["group"] != "(all)", "attribute"]) == {"'=cmd"}
    wb = openpyxl.load_workbook(out_xlsx)
    _assert_no_formula_cells(wb)
    for sheet in ("groups", "disparities", "summary"):
        header, _ = _sheet_records(wb[sheet])
        assert not any(str(h).startswith(FORMULA_CHARS) for h in header), (sheet, header)
        attrs = {c.value for c in _column_cells(wb[sheet], "attribute")}
        assert "'=cmd" in attrs and "=cmd" not in attrs, (sheet, attrs)
        assert {c.value for c in _column_cells(wb[sheet], "model")} == {"'@pred"}


def test_formula_header_neutralised_in_written_files():
    """Column names are neutralised in the header row of both formats."""
    df = pd.DataFrame({"=cmd": ["x", "y"], "+plus": [1, -2], "plain": [0.5, -0.5]})
    back = pd.read_csv(io.BytesIO(exports.to_csv_bytes(df)), encoding="utf-8-sig")
    assert list(back.columns) == ["'=cmd", "'+plus", "plain"]
    assert back["'+plus"].tolist() == [1, -2]
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx_bytes({"t": df})))
    header, rows = _sheet_records(wb["t"])
    assert header == ["'=cmd", "'+plus", "plain"]
    assert [r[1].value for r in rows] == [1, -2]
    assert all(r[1].data_type == "n" for r in rows)
    _assert_no_formula_cells(wb)


def test_tab_and_cr_values_neutralised_in_xlsx():
    """Values that keep a leading tab / CR (the API path) become text."""
    df = pd.DataFrame({"g": ["\tTAB", "\rCR", "ok"], "n": [1, 2, 3]})
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx_bytes({"t": df})))
    _assert_no_formula_cells(wb)
    vals = [c.value for c in _column_cells(wb["t"], "g")]
    assert vals[0] == "'\tTAB"
    # XML turns a bare CR into LF on reading; the apostrophe is what counts.
    assert vals[1] in ("'\rCR", "'\nCR"), vals[1]
    assert vals[2] == "ok"


def test_tab_value_round_trips_through_csv():
    df = pd.DataFrame({"g": ["\tTAB", "ok"], "n": [1, -2]})
    back = pd.read_csv(io.BytesIO(exports.to_csv_bytes(df)), encoding="utf-8-sig",
                       dtype={"g": str}, keep_default_na=False)
    assert back["g"].tolist() == ["'\tTAB", "ok"]
    assert back["n"].tolist() == [1, -2]


def test_cr_value_round_trips_through_csv():
    df = pd.DataFrame({"g": ["\rCR", "A\rB", "ok"], "n": [1, 2, 3]})
    back = pd.read_csv(io.BytesIO(exports.to_csv_bytes(df)), encoding="utf-8-sig",
                       dtype={"g": str}, keep_default_na=False)
    assert len(back) == 3
    assert back["g"].tolist() == ["'\rCR", "A\rB", "ok"]
    assert back["n"].tolist() == [1, 2, 3]


def test_cli_csv_with_carriage_return_inside_group(tmp_path, capsys):
    rows = _group_rows("A\rB", 30) + _group_rows("C", 30)
    data = _write_csv(tmp_path / "cr.csv", ["y", "p", "g"], rows)
    out_csv = tmp_path / "g.csv"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "p", "--sensitive",
                                 "g", "--bootstrap", "0", "--quiet", "--csv", out_csv])
    assert rc == 0, err
    df = _read_csv(out_csv, keep_default_na=False)
    assert len(df) == 3  # two groups and the overall row
    assert sorted(df["group"]) == ["(all)", "A\rB", "C"]
    assert pd.api.types.is_numeric_dtype(df["n"])


def test_cli_xlsx_with_control_character_in_group(tmp_path, capsys):
    rows = _group_rows("A\x1bB", 30) + _group_rows("C", 30)
    data = _write_csv(tmp_path / "ctl.csv", ["y", "p", "g"], rows)
    out_xlsx = tmp_path / "a.xlsx"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "p", "--sensitive",
                                 "g", "--bootstrap", "0", "--quiet", "--xlsx", out_xlsx])
    assert rc == 0, err
    wb = openpyxl.load_workbook(out_xlsx)
    groups = [c.value for c in _column_cells(wb["groups"], "group")]
    assert any(g.startswith("A") and g.endswith("B") for g in groups), groups


# --------------------------------------------------------------------------
# 2. Numbers stay numbers
# --------------------------------------------------------------------------
def test_group_named_minus_one_is_text_but_differences_stay_negative(tmp_path, capsys):
    # "-1" is the largest group (the reference) and selects far more than "B",
    # so B's differences to it are negative.
    rows = _group_rows("-1", 50, selected=35) + _group_rows("B", 40, selected=8)
    data = _write_csv(tmp_path / "neg.csv", ["y", "p", "g"], rows)
    out_csv, out_xlsx = tmp_path / "g.csv", tmp_path / "a.xlsx"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "p", "--sensitive",
                                 "g", "--bootstrap", "0", "--quiet", "--csv", out_csv,
                                 "--xlsx", out_xlsx])
    assert rc == 0, err
    df = _read_csv(out_csv, keep_default_na=False)
    assert set(df["group"]) == {"'-1", "B", "(all)"}
    assert int(df.loc[df["group"] == "'-1", "n"].iloc[0]) == 50
    assert df.loc[df["group"] == "'-1", "selection_rate"].iloc[0] == pytest.approx(0.7)

    wb = openpyxl.load_workbook(out_xlsx)
    _assert_no_formula_cells(wb)
    assert "'-1" in [c.value for c in _column_cells(wb["groups"], "group")]
    ws = wb["disparities"]
    refs = {c.value for c in _column_cells(ws, "reference")}
    assert refs == {"'-1"}
    diffs = [c for c in _column_cells(ws, "difference") if c.value is not None]
    assert diffs and all(c.data_type == "n" for c in diffs)
    assert all(isinstance(c.value, (int, float)) for c in diffs)
    negative = [c.value for c in diffs if c.value < 0]
    assert negative, [c.value for c in diffs]
    header, rows = _sheet_records(ws)
    jm, jg, jd = header.index("metric"), header.index("group"), header.index("difference")
    sel = [r[jd].value for r in rows if r[jm].value == "selection_rate" and r[jg].value == "B"]
    assert sel == [pytest.approx(0.2 - 0.7)]
    # the "n" columns of the disparities sheet are numbers too
    assert all(c.data_type == "n" and isinstance(c.value, (int, float))
               for c in _column_cells(ws, "n"))


# --------------------------------------------------------------------------
# 3. Suppression of small groups
# --------------------------------------------------------------------------
SIZES = {"big": 40, "tiny": 5, "nine": 9, "eleven": 11}


@pytest.fixture
def sized_data(tmp_path):
    rows = []
    for g, n in SIZES.items():
        rows += _group_rows(g, n)
    return _write_csv(tmp_path / "sizes.csv", ["y", "p", "g"], rows)


def _run_sizes(capsys, tmp_path, data, *extra, xlsx=False):
    out_csv = tmp_path / "groups.csv"
    argv = [data, "--label", "y", "--prediction", "p", "--sensitive", "g", "--bootstrap",
            "0", "--quiet", "--csv", out_csv]
    if xlsx:
        argv += ["--xlsx", tmp_path / "audit.xlsx"]
    rc, out, err = _cli(capsys, argv + list(extra))
    assert rc == 0, err
    df = _read_csv(out_csv)  # default NA handling: empty cells are NaN
    return df.set_index("group")


def _metric_columns(df):
    return [c for c in df.columns if c not in KEEP_TEXT]


def test_suppress_below_blanks_small_groups(tmp_path, capsys, sized_data):
    df = _run_sizes(capsys, tmp_path, sized_data, "--suppress-below", "10")
    metrics = _metric_columns(df)
    assert {"n", "share", "tp", "fn", "selection_rate", "accuracy"} <= set(metrics)
    assert "suppressed" in df.columns
    for g in ("tiny", "nine"):
        assert df.loc[g, metrics].isna().all(), df.loc[g, metrics][df.loc[g, metrics].notna()]
        assert df.loc[g, "suppressed"] == "suppressed (fewer than 10 rows)"
        assert df.loc[g, "model"] == "p" and df.loc[g, "attribute"] == "g"
    for g in ("big", "eleven"):
        assert df.loc[g, "n"] == SIZES[g]
        assert df.loc[g, "tp"] == sum(1 for y, p, _ in _group_rows(g, SIZES[g]) if y and p)
        assert df.loc[g, "selection_rate"] == pytest.approx(
            np.mean([p for _, p, _ in _group_rows(g, SIZES[g])]))
        assert pd.isna(df.loc[g, "suppressed"])  # empty cell: not suppressed
    assert pd.api.types.is_numeric_dtype(df["n"])
    assert df.loc["(all)", "n"] == sum(SIZES.values())


def test_without_suppress_below_nothing_is_suppressed(tmp_path, capsys, sized_data):
    df = _run_sizes(capsys, tmp_path, sized_data)
    assert "suppressed" not in df.columns or df["suppressed"].isna().all()
    for g, n in SIZES.items():
        assert df.loc[g, "n"] == n
        assert not pd.isna(df.loc[g, "selection_rate"])
        assert not pd.isna(df.loc[g, "tp"])


@pytest.mark.parametrize("where", ["last", "before-option"])
def test_suppress_below_without_a_number_means_10(tmp_path, capsys, sized_data, where):
    extra = ["--suppress-below"] if where == "last" else ["--suppress-below", "--quiet"]
    df = _run_sizes(capsys, tmp_path, sized_data, *extra)
    assert df.loc["nine", metrics := _metric_columns(df)].isna().all()  # 9 < 10
    assert df.loc["nine", "suppressed"] == "suppressed (fewer than 10 rows)"
    assert df.loc["eleven", "n"] == 11 and not df.loc["eleven", metrics].isna().all()
    assert pd.isna(df.loc["eleven", "suppressed"])
    assert df.loc["big", "n"] == 40


def test_suppress_below_applies_to_the_workbook(tmp_path, capsys, sized_data):
    _run_sizes(capsys, tmp_path, sized_data, "--suppress-below", "10", xlsx=True)
    wb = openpyxl.load_workbook(tmp_path / "audit.xlsx")
    for sheet in ("groups", "disparities"):
        header, rows = _sheet_records(wb[sheet])
        jg, js = header.index("group"), header.index("suppressed")
        blank = [j for j, h in enumerate(header) if h not in KEEP_TEXT + (
            "reference", "metric", "reference_choice")]
        assert header.index("n") in blank
        seen = set()
        for r in rows:
            g = r[jg].value
            seen.add(g)
            if g in ("tiny", "nine"):
                assert r[js].value == "suppressed (fewer than 10 rows)", (sheet, g)
                assert all(r[j].value is None for j in blank), (sheet, g, [
                    (header[j], r[j].value) for j in blank if r[j].value is not None])
            else:
                assert not r[js].value, (sheet, g, r[js].value)
                assert isinstance(r[header.index("n")].value, (int, float)), (sheet, g)
        assert {"tiny", "nine", "eleven"} <= seen  # "big" is the disparities' reference
        if sheet == "groups":
            assert "big" in seen
    about = " ".join(str(c.value) for row in wb["About"].iter_rows() for c in row)
    assert "fewer than 10 rows" in about and "suppressed" in about


def test_summary_does_not_reveal_suppressed_groups(tmp_path, capsys):
    rows = (_group_rows("big", 40) + _group_rows("B", 40, selected=19)
            + _group_rows("tiny", 5, selected=0))
    data = _write_csv(tmp_path / "leak.csv", ["y", "p", "g"], rows)
    out_xlsx = tmp_path / "a.xlsx"
    rc, out, err = _cli(capsys, [data, "--label", "y", "--prediction", "p", "--sensitive",
                                 "g", "--bootstrap", "0", "--quiet", "--xlsx", out_xlsx,
                                 "--suppress-below", "10"])
    assert rc == 0, err
    ws = openpyxl.load_workbook(out_xlsx)["summary"]
    header, rows_ = _sheet_records(ws)
    rec = {h: c.value for h, c in zip(header, rows_[0])}
    # Either blank, or computed over the groups that are shown (0.5 and 0.475).
    dpd, dpr = rec["demographic_parity_difference"], rec["demographic_parity_ratio"]
    assert dpd is None or dpd == pytest.approx(0.5 - 19 / 40)
    assert dpr is None or dpr == pytest.approx((19 / 40) / 0.5)


# --------------------------------------------------------------------------
# 4. Configurations
# --------------------------------------------------------------------------
def _rich_data(path, flip_first=False):
    rng = np.random.default_rng(7)
    n = 400
    sex = rng.choice(["F", "M"], n)
    age = rng.integers(18, 70, n)
    score = np.round(rng.random(n), 3)
    y = np.where(rng.random(n) < 0.3 + 0.4 * score, "yes", "no")
    pred = np.where(score + (sex == "M") * 0.1 > 0.5, "yes", "no")
    w = np.round(rng.uniform(0.5, 2.0, n), 2)
    df = pd.DataFrame({"y": y, "pred": pred, "score": score, "sex": sex, "age": age,
                       "w": w})
    if flip_first:
        df.loc[0, "y"] = "no" if df.loc[0, "y"] == "yes" else "yes"
    df.to_csv(path, index=False)
    return path


RICH_ARGS = ["--label", "y", "--prediction", "pred", "--score", "score", "--threshold",
             "0.4", "--sensitive", "sex", "--sensitive", "age", "--bin", "age=18,40,70",
             "--intersectional", "--positive", "yes", "--weight", "w", "--reference",
             "sex=F", "--tolerance", "0.9", "--min-group-size", "20", "--bootstrap", "200",
             "--seed", "3", "--correction", "holm", "--alpha", "0.1", "--confidence", "0.9"]


def _without_time(d):
    d = json.loads(json.dumps(d))
    d["provenance"].pop("created_utc")
    return d


def test_saved_config_reproduces_the_audit(tmp_path, capsys):
    data = _rich_data(tmp_path / "data.csv")
    j1, j2, cfg = tmp_path / "a1.json", tmp_path / "a2.json", tmp_path / "c.json"
    rc, out, err = _cli(capsys, [data, *RICH_ARGS, "--quiet", "--json", j1,
                                 "--save-config", cfg])
    assert rc == 0, err
    saved = json.loads(cfg.read_text(encoding="utf-8"))
    assert saved["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert saved["data"]["name"] == "data.csv"
    assert saved["spec"]["tolerance"] == 0.9 and saved["spec"]["reference"] == {"sex": "F"}
    assert saved["spec"]["bins"] == {"age": [18, 40, 70]}

    # only the data, the configuration and the output: the settings come from the file
    rc, out, err = _cli(capsys, [data, "--config", cfg, "--quiet", "--json", j2])
    assert rc == 0, err
    assert "different data" not in err
    a = json.loads(j1.read_text(encoding="utf-8"))
    b = json.loads(j2.read_text(encoding="utf-8"))
    assert a["groups"] and a["disparities"] and a["summary"]
    for key in ("groups", "disparities", "summary", "overall", "spec"):
        assert a[key] == b[key], key
    assert _without_time(a) == _without_time(b)
    attrs = {g["attribute"] for g in b["groups"]}
    assert attrs == {"sex", "age", "sex & age"}
    assert {g["model"] for g in b["groups"]} == {"pred", "score"}


def test_config_on_changed_data_warns_and_still_runs(tmp_path, capsys):
    data = _rich_data(tmp_path / "data.csv")
    cfg = tmp_path / "c.json"
    rc, out, err = _cli(capsys, [data, *RICH_ARGS, "--quiet", "--save-config", cfg])
    assert rc == 0, err
    changed = _rich_data(tmp_path / "changed.csv", flip_first=True)
    assert changed.read_bytes() != data.read_bytes()
    rc, out, err = _cli(capsys, [changed, "--config", cfg, "--quiet"])
    assert rc == 0, err
    assert "different data" in err
    assert "Traceback" not in err
    # without --quiet the warning is in the printed summary
    rc, out, err = _cli(capsys, [changed, "--config", cfg])
    assert rc == 0 and "different data" in out


def _spec_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD_SPEC = {"label": "y", "predictions": ["p"], "sensitive": ["g"]}

BAD_CONFIGS = {
    "bad-json": ("{not json", ("not valid JSON",)),
    "empty-file": ("", ("not valid JSON",)),
    "unknown-key": (json.dumps({**GOOD_SPEC, "colour": "red"}), ("unknown", "'colour'")),
    "unknown-key-wrapped": (json.dumps({"fairness_audit_config": 1, "data": {},
                                        "spec": {**GOOD_SPEC, "colour": "red"}}),
                            ("'colour'",)),
    "json-list": ("[1, 2]", ("JSON object",)),
    "no-label": (json.dumps({"predictions": ["p"], "sensitive": ["g"]}), ("label",)),
}


@pytest.fixture
def small_data(tmp_path):
    return _write_csv(tmp_path / "d.csv", ["y", "p", "g"],
                      _group_rows("a", 30) + _group_rows("b", 30))


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_exits_2_with_one_line(tmp_path, capsys, small_data, case):
    text, keywords = BAD_CONFIGS[case]
    cfg = _spec_file(tmp_path, "c.json", text)
    assert_cli_refuses(capsys, [small_data, "--config", cfg], keywords)


def test_missing_config_exits_2_with_one_line(tmp_path, capsys, small_data):
    assert_cli_refuses(capsys, [small_data, "--config", tmp_path / "nope.json"],
                       ("nope.json", "configuration"))


BAD_TYPED_CONFIGS = {
    "data-not-an-object": json.dumps({"fairness_audit_config": 1, "spec": GOOD_SPEC,
                                      "data": "x"}),
    "predictions-a-number": json.dumps({**GOOD_SPEC, "predictions": 5}),
    "reference-a-string": json.dumps({**GOOD_SPEC, "reference": "x"}),
    "bins-a-list": json.dumps({**GOOD_SPEC, "bins": [1, 2]}),
    "deeply-nested": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("case", list(BAD_TYPED_CONFIGS))
def test_wrongly_typed_config_exits_2(tmp_path, capsys, small_data, case):
    cfg = _spec_file(tmp_path, "c.json", BAD_TYPED_CONFIGS[case])
    assert_cli_refuses(capsys, [small_data, "--config", cfg, "--bootstrap", "0"])


def test_load_config_accepts_a_bare_spec():
    spec, data = exports.load_config(json.dumps({**GOOD_SPEC, "tolerance": 0.9}))
    assert isinstance(spec, AuditSpec)
    assert spec == AuditSpec(label="y", predictions=["p"], sensitive=["g"], tolerance=0.9)
    assert data == {}
    spec_b, data_b = exports.load_config(json.dumps(GOOD_SPEC).encode("utf-8"))
    assert spec_b.label == "y" and spec_b.predictions == ("p",) and data_b == {}


def test_load_config_round_trips_config_json():
    spec = AuditSpec(label="y", predictions=["p"], sensitive=["g", "h"], intersectional=True,
                     reference={"g": "a"}, tolerance=0.85, n_bootstrap=0, seed=5)
    text = exports.config_json(spec, sha256="ab" * 32, name="d.csv")
    obj = json.loads(text)
    assert obj["fairness_audit_config"] == exports.CONFIG_VERSION
    back, data = exports.load_config(text)
    assert back == spec
    assert data == {"sha256": "ab" * 32, "name": "d.csv"}
    assert exports.check_data(data, "ab" * 32) is None
    warn = exports.check_data(data, "cd" * 32)
    assert warn and "different data" in warn and "d.csv" in warn


@pytest.mark.parametrize("text,words", [("{oops", "not valid JSON"),
                                        ('"a string"', "JSON object"),
                                        (b"\xff\xfe\x00garbage", "not valid JSON"),
                                        (json.dumps({"label": "y", "x": 1}), "'x'")])
def test_load_config_raises_input_error(text, words):
    with pytest.raises(InputError) as exc:
        exports.load_config(text)
    assert words in exc.value.message
    assert exc.value.field == "config"


# --------------------------------------------------------------------------
# 5. neutralise and safe_table
# --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR",
                                   '=HYPERLINK("http://example.invalid","x")', "=", "-"])
def test_neutralise_formula_text(value):
    assert exports.neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["", "plain", "a=b", "1+1", " =x", "'=x", "(all)",
                                   "\nLF", "é=è"])
def test_neutralise_leaves_safe_text(value):
    assert exports.neutralise(value) == value


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, -1, -1.5, 0, True, False,
                                   np.int64(-3), np.float64(-0.25), pd.NA, pd.NaT,
                                   b"=bytes"])
def test_neutralise_leaves_non_strings_untouched(value):
    assert exports.neutralise(value) is value


def test_safe_table():
    df = pd.DataFrame({
        "text": pd.Series(["=a", "b", None, "-x"], dtype=object),
        "mixed": ["+1", -5, np.nan, 2.5],
        "num": [-1, 2, -3, 4],
        "flt": [-0.5, np.nan, 1.5, -2.0],
        "cat": pd.Categorical(["@c", "d", "@c", "d"]),
        "strd": pd.Series(["=s", "t", None, "u"], dtype="string"),
        "=head": ["x", "y", "z", "w"],  # pandas >= 3 infers the "str" dtype here
    })
    before = df.copy()
    out = exports.safe_table(df)
    pd.testing.assert_frame_equal(df, before)  # the input is not changed
    assert list(out.columns) == ["text", "mixed", "num", "flt", "cat", "strd", "'=head"]
    assert out["text"].tolist()[:2] == ["'=a", "b"] and out["text"].iloc[3] == "'-x"
    # Missing stays missing (never the text "None"); under pandas 3, Series.map turns
    # None into NaN, which is the same empty cell in both file formats.
    assert out["text"].iloc[2] is None or (isinstance(out["text"].iloc[2], float)
                                           and math.isnan(out["text"].iloc[2]))
    assert out["mixed"].iloc[0] == "'+1"
    assert out["mixed"].iloc[1] == -5 and not isinstance(out["mixed"].iloc[1], str)
    assert isinstance(out["mixed"].iloc[2], float) and math.isnan(out["mixed"].iloc[2])
    assert out["mixed"].iloc[3] == 2.5
    assert out["num"].dtype == df["num"].dtype and out["num"].tolist() == [-1, 2, -3, 4]
    assert out["flt"].dtype == np.float64
    np.testing.assert_array_equal(out["flt"].to_numpy(), df["flt"].to_numpy())
    assert out["cat"].tolist() == ["'@c", "d", "'@c", "d"]
    assert out["strd"].iloc[0] == "'=s" and out["strd"].iloc[1] == "t"
    assert pd.isna(out["strd"].iloc[2])
    assert out["'=head"].tolist() == ["x", "y", "z", "w"]


def test_safe_table_non_string_column_names():
    df = pd.DataFrame({0: ["=a"], -1: [3]})
    out = exports.safe_table(df)
    assert list(out.columns) == ["0", "'-1"]
    assert out.iloc[0, 0] == "'=a" and out.iloc[0, 1] == 3


# --------------------------------------------------------------------------
# 6. Without a working browser: one error type, one line
# --------------------------------------------------------------------------
@pytest.fixture
def no_chromium(tmp_path, monkeypatch):
    """A PATH on which no chromium is found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def broken_chromium(tmp_path, monkeypatch):
    """A PATH whose chromium is installed but cannot start (exits at once)."""
    bindir = tmp_path / "broken-bin"
    bindir.mkdir()
    exe = bindir / "chromium"
    exe.write_text("#!/bin/sh\necho 'chromium: cannot open display' >&2\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bindir))
    return exe


def _report():
    from fairness_core.report import html_report
    rows = _group_rows("a", 30) + _group_rows("b", 30)
    df = pd.DataFrame(rows, columns=["y", "p", "g"])
    res = fairness_core.audit(df, AuditSpec(label="y", predictions=["p"], sensitive=["g"],
                                            n_bootstrap=0))
    return res, html_report(res)


def _one_line_export_error(exc, *words):
    assert isinstance(exc, InputError) and isinstance(exc, errors.ExportUnavailable)
    assert exc.field == "export"
    assert "\n" not in exc.message and exc.message.endswith(".")
    for w in words:
        assert w in exc.message, (w, exc.message)


def test_export_unavailable_is_one_input_error():
    assert issubclass(errors.ExportUnavailable, InputError)
    assert charts.ExportUnavailable is errors.ExportUnavailable  # the name callers catch


def test_pdf_without_chromium_raises_export_unavailable(no_chromium):
    from fairness_core.report import pdf_from_html
    _, doc = _report()
    with pytest.raises(errors.ExportUnavailable) as exc:
        pdf_from_html(doc)
    _one_line_export_error(exc.value, "chromium", "not installed", "HTML report")


def test_chart_image_without_chromium_raises_export_unavailable(no_chromium):
    res, _ = _report()
    fig = charts.representation_chart(res.groups, model="p", attribute="g", min_group_size=10)
    with pytest.raises(errors.ExportUnavailable) as exc:
        charts.figure_bytes(fig, "png")
    _one_line_export_error(exc.value, "chromium")
    assert b"<html>" in charts.figure_bytes(fig, "html")  # needs no browser


@pytest.mark.browser
def test_pdf_with_a_chromium_that_cannot_start(broken_chromium):
    from fairness_core.report import pdf_from_html
    _, doc = _report()
    with pytest.raises(errors.ExportUnavailable) as exc:
        pdf_from_html(doc, timeout_ms=30_000)
    _one_line_export_error(exc.value, "could not start", "HTML report")
    # not Playwright's message: no command line, no browser log
    for noise in ("--headless", "--no-sandbox", "cannot open display", "Browser logs",
                  "launch"):
        assert noise not in exc.value.message, exc.value.message


def test_cli_pdf_without_chromium_exits_2(tmp_path, capsys, small_data, no_chromium):
    report = tmp_path / "r.html"
    err = assert_cli_refuses(capsys, [small_data, "--label", "y", "--prediction", "p",
                                      "--sensitive", "g", "--bootstrap", "0", "--quiet",
                                      "--report", report, "--pdf", tmp_path / "r.pdf"],
                             ("chromium",))
    assert "not installed" in err
    assert not (tmp_path / "r.pdf").exists()
