"""Bad inputs are refused with a helpful InputError, and through the command
line with exit status 2 and one line on stderr (no traceback).  Also the
tolerated oddities: dropped rows, missing groups, label encodings, and the
CLI's JSON output and CI gate."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, InputError, audit, read_table
from fairness_core.cli import main

BASE_SPEC = dict(label="y", predictions=["p"], sensitive=["g"])
BASE_CLI = ["--label", "y", "--prediction", "p", "--sensitive", "g"]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _csv(rows, header=("y", "p", "g")) -> bytes:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r)
                                  for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


GOOD_ROWS = [(1, 1, "A"), (0, 0, "B"), (1, 0, "A"), (0, 1, "B"), (1, 1, "B"), (0, 0, "A")]
GOOD_CSV = _csv(GOOD_ROWS)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def _cli(capsys, argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def assert_cli_refuses(capsys, argv, keywords=()) -> str:
    """Exit 2, exactly one line on stderr starting with the prefix, no traceback."""
    rc, out, err = _cli(capsys, argv)
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = err.rstrip("\n")
    assert line.startswith("fairness-audit: error:"), line
    assert "internal error" not in line
    for k in keywords:
        assert k in line, (k, line)
    return line


def assert_input_error(call, keywords=(), field_=None) -> InputError:
    with pytest.raises(InputError) as exc:
        call()
    err = exc.value
    assert isinstance(err.message, str) and err.message == str(err)
    for k in keywords:
        assert k in err.message, (k, err.message)
    if field_ is not None:
        assert err.field == field_, (err.field, err.message)
    return err


# --------------------------------------------------------------------------
# Refused inputs: one table, checked through the API and through the CLI
# --------------------------------------------------------------------------
@dataclass
class Bad:
    id: str
    content: bytes | None  # None: no file is created
    filename: str = "data.csv"
    spec: dict = field(default_factory=dict)  # overrides of BASE_SPEC
    cli: list = field(default_factory=list)  # extra CLI arguments
    keywords: tuple = ()
    field_: str | None = None


_GARBAGE = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"
            + bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8)))
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504
_IDS = _csv([(i % 2, (i // 3) % 2, f"cust{i:04d}") for i in range(500)])
_APPROVED = _csv([("approved", "approved", "A"), ("denied", "denied", "B"),
                  ("approved", "denied", "A"), ("denied", "approved", "B")])

BAD = [
    Bad("missing-file", None, "nope.csv", keywords=("no file", "nope.csv"), field_="file"),
    Bad("empty-file", b"", keywords=("data.csv", "empty"), field_="file"),
    Bad("whitespace-only", b"   \n\t\n  \r\n\n", keywords=("empty",), field_="file"),
    Bad("header-only", b"y,p,g\n", keywords=("header", "no data rows"), field_="file"),
    Bad("header-only-no-newline", b"y,p,g", keywords=("no data rows",), field_="file"),
    Bad("binary-garbage-named-csv", _GARBAGE, keywords=("data.csv", "binary", "CSV"),
        field_="file"),
    Bad("csv-named-parquet", GOOD_CSV, "data.parquet", keywords=("Parquet", "text"),
        field_="file"),
    Bad("parquet-named-csv", _parquet_bytes(pd.DataFrame({"y": [1, 0], "p": [1, 0],
                                                          "g": ["A", "B"]})),
        "data.csv", keywords=("CSV", "Parquet"), field_="file"),
    Bad("text-named-xlsx", GOOD_CSV, "data.xlsx", keywords=("Excel", "text"),
        field_="file"),
    Bad("zip-named-xlsx", b"PK\x03\x04" + b"not really a workbook" * 20, "data.xlsx",
        keywords=("Excel", ".xlsx"), field_="file"),
    Bad("xls-name", GOOD_CSV, "data.xls", keywords=(".xls", ".xlsx", "not supported"),
        field_="file"),
    Bad("xls-content-named-xls", _OLE, "data.xls", keywords=(".xls", ".xlsx"),
        field_="file"),
    Bad("xls-content-named-csv", _OLE, "data.csv", keywords=(".xls", ".xlsx"),
        field_="file"),
    Bad("missing-column", GOOD_CSV, spec=dict(sensitive=["race"]),
        cli=["--sensitive", "race"], keywords=("'race'", "'y'", "'p'", "'g'", "columns"),
        field_="columns"),
    Bad("missing-label-column", GOOD_CSV, spec=dict(label="outcome"),
        cli=["--label", "outcome"], keywords=("'outcome'", "'y'", "'p'", "'g'"),
        field_="columns"),
    Bad("label-three-values",
        _csv([("approved", "approved", "A"), ("denied", "denied", "B"),
              ("pending", "approved", "A")]),
        cli=["--task", "binary"],
        keywords=("'approved'", "'denied'", "'pending'", "positive class", "'y'"),
        field_="positive"),
    Bad("label-entirely-empty", _csv([(None, 1, "A"), (None, 0, "B"), (None, 1, "A")]),
        keywords=("'y'", "entirely empty"), field_="label"),
    Bad("yesno-label-01-prediction",
        _csv([("yes", 1, "A"), ("no", 0, "B"), ("yes", 0, "A"), ("no", 1, "B")]),
        keywords=("'p'", "'0'", "'1'", "'yes'", "'no'", "--prediction-positive"),
        field_="prediction_positive"),
    Bad("score-not-numeric",
        _csv([(1, "high", "A"), (0, "low", "B"), (1, "0.3", "A")], header=("y", "s", "g")),
        spec=dict(predictions=[], scores=["s"]), cli=["--score", "s"],
        keywords=("'s'", "'high'", "'low'", "numbers"), field_="scores"),
    Bad("identifier-like-sensitive", _IDS,
        keywords=("'g'", "500", "identifier", "--max-groups", "50"), field_="sensitive"),
    Bad("unknown-reference-group", GOOD_CSV, spec=dict(reference={"g": "Z"}),
        cli=["--reference", "g=Z"], keywords=("'Z'", "'A'", "'B'"), field_="reference"),
    Bad("reference-for-unaudited-attribute", GOOD_CSV, spec=dict(reference={"race": "X"}),
        cli=["--reference", "race=X"], keywords=("'race'", "audited", "'g'"),
        field_="reference"),
    Bad("tolerance-0", GOOD_CSV, spec=dict(tolerance=0), cli=["--tolerance", "0"],
        keywords=("tolerance", "above 0", "at most 1"), field_="tolerance"),
    Bad("tolerance-1.5", GOOD_CSV, spec=dict(tolerance=1.5), cli=["--tolerance", "1.5"],
        keywords=("tolerance", "1.5"), field_="tolerance"),
    Bad("tolerance-negative", GOOD_CSV, spec=dict(tolerance=-1), cli=["--tolerance", "-1"],
        keywords=("tolerance", "-1"), field_="tolerance"),
    Bad("no-obvious-positive", _APPROVED,
        keywords=("'y'", "'approved'", "'denied'", "positive", "--positive"),
        field_="positive"),
    Bad("positive-not-a-label-value", _APPROVED, spec=dict(positive="accepted"),
        cli=["--positive", "accepted"], keywords=("'accepted'", "'approved'", "'denied'"),
        field_="positive"),
    Bad("negative-weights", _csv([(1, 1, "A", 1.0), (0, 0, "B", -2.0), (1, 0, "A", 0.5)],
                                 header=("y", "p", "g", "w")),
        spec=dict(weight="w"), cli=["--weight", "w"], keywords=("'w'", "negative"),
        field_="weight"),
    Bad("non-numeric-weights", _csv([(1, 1, "A", 1.0), (0, 0, "B", "heavy"),
                                     (1, 0, "A", 0.5)], header=("y", "p", "g", "w")),
        spec=dict(weight="w"), cli=["--weight", "w"], keywords=("'w'", "'heavy'", "numbers"),
        field_="weight"),
]


def _place(tmp_path, case: Bad):
    path = tmp_path / case.filename
    if case.content is not None:
        path.write_bytes(case.content)
    return path


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_raises_input_error(tmp_path, case):
    path = _place(tmp_path, case)
    assert_input_error(lambda: audit(path, AuditSpec(**{**BASE_SPEC, **case.spec})),
                       case.keywords, case.field_)


@pytest.mark.parametrize("case", BAD, ids=[c.id for c in BAD])
def test_bad_input_through_cli_exits_2_with_one_line(tmp_path, capsys, case):
    path = _place(tmp_path, case)
    args = list(BASE_CLI)
    if "--label" in case.cli:  # replace, do not repeat, the label
        args = args[2:]
    if "--score" in case.cli:  # a score model instead of the prediction
        args = [a for a in args if a not in ("--prediction", "p")]
    if "--sensitive" in case.cli:
        args = args[:args.index("--sensitive")]
    assert_cli_refuses(capsys, [path, *args, *case.cli], case.keywords)


@pytest.mark.parametrize("case", [c for c in BAD if c.content is not None
                                  and c.id.split("-")[0] in ("empty", "whitespace", "header",
                                                             "binary", "csv", "parquet",
                                                             "text", "zip", "xls")],
                         ids=lambda c: c.id)
def test_bad_file_as_uploaded_bytes(case):
    """The same file problems for an upload (bytes + name), with the name in the message."""
    err = assert_input_error(lambda: read_table(case.content, name=case.filename),
                             field_="file")
    assert case.filename in err.message


def test_folder_instead_of_file(tmp_path, capsys):
    assert_input_error(lambda: read_table(tmp_path), ("folder",), "file")
    assert_cli_refuses(capsys, [tmp_path, *BASE_CLI], ("folder",))


# --------------------------------------------------------------------------
# The other side of each refusal: the fix works
# --------------------------------------------------------------------------
def test_identifier_like_column_accepted_with_a_higher_group_limit(tmp_path, capsys):
    path = tmp_path / "ids.csv"
    path.write_bytes(_IDS)
    res = audit(path, AuditSpec(**BASE_SPEC, max_groups=1000))
    groups = res.group_metrics[res.group_metrics["attribute"] == "g"]
    assert len(groups) == 500
    assert set(groups["n"]) == {1}
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--max-groups", "1000", "--quiet"])
    assert rc == 0, err
    assert "error" not in err
    # the limit is inclusive: exactly 500 groups are allowed with a limit of 500
    assert len(audit(path, AuditSpec(**BASE_SPEC, max_groups=500)).group_metrics) == 500
    assert_input_error(lambda: audit(path, AuditSpec(**BASE_SPEC, max_groups=499)),
                       ("500", "499"))


def test_numeric_identifier_suggests_bins(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_bytes(_csv([(i % 2, (i // 3) % 2, 10_000 + i) for i in range(200)]))
    assert_input_error(lambda: audit(path, AuditSpec(**BASE_SPEC)),
                       ("identifier", "bins", "--max-groups"), "sensitive")


def test_tolerance_one_is_accepted(tmp_path, capsys):
    spec = AuditSpec(**BASE_SPEC, tolerance=1.0)
    assert spec.tolerance == 1.0
    path = tmp_path / "d.csv"
    path.write_bytes(GOOD_CSV)
    res = audit(path, spec)
    assert res.spec.tolerance == 1.0
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--tolerance", "1.0", "--quiet"])
    assert rc == 0, err


@pytest.mark.parametrize("bad", ["0.8x", None, float("nan")])
def test_tolerance_not_a_number_is_refused(bad):
    assert_input_error(lambda: AuditSpec(**BASE_SPEC, tolerance=bad), ("tolerance",),
                       "tolerance")


def test_explicit_positive_value_works(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_bytes(_APPROVED)
    res = audit(path, AuditSpec(**BASE_SPEC, positive="approved"))
    assert res.provenance["positive_label"] == "approved"
    assert res.provenance["negative_label"] == "denied"
    g = res.group_metrics.set_index("group")
    # A: predictions approved, denied -> 1/2; B: denied, approved -> 1/2
    assert g.loc["A", "selection_rate"] == pytest.approx(0.5)
    assert g.loc["B", "selection_rate"] == pytest.approx(0.5)
    # A: labels approved, approved -> base rate 1; B: denied, denied -> 0
    assert g.loc["A", "base_rate"] == pytest.approx(1.0)
    assert g.loc["B", "base_rate"] == pytest.approx(0.0)
    # the other choice flips every rate
    res2 = audit(path, AuditSpec(**BASE_SPEC, positive="denied"))
    g2 = res2.group_metrics.set_index("group")
    assert g2.loc["A", "base_rate"] == pytest.approx(0.0)
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--positive", "approved", "--quiet"])
    assert rc == 0, err


# --------------------------------------------------------------------------
# Tolerated: dropped rows and missing groups
# --------------------------------------------------------------------------
MISSING_ROWS = [
    (1, 1, "A"), (None, 0, "B"), (1, None, "A"), (0, 0, None), (1, 1, "B"),
    (0, 1, "A"), (None, None, "B"), (0, 0, "B"), (1, 0, None),
]


def test_rows_with_missing_label_or_prediction_are_dropped_and_counted(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(MISSING_ROWS))
    res = audit(path, AuditSpec(**BASE_SPEC))
    prov = res.provenance
    assert prov["rows_read"] == 9
    assert prov["rows_dropped"] == 3  # rows 2, 3 and 7
    assert prov["rows_used"] == 6
    assert prov["dropped_reasons"] == {"missing label (y)": 2, "missing prediction (p)": 2}
    assert any("3 of 9 rows" in w and "missing label" in w and "missing prediction" in w
               for w in res.warnings), res.warnings
    ov = res.overall.iloc[0]
    assert ov["n"] == 6
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--quiet"])
    assert rc == 0
    assert "Warning:" in err and "3 of 9 rows" in err
    assert "Traceback" not in err


def test_missing_sensitive_value_becomes_missing_group(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv(MISSING_ROWS))
    res = audit(path, AuditSpec(**BASE_SPEC))
    g = res.group_metrics.set_index("group")
    assert list(g.index) == ["A", "B", "(missing)"]
    assert g.loc["(missing)", "n"] == 2  # rows 4 and 9 keep their label and prediction
    assert g.loc["(missing)", "selection_rate"] == pytest.approx(0.0)
    assert g.loc["(missing)", "base_rate"] == pytest.approx(0.5)
    assert g.loc["A", "n"] == 2 and g.loc["B", "n"] == 2
    assert g.loc["A", "selection_rate"] == pytest.approx(1.0)
    assert g.loc["B", "selection_rate"] == pytest.approx(0.5)


def test_missing_values_in_a_data_frame_are_handled_alike():
    df = pd.DataFrame(MISSING_ROWS, columns=["y", "p", "g"])
    res = audit(df, AuditSpec(**BASE_SPEC))
    assert res.provenance["rows_dropped"] == 3
    assert "(missing)" in set(res.group_metrics["group"])


def test_all_rows_dropped_is_refused(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_bytes(_csv([(1, None, "A"), (0, None, "B"), (None, 1, "A")]))
    assert_input_error(lambda: audit(path, AuditSpec(**BASE_SPEC)),
                       ("No row is left", "missing"))
    assert_cli_refuses(capsys, [path, *BASE_CLI], ("No row is left",))


# --------------------------------------------------------------------------
# Label encodings: all give the hand-counted rates
# --------------------------------------------------------------------------
# group A: 10 rows, 7 predicted positive, 6 actually positive
# group B: 10 rows, 3 predicted positive, 5 actually positive
Y_A = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
P_A = [1, 1, 1, 1, 0, 0, 1, 1, 1, 0]
Y_B = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
P_B = [1, 0, 0, 0, 0, 1, 1, 0, 0, 0]
ENCODINGS = {  # name -> (positive token, negative token, --positive or None)
    "true-false": ("True", "False", None),
    "0-1": (1, 0, None),
    "yes-no": ("yes", "no", None),
    "adult": (">50K", "<=50K", ">50K"),
}


def _hand_counts():
    out = {}
    for g, y, p in (("A", Y_A, P_A), ("B", Y_B, P_B)):
        y, p = np.array(y), np.array(p)
        out[g] = {"selection_rate": p.mean(), "base_rate": y.mean(),
                  "tpr": p[y == 1].mean(), "fpr": p[y == 0].mean(),
                  "accuracy": (p == y).mean()}
    return out


def _encoded_rows(pos, neg):
    enc = lambda v: pos if v else neg  # noqa: E731
    return ([(enc(y), enc(p), "A") for y, p in zip(Y_A, P_A)]
            + [(enc(y), enc(p), "B") for y, p in zip(Y_B, P_B)])


@pytest.mark.parametrize("source", ["csv", "dataframe", "parquet"])
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_label_encodings_give_hand_counted_rates(tmp_path, encoding, source):
    pos, neg, positive = ENCODINGS[encoding]
    rows = _encoded_rows(pos, neg)
    df = pd.DataFrame(rows, columns=["y", "p", "g"])
    if encoding == "true-false" and source != "csv":
        df[["y", "p"]] = df[["y", "p"]] == "True"  # real booleans
        assert df["y"].dtype == bool
    spec = AuditSpec(**BASE_SPEC, positive=positive)
    if source == "csv":
        path = tmp_path / "d.csv"
        path.write_bytes(_csv(rows))
        res = audit(path, spec)
    elif source == "parquet":
        path = tmp_path / "d.parquet"
        df.to_parquet(path, index=False)
        res = audit(path, spec)
    else:
        res = audit(df, spec)
    assert res.provenance["positive_label"] == str(pos)
    assert res.provenance["rows_dropped"] == 0
    g = res.group_metrics.set_index("group")
    assert list(g.index) == ["A", "B"]
    for grp, metrics in _hand_counts().items():
        assert g.loc[grp, "n"] == 10
        for m, want in metrics.items():
            assert g.loc[grp, m] == pytest.approx(want), (grp, m)


def test_mixed_boolean_label_and_integer_prediction_agree():
    df = pd.DataFrame(_encoded_rows(True, False), columns=["y", "p", "g"])
    df["p"] = df["p"].astype(int)
    res = audit(df, AuditSpec(**BASE_SPEC))
    g = res.group_metrics.set_index("group")
    assert g.loc["A", "selection_rate"] == pytest.approx(0.7)
    assert g.loc["B", "selection_rate"] == pytest.approx(0.3)


def test_adult_labels_through_cli_json(tmp_path, capsys):
    path = tmp_path / "adult.csv"
    path.write_bytes(_csv(_encoded_rows(">50K", "<=50K")))
    out = tmp_path / "a.json"
    rc, _, err = _cli(capsys, [path, *BASE_CLI, "--positive", ">50K", "--json", out,
                               "--quiet"])
    assert rc == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    rates = {r["group"]: r["selection_rate"] for r in doc["groups"]}
    assert rates == pytest.approx({"A": 0.7, "B": 0.3})
    # without --positive the tool cannot know which is favourable
    assert_cli_refuses(capsys, [path, *BASE_CLI], ("'>50K'", "'<=50K'", "--positive"))


# --------------------------------------------------------------------------
# CLI: JSON output and the CI gate
# --------------------------------------------------------------------------
def _planted(disparity: bool) -> bytes:
    """200 rows per group; A selected 80%, B 20% (or both 50%)."""
    rows = []
    for grp, sel in (("A", 0.8 if disparity else 0.5), ("B", 0.2 if disparity else 0.5)):
        n_sel = int(round(200 * sel))
        for i in range(200):
            rows.append((i % 2, int(i < n_sel), grp))  # label 50% in both groups
    return _csv(rows)


TOP_KEYS = {"spec", "provenance", "groups", "disparities", "summary", "findings"}


def test_cli_json_output_and_fail_on_disparity(tmp_path, capsys):
    path = tmp_path / "planted.csv"
    path.write_bytes(_planted(True))
    out = tmp_path / "out" / "audit.json"
    rc, stdout, err = _cli(capsys, [path, *BASE_CLI, "--json", out, "--fail-on-disparity",
                                    "--quiet"])
    assert rc == 1, err
    assert "fail" in err and "Traceback" not in err
    with open(out, encoding="utf-8") as fh:
        doc = json.load(fh)
    assert TOP_KEYS <= set(doc)
    assert doc["spec"]["label"] == "y" and doc["spec"]["sensitive"] == ["g"]
    assert doc["provenance"]["rows_read"] == 400
    assert doc["provenance"]["input"]["name"] == "planted.csv"
    rates = {r["group"]: r["selection_rate"] for r in doc["groups"]}
    assert rates == pytest.approx({"A": 0.8, "B": 0.2})
    sel = [d for d in doc["disparities"] if d["metric"] == "selection_rate"]
    assert len(sel) == 1
    assert sel[0]["verdict"] == "fail"
    assert sel[0]["ratio"] == pytest.approx(0.25)
    assert doc["findings"], "a planted disparity must produce findings"
    # without the gate the same data exits 0
    rc, _, _ = _cli(capsys, [path, *BASE_CLI, "--quiet"])
    assert rc == 0


def test_cli_fail_on_disparity_passes_without_disparity(tmp_path, capsys):
    path = tmp_path / "fair.csv"
    path.write_bytes(_planted(False))
    out = tmp_path / "audit.json"
    rc, stdout, err = _cli(capsys, [path, *BASE_CLI, "--json", out, "--fail-on-disparity",
                                    "--quiet"])
    assert rc == 0, err
    with open(out, encoding="utf-8") as fh:
        doc = json.load(fh)
    assert TOP_KEYS <= set(doc)
    assert doc["disparities"], "the comparison must have been made"
    assert all(d["verdict"] == "pass" for d in doc["disparities"])
    rates = {r["group"]: r["selection_rate"] for r in doc["groups"]}
    assert rates == pytest.approx({"A": 0.5, "B": 0.5})


def test_cli_prints_a_summary_on_success(tmp_path, capsys):
    path = tmp_path / "planted.csv"
    path.write_bytes(_planted(True))
    rc, stdout, err = _cli(capsys, [path, *BASE_CLI])
    assert rc == 0
    assert "400 rows used of 400 read" in stdout
    assert "FAIL" in stdout
