"""Hostile command lines: requests for more work than a machine holds, huge
seeds, a browser that cannot print, names that try to reorder a terminal,
scores on their own scale.  Whatever is the input's fault ends in exit
status 2 and one line that says what is wrong and how to fix it; exit
status 3 stays for real bugs."""
from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm

from fairness_core import AuditSpec, InputError
from fairness_core.stats import aggregate
from fairness_core.stats.bootstrap import Uncertainty, bootstrap_bytes
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


def test_bootstrap_memory_is_estimated_before_drawing(tmp_path, capsys, monkeypatch):
    path = tmp_path / "g300.csv"
    _groups_csv(path, 300)
    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", "64M")
    # 20,000 replicates x 14 metrics x 300 groups x 8 bytes: about 670 MB to keep
    argv = [path, *BASE_CLI, "--max-groups", "300", "--bootstrap", "20000", "--quiet"]
    assert_cli_refuses(capsys, argv, ("bootstrap", "300", "fewer bootstrap replicates",
                                      "fewer groups", "FAIRNESS_AUDIT_MEMORY"))
    rc, _out, err = _cli(capsys, [path, *BASE_CLI, "--max-groups", "300", "--bootstrap",
                                  "200", "--quiet"])
    assert rc == 0, err


def test_bootstrap_estimate_covers_what_the_bootstrap_allocates():
    rng = np.random.default_rng(3)
    k = 400
    row_cells = {"p": rng.integers(0, 20, size=(k, 4))}
    inv = np.arange(k) // 2  # 200 groups, two combinations each
    attributes = [("g", inv, [f"g{i}" for i in range(200)]),
                  ("(overall)", np.zeros(k, dtype=np.int64), ["(all)"])]
    spec = AuditSpec(**BASE_SPEC, n_bootstrap=2000)
    tracemalloc.start()
    try:
        Uncertainty(row_cells, None, attributes, spec)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    need = bootstrap_bytes(2000, k, [200, 1], 1)
    assert peak <= need, (peak, need)
    assert need < 4 * peak + (300 << 20)  # and is not wildly above it


# --------------------------------------------------------------------------
# 2. Many groups: a limit on --max-groups, 10,000 real groups finish
# --------------------------------------------------------------------------
def test_group_limit_above_the_hard_limit_is_refused(tmp_path, capsys):
    argv = [tmp_path / "absent.csv", *BASE_CLI, "--max-groups", "20000"]
    assert_cli_refuses(capsys, argv, ("20,000", "10,000", "FAIRNESS_AUDIT_MAX_GROUPS"))


def test_aggregate_of_ten_thousand_groups_is_small_and_exact():
    rng = np.random.default_rng(5)
    k, g = 20_000, 10_000
    cells = rng.integers(0, 5, size=(20, k, 4)).astype(float)
    inv = rng.permutation(np.arange(k) % g)
    tracemalloc.start()
    try:
        out = aggregate(cells, inv, g)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # a dense (combinations x groups) matrix alone would be 1.6 GB
    assert peak < 5 * cells.nbytes, peak
    expected = np.zeros((20, g, 4))
    np.add.at(expected, (slice(None), inv), cells)
    np.testing.assert_array_equal(out, expected)
    # groups without a combination are zero
    assert not aggregate(cells[:, :3], np.array([0, 0, 5]), 7)[:, 1:5].any()


def test_ten_thousand_groups_finish_with_correct_counts(tmp_path, capsys):
    path = tmp_path / "g10k.csv"
    df = _groups_csv(path, 10_000, per_group=2)
    out_csv = tmp_path / "groups.csv"
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--max-groups", "10000", "--bootstrap",
                                 "100", "--csv", out_csv])
    assert rc == 0, err
    table = pd.read_csv(out_csv, encoding="utf-8-sig")
    groups = table[table["attribute"] == "g"].set_index("group")
    assert len(groups) == 10_000
    for name in ("g00000", "g04321", "g09999"):
        rows = df[df["g"] == name]
        assert groups.loc[name, "n"] == len(rows) == 2
        assert groups.loc[name, "tp"] == int(((rows["y"] == 1) & (rows["p"] == 1)).sum())
    # bootstrap intervals exist for the metrics that need them (balanced accuracy)
    assert groups["balanced_accuracy_ci_low"].notna().any()
    # the terminal shows the worst groups, not 10,000 lines
    assert len(out.splitlines()) < 200
    assert "9,9" in out and "more groups" in out


def test_ten_thousand_groups_with_many_replicates_refused_by_the_estimate(tmp_path, capsys):
    path = tmp_path / "g10k.csv"
    _groups_csv(path, 10_000, per_group=2)
    argv = [path, *BASE_CLI, "--max-groups", "10000", "--bootstrap", "100000"]
    assert_cli_refuses(capsys, argv, ("bootstrap", "10,000 groups", "GB",
                                      "fewer bootstrap replicates"))


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


# --------------------------------------------------------------------------
# 4. A browser that cannot print: one line, every other output written
# --------------------------------------------------------------------------
def _fake_chromium(tmp_path, monkeypatch, script: str):
    """Put an executable ``chromium`` running ``script`` first on the PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "chromium"
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    return exe


def _pdf_refused(tmp_path, capsys, csv_path, *why) -> str:
    report, config, pdf = tmp_path / "r.html", tmp_path / "c.json", tmp_path / "r.pdf"
    line = assert_cli_refuses(capsys, [csv_path, *BASE_CLI, "--bootstrap", "0", "--quiet",
                                       "--report", report, "--save-config", config,
                                       "--pdf", pdf], ("PDF could not be made", *why))
    assert len(line) < 300 and "--headless" not in line and "Browser logs" not in line
    assert not pdf.exists()
    # the other outputs are written in full
    assert report.read_text(encoding="utf-8").rstrip().endswith("</html>")
    assert json.loads(config.read_text(encoding="utf-8"))["spec"]["label"] == "y"
    return line


def test_cli_pdf_with_a_chromium_that_exits_at_once(tmp_path, capsys, monkeypatch, small_csv):
    pytest.importorskip("playwright")
    _fake_chromium(tmp_path, monkeypatch, "echo 'cannot open display' >&2\nexit 1")
    _pdf_refused(tmp_path, capsys, small_csv, "could not start", "HTML report")


def test_cli_pdf_without_chromium_on_the_path(tmp_path, capsys, monkeypatch, small_csv):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _pdf_refused(tmp_path, capsys, small_csv, "not installed", "apt-get install chromium")


def test_cli_pdf_without_playwright(tmp_path, capsys, monkeypatch, small_csv):
    import sys
    _fake_chromium(tmp_path, monkeypatch, "exit 1")
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)  # import fails
    _pdf_refused(tmp_path, capsys, small_csv, "playwright")


@pytest.mark.browser
def test_cli_pdf_with_a_chromium_that_crashes_while_printing(tmp_path, capsys, monkeypatch,
                                                             small_csv):
    # the browser starts, but the page runs out of its (tiny) JavaScript heap
    _fake_chromium(tmp_path, monkeypatch,
                   'exec /usr/bin/chromium "$@" --js-flags=--max-old-space-size=1')
    _pdf_refused(tmp_path, capsys, small_csv, "crashed or closed")


@pytest.mark.browser
def test_pdf_with_a_browser_whose_pages_never_start(tmp_path, monkeypatch):
    from fairness_core.errors import ExportUnavailable
    from fairness_core.report import pdf_from_html
    # the browser starts, but no page's renderer can: Playwright waits without a limit
    _fake_chromium(tmp_path, monkeypatch,
                   'exec /usr/bin/chromium "$@" --renderer-cmd-prefix=/bin/false --no-zygote')
    with pytest.raises(ExportUnavailable) as exc:
        pdf_from_html("<html><body>x</body></html>", timeout_ms=3000)
    assert exc.value.message.startswith("The PDF could not be made: chromium ")
    assert "\n" not in exc.value.message and len(exc.value.message) < 200


@pytest.mark.browser
def test_pdf_that_does_not_finish_in_time_is_export_unavailable():
    from fairness_core.errors import ExportUnavailable
    from fairness_core.report import pdf_from_html
    # a chart placeholder that never gets its drawing: the page waits for it
    page = "<html><body><div class='js-plotly-plot'></div></body></html>"
    with pytest.raises(ExportUnavailable) as exc:
        pdf_from_html(page, timeout_ms=1500)
    assert exc.value.message == ("The PDF could not be made: chromium did not finish within "
                                 "1.5 seconds. The HTML report works without it.")


def test_pdf_with_a_chromium_that_hangs_at_start_times_out(tmp_path, monkeypatch):
    pytest.importorskip("playwright")
    from fairness_core.errors import ExportUnavailable
    from fairness_core.report import pdf_from_html
    _fake_chromium(tmp_path, monkeypatch, "exec sleep 60")
    with pytest.raises(ExportUnavailable, match="could not start"):
        pdf_from_html("<html></html>", timeout_ms=1500)


# --------------------------------------------------------------------------
# 6. Scores on their own scale: the Brier score and calibration are left out, and said so
# --------------------------------------------------------------------------
def _decile_table(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    decile = rng.integers(1, 11, n)
    return pd.DataFrame({"y": (rng.random(n) < decile / 11).astype(int), "decile": decile,
                         "prob": decile / 10 - 0.05,
                         "g": np.where(np.arange(n) % 3 == 0, "A", "B")})


def test_scores_outside_0_1_warn_where_every_warning_goes(tmp_path, capsys):
    from fairness_core.audit import Auditor
    path = tmp_path / "deciles.csv"
    df = _decile_table()
    df.to_csv(path, index=False)
    out_json, report = tmp_path / "out.json", tmp_path / "r.html"
    rc, out, err = _cli(capsys, [path, "--label", "y", "--score", "decile", "--score", "prob",
                                 "--sensitive", "g", "--bootstrap", "0", "--json", out_json,
                                 "--report", report])
    assert rc == 0, err
    said = ("The Brier score and the calibration view need scores between 0 and 1 "
            "(probabilities); they are not computed for the score column 'decile', whose "
            "values range from 1 to 10.")
    assert f"Warning: {said}" in out.splitlines()
    assert "'prob'" not in " ".join(line for line in out.splitlines() if "Brier" in line)
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert said in doc["warnings"]
    brier = {r["model"]: r["brier"] for r in doc["groups"]}
    assert brier["decile"] is None and brier["prob"] is not None
    assert "range from 1 to 10" in report.read_text(encoding="utf-8")
    # the dashboard's engine: the warning is on the result it shows on every page
    spec = AuditSpec(label="y", scores=["decile", "prob"], sensitive=["g"], n_bootstrap=0)
    assert said in Auditor(df, spec).run().warnings


def test_scores_near_the_largest_float_read_in_short_numbers_with_the_auc_bound(tmp_path,
                                                                                capsys):
    """Two scores of about -1.7e308 and 1.7e308 among ordinary ones: the
    audit runs without a numpy warning, the terminal shows the AUC with its
    bound and each mean score in a few characters, and a warning says why."""
    from fairness_core.formatting import auc, num
    assert num(2.994e303) == "2.994e+303" and num(-1.5e15, 1) == "-1.5e+15"
    assert num(123456.789) == "123456.789"  # ordinary sizes keep fixed decimals
    assert auc(0.5012, 0.25) == "0.501 ± 0.250" and auc(0.7123, 3e-6) == "0.712"
    assert auc(float("nan"), 0.25) == "undefined"
    rng = np.random.default_rng(4)
    # more distinct scores than are counted one by one (fine bins, an AUC bound),
    # then few enough to be counted exactly
    for n, binned in [(100_000, True), (2_000, False)]:
        y = rng.integers(0, 2, n)
        s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
        s[[3, 9]] = [-1.7e308, 1.7e308]
        path = tmp_path / "extreme.csv"
        g = rng.choice(["a", "b"], n)
        g[[3, 9]] = ["a", "b"]  # one extreme score in each group
        pd.DataFrame({"y": y, "s": s, "g": g}).to_csv(path, index=False)
        rc, out, err = _cli(capsys, [path, "--label", "y", "--positive", "1", "--score", "s",
                                     "--threshold", "0.5", "--sensitive", "g", "--bootstrap",
                                     "0"])
        assert rc == 0, err
        assert "RuntimeWarning" not in err and "overflow" not in err
        overall = next(line for line in out.splitlines() if line.startswith("Overall:"))
        shown = overall.split("AUC ")[1]
        truth = skm.roc_auc_score(y, s)
        if binned:  # the AUC within its bound of the truth, the bound written after it
            value, bound = (float(x) for x in shown.split(" ± "))
            assert 0.0005 <= bound <= 0.25 and abs(value - truth) <= bound + 0.001, overall
        else:
            assert shown == num(truth), overall
        bound_said = [line for line in out.splitlines() if line.startswith(
            "Warning: The AUC of the score column 's' is known only to within ")]
        assert len(bound_said) == binned
        for line in out.splitlines():
            assert len(line) < 700, line
        table = out[out.index("mean score"):].splitlines()[1:3]
        assert all(("e+30" in row) for row in table), table  # about 1.7e308 / n


# --------------------------------------------------------------------------
# 5. Names that reorder or flood a terminal: escaped and shortened there, whole in JSON
# --------------------------------------------------------------------------
RLO = "\u202e"
LONG = "L" * 990 + "ong group"  # 999 characters
ZWSP = "\u200b"


def _hostile_table(tmp_path):
    rng = np.random.default_rng(5)
    groups = [f"evil{RLO}fdp.exe", LONG, f"zero{ZWSP}width", "plain"]
    n = 400
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                       "g": [groups[i % 4] if i < 380 else "tiny" for i in range(n)]})
    path = tmp_path / f"data{RLO}.csv"
    df.to_csv(path, index=False)
    return path, groups


def _assert_terminal_safe(text: str):
    assert RLO not in text and ZWSP not in text
    assert "L" * 100 not in text  # the long name never appears whole
    for line in text.splitlines():
        assert len(line) < 700, line  # a finding is a long sentence, but not a flood


def test_terminal_escapes_and_shortens_names_json_keeps_them(tmp_path, capsys):
    path, groups = _hostile_table(tmp_path)
    out_json = tmp_path / "out.json"
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--bootstrap", "0", "--min-group-size", "30",
                                 "--json", out_json])
    assert rc == 0, err
    _assert_terminal_safe(out + err)
    assert "evil<U+202E>fdp.exe" in out and "zero<U+200B>width" in out
    assert "\\u202e" not in out  # quoted names read the same as in the tables
    assert "data<U+202E>.csv" in out  # the file name
    assert "(999 characters)" in out  # the long name, shortened with a note
    table_line = next(line for line in out.splitlines() if line.strip().startswith("L" * 20))
    assert len(table_line) < 200
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert {r["group"] for r in doc["groups"]} == {*groups, "tiny"}
    assert any(LONG in f["text"] for f in doc["findings"] + [{"text": w}
                                                               for w in doc["warnings"]])


def test_quiet_warnings_and_error_lines_are_escaped_and_short(tmp_path, capsys):
    path, _ = _hostile_table(tmp_path)
    rc, out, err = _cli(capsys, [path, *BASE_CLI, "--bootstrap", "0", "--min-group-size",
                                 "200", "--quiet"])
    assert rc == 0 and out == ""
    assert "Warning:" in err and "characters)" in err  # small groups, the long one among them
    _assert_terminal_safe(err)
    # an error that quotes a hostile name the user typed
    line = assert_cli_refuses(capsys, [path, *BASE_CLI, "--reference", f"g={LONG}{RLO}"])
    _assert_terminal_safe(line)
    assert "characters)" in line
    line = assert_cli_refuses(capsys, [path, "--label", f"y{RLO}", "--prediction", "p",
                                       "--sensitive", "g"])
    assert "y<U+202E>" in line
    _assert_terminal_safe(line)


# --------------------------------------------------------------------------
# 7. Out of memory anyway: exit 2 with what to reduce; other exceptions stay bugs
# --------------------------------------------------------------------------
def test_memory_error_during_the_audit_is_exit_2(small_csv, capsys, monkeypatch):
    import fairness_core.stats.bootstrap as bootstrap

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array")

    monkeypatch.setattr(bootstrap, "bootstrap_cells", no_memory)
    line = assert_cli_refuses(capsys, [small_csv, *BASE_CLI, "--quiet"],
                              ("more memory", "--bootstrap", "fewer groups",
                               "FAIRNESS_AUDIT_MEMORY"))
    assert "MemoryError" not in line and "74.5" not in line


def test_other_exceptions_stay_internal_errors(small_csv, capsys, monkeypatch):
    import fairness_core.stats.bootstrap as bootstrap

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(bootstrap, "bootstrap_cells", broken)
    monkeypatch.delenv("FAIRNESS_AUDIT_DEBUG", raising=False)
    rc, _out, err = _cli(capsys, [small_csv, *BASE_CLI, "--quiet"])
    assert rc == 3 and "internal error (ZeroDivisionError: a bug)" in err


def test_a_real_allocation_failure_is_exit_2(tmp_path):
    import os
    import resource
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "g2000.csv"
    _groups_csv(path, 2000, per_group=2)
    # the estimate is told the machine is huge; the process may really take 3 GB
    env = {**os.environ, "FAIRNESS_AUDIT_MEMORY": "1T"}

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    # 100,000 replicates of 4,000 combinations x 4 cells: 12.8 GB of counts to draw
    proc = subprocess.run([sys.executable, "-m", "fairness_core.cli", str(path), *BASE_CLI,
                           "--max-groups", "2000", "--bootstrap", "100000", "--quiet"],
                          capture_output=True, text=True, env=env, preexec_fn=cap,
                          cwd=Path(__file__).resolve().parent.parent, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "more memory" in proc.stderr


def test_a_mistyped_command_line_is_one_line_too(small_csv, capsys):
    assert_cli_refuses(capsys, [small_csv, *BASE_CLI, "--bootstrap", "many"],
                       ("--bootstrap", "invalid int value", "fairness-audit --help"))
    assert_cli_refuses(capsys, [small_csv, *BASE_CLI, "--bogus"],
                       ("Unrecognized arguments: --bogus", "--help"))
    assert_cli_refuses(capsys, [], ("Give the DATA to audit", "--history"))
