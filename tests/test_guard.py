"""The guarded read (``fairness_core.guard.read_guarded``): the same table
as ``read_table``, read in a child process capped at the memory limit.

A file over the limit is one clear InputError for that file: the calling
process does not grow (the parse happened elsewhere), the command line
exits with status 2 and one line, and in the dashboard the message shows
under the uploader while another session carries on.  No child is ever
left behind.
"""
from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from fairness_core import guard
from fairness_core.errors import InputError
from fairness_core.io import read_table

ROOT = Path(__file__).resolve().parent.parent
LOANS = ROOT / "sample_data" / "loans.csv"
LOW = "150M"  # every sample reads well within it; the files below need more


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------
def _as_parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _as_xlsx(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_excel(buf, index=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def loans_bytes() -> bytes:
    return LOANS.read_bytes()


@pytest.fixture(scope="module")
def long_strings_csv() -> bytes:
    """About 60 MB of distinct 250-character strings: reading it takes some
    280 MB (the bytes, Arrow's buffers, the strings in the table)."""
    rng = __import__("numpy").random.default_rng(0)
    rows = 240_000
    text = rng.integers(0, 16, size=(rows, 250), dtype="uint8")
    hexed = (text + ord("a")).view("S250").ravel()
    lines = b"\n".join(b"%d,%d,%s" % (i % 2, i // 2 % 2, s) for i, s in enumerate(hexed))
    return b"y,pred,text\n" + lines + b"\n"


def _xlsx_with_huge_string(chars: int) -> bytes:
    """A valid workbook whose shared-strings part holds one string of
    ``chars`` characters, compressed a thousandfold (a zip bomb)."""
    small = pd.DataFrame({"y": ["yes", "no", "yes"], "sex": ["F", "M", "F"]})
    src = zipfile.ZipFile(io.BytesIO(_as_xlsx(small)))
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", f'<Override PartName="/xl/sharedStrings.xml"'
                                                 f' ContentType="{kind}"/></Types>'.encode())
            z.writestr(item.filename, data)
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                    b'openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
                    b"<si><t>")
            for _ in range(chars >> 20):
                f.write(b"x" * (1 << 20))
            f.write(b"</t></si></sst>")
    return out.getvalue()


# --------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------
def _processes() -> dict:
    """pid -> (parent pid, state) for every process on the machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        out[int(entry)] = (int(fields[1]), fields[0].decode())
    return out


def _descendants() -> dict:
    """This process's descendants: pid -> state ("Z" is a zombie)."""
    procs = _processes()
    found, todo = {}, [os.getpid()]
    while todo:
        parent = todo.pop()
        for pid, (ppid, state) in procs.items():
            if ppid == parent and pid not in found:
                found[pid] = state
                todo.append(pid)
    return found


@pytest.fixture
def no_child_left():
    """Around a test: the processes below this one are the same after it
    (the fork server stays; every reading child is gone, none is a zombie)."""
    guard.read_guarded(b"y,g\n1,a\n0,b\n", "warm.csv")  # the fork server is up
    before = _descendants()
    yield
    after = _descendants()
    assert set(after) == set(before), (before, after)
    assert "Z" not in after.values(), after


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _peak_growth(fn) -> int:
    """How far this process's resident memory rose above where it was while
    ``fn`` ran (the kernel's peak, reset first)."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current size
        before = _status("VmRSS")
    except OSError:  # pragma: no cover - older kernels
        before = _status("VmHWM")
    fn()
    return _status("VmHWM") - before


# --------------------------------------------------------------------------
# (a) the same table as read_table
# --------------------------------------------------------------------------
def _same(got, want):
    df, info = got
    want_df, want_info = want
    pd.testing.assert_frame_equal(df, want_df, check_exact=True)
    assert list(df.dtypes) == list(want_df.dtypes)
    assert info == want_info
    for col in df.columns:  # the table is the caller's own, writable memory
        values = df[col].to_numpy()
        assert not hasattr(values, "flags") or values.flags.writeable or \
            not want_df[col].to_numpy().flags.writeable, col


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx"])
def test_guarded_read_equals_read_table(kind, loans_bytes, no_child_left):
    if kind == "csv":
        data = loans_bytes
    elif kind == "parquet":
        data = _as_parquet(pd.read_csv(LOANS))
    else:  # openpyxl is slow: fewer rows, the same types
        data = _as_xlsx(pd.read_csv(LOANS).head(600))
    name = f"loans.{kind}"
    _same(guard.read_guarded(data, name), read_table(data, name=name))
    cols = ["repaid", "sex", "model_a_approved"]
    _same(guard.read_guarded(data, name, columns=cols), read_table(data, name=name,
                                                                   columns=cols))


def test_guarded_read_of_a_path_and_cp1252_text(tmp_path, no_child_left):
    text = "y;name\n1;caf\u00e9\n0;na\u00efve\n".encode("cp1252")
    path = tmp_path / "legacy.csv"
    path.write_bytes(text)
    _same(guard.read_guarded(path), read_table(path))
    _same(guard.read_guarded(text, "legacy.csv", budget=64 << 20),
          read_table(text, name="legacy.csv"))
    _same(guard.read_guarded(LOANS, start="fork"), read_table(LOANS))


# --------------------------------------------------------------------------
# (b) over the budget: a clear InputError, and this process did not grow
# --------------------------------------------------------------------------
def _over_budget(data: bytes, name: str) -> InputError:
    with pytest.raises(InputError) as err:
        guard.read_guarded(data, name)
    return err.value


def test_file_over_the_budget_is_a_clear_error(monkeypatch, long_strings_csv, no_child_left):
    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", LOW)
    errors = []
    growth = _peak_growth(lambda: errors.append(_over_budget(long_strings_csv, "big.csv")))
    err = errors[0]
    assert err.field == "file"
    assert "'big.csv' needs more memory than the limit of 150.0 MB" in err.message
    assert "FAIRNESS_AUDIT_MEMORY" in err.message
    assert growth < 40 << 20, f"this process grew by {growth / 2**20:.0f} MB"
    # the same file reads with room to spare
    df, info = guard.read_guarded(long_strings_csv, "big.csv", budget=1 << 30)
    assert len(df) == 240_000 and info.size_bytes == len(long_strings_csv)


def test_zip_bomb_workbook_is_a_clear_error(monkeypatch, no_child_left):
    bomb = _xlsx_with_huge_string(200 << 20)
    assert len(bomb) < 1 << 20
    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", LOW)
    errors = []
    growth = _peak_growth(lambda: errors.append(_over_budget(bomb, "bomb.xlsx")))
    # over the memory limit, or refused up front by a reader's own limit
    assert "FAIRNESS_AUDIT_" in errors[0].message, errors[0].message
    assert "'bomb.xlsx'" in errors[0].message
    assert growth < 40 << 20, f"this process grew by {growth / 2**20:.0f} MB"


# --------------------------------------------------------------------------
# (c) the command line: exit status 2 and one line
# --------------------------------------------------------------------------
def test_cli_over_the_budget_exits_2_with_one_line(tmp_path, long_strings_csv):
    path = tmp_path / "big.csv"
    path.write_bytes(long_strings_csv)
    env = {**os.environ, "FAIRNESS_AUDIT_MEMORY": LOW}
    env.pop("FAIRNESS_AUDIT_DEBUG", None)
    # --engine memory: the tool's own reader (a CSV this large for the budget would
    # otherwise be counted by DuckDB, out of core)
    run = subprocess.run([sys.executable, "-m", "fairness_core.cli", str(path), "--label", "y",
                          "--prediction", "pred", "--sensitive", "text", "--engine", "memory"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("fairness-audit: error: Reading 'big.csv' needs more memory")


def test_cli_reads_through_the_guard(monkeypatch, capsys):
    from fairness_core import cli

    calls = []
    real = guard.read_guarded

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "read_guarded", spy)
    rc = cli.main([str(LOANS), "--label", "repaid", "--positive", "yes", "--prediction",
                   "model_a_approved", "--sensitive", "sex", "--bootstrap", "0", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert len(calls) == 1 and calls[0][1]["columns"] == ["repaid", "model_a_approved", "sex"]


# --------------------------------------------------------------------------
# (d) errors come back as they were raised
# --------------------------------------------------------------------------
def test_input_error_keeps_message_field_and_column(loans_bytes, no_child_left):
    with pytest.raises(InputError) as want:
        read_table(loans_bytes, name="loans.csv", columns=["repaid", "nope"])
    with pytest.raises(InputError) as got:
        guard.read_guarded(loans_bytes, "loans.csv", columns=["repaid", "nope"])
    assert (got.value.message, got.value.field, got.value.column) == \
        (want.value.message, want.value.field, want.value.column) != (None, None, None)
    assert got.value.column == "nope" and got.value.field == "columns"
    with pytest.raises(InputError, match="is empty") as empty:
        guard.read_guarded(b"", "empty.csv")
    assert empty.value.field == "file"


def _raising(what):
    def read_table(*args, **kwargs):
        if what == "bug":
            raise KeyError("a bug")
        if what == "memory":
            raise MemoryError
        if what == "wrapped":  # a reader that turns a MemoryError into its own error
            try:
                raise MemoryError
            except MemoryError:
                raise InputError("'x.xlsx' could not be read (MemoryError)",
                                 field="file") from None
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel does when memory runs out
    return read_table


@pytest.mark.parametrize("what", ["bug", "memory", "wrapped", "killed"])
def test_child_failures(monkeypatch, what, no_child_left):
    # a forked child runs this process's code, with the reader replaced
    import fairness_core.io as fio

    monkeypatch.setattr(fio, "read_table", _raising(what))
    if what == "bug":
        with pytest.raises(RuntimeError, match="KeyError: 'a bug'") as err:
            guard.read_guarded(b"y\n1\n", "x.csv", start="fork")
        assert "\n" not in str(err.value)
        assert isinstance(err.value.__cause__, guard.ChildTraceback)
        assert "Traceback" in str(err.value.__cause__) and "a bug" in str(err.value.__cause__)
        return
    with pytest.raises(InputError, match="needs more memory than the limit of 1.0 GB") as err:
        guard.read_guarded(b"y\n1\n", "x.csv", budget=1 << 30, start="fork")
    assert err.value.field == "file"


# --------------------------------------------------------------------------
# (f) no child is left behind, whatever happens in this process
# --------------------------------------------------------------------------
def test_child_is_ended_when_the_caller_stops_reading(monkeypatch, no_child_left):
    def interrupted(conn, size):
        raise KeyboardInterrupt

    monkeypatch.setattr(guard, "_recv_into", interrupted)
    with pytest.raises(KeyboardInterrupt):
        guard.read_guarded(LOANS.read_bytes(), "loans.csv")


def test_many_reads_leave_no_child(loans_bytes, no_child_left):
    before = set(_descendants())
    for _ in range(3):
        guard.read_guarded(loans_bytes, "loans.csv")
        with pytest.raises(InputError):
            guard.read_guarded(b"a,b\n", "header.csv")
        assert set(_descendants()) == before


# --------------------------------------------------------------------------
# (e) the dashboard: the message under the uploader; other sessions go on
# --------------------------------------------------------------------------
def test_app_upload_over_the_budget(monkeypatch, long_strings_csv, no_child_left):
    import test_app as t

    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", LOW)
    at = t.run_default()
    t.upload(at, "big.csv", long_strings_csv)
    t.assert_clean(at)
    msg = t.ctx(at).errors.get("file", "")
    assert "'big.csv' needs more memory than the limit of 150.0 MB" in msg, msg
    assert t.widget_above(at, t.md(msg)) == "upload"
    # another session loads the sample and renders its audit
    other = t.run_default()
    t.assert_clean(other)
    assert t.ctx(other).result is not None
    assert "Fairness audit overview" in t.titles(other)
    # and so does the first session, back on the sample
    at.selectbox(key="source").set_value(list(t.state.SAMPLES)[0]).run()
    t.assert_clean(at)
    assert t.ctx(at).result is not None and "file" not in t.ctx(at).errors


# --------------------------------------------------------------------------
# (f) many sessions: one pool for every read's cap and every table held
# --------------------------------------------------------------------------
class _Token:
    """Something to hold memory for (freed when the object is)."""


def _read_in_thread(pool, data, name):
    import threading

    out = {}

    def run():
        try:
            out["table"] = pool.read(data, name)
        except Exception as err:  # noqa: BLE001 - the test looks at it
            out["error"] = err

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_a_read_waits_for_memory_other_sessions_hold(loans_bytes, no_child_left):
    pool = guard.SharedBudget(1 << 30, minimum=256 << 20, wait=60)
    other = _Token()
    pool.hold(other, 900 << 20)  # another session's table: 124 MB left
    t, out = _read_in_thread(pool, loans_bytes, "loans.csv")
    t.join(1.0)
    assert t.is_alive(), "the read did not wait for its 256 MB"
    del other
    gc.collect()  # that session ends: its table is freed
    t.join(60)
    assert not t.is_alive() and "error" not in out, out
    df, info = out["table"]
    _same((df, info), read_table(loans_bytes, name="loans.csv"))
    # the table now held: twice its size in memory, until it is freed
    assert pool.used == 2 * int(df.memory_usage(deep=True).sum())
    del df, out
    gc.collect()
    assert pool.used == 0


def test_a_busy_server_says_try_again(loans_bytes, no_child_left):
    pool = guard.SharedBudget(1 << 30, minimum=256 << 20, wait=0.5)
    other = _Token()
    pool.hold(other, 1 << 30)
    with pytest.raises(guard.Busy) as err:
        pool.read(loans_bytes, "loans.csv")
    msg = err.value.message
    assert err.value.field == "file"
    assert "'loans.csv' was not read" in msg and "Try again in a minute" in msg, msg
    assert "1.0 GB of the 1.0 GB" in msg and "FAIRNESS_AUDIT_MEMORY" in msg, msg
    assert pool.used == 1 << 30  # nothing reserved was left behind
    del other
    gc.collect()
    df, _ = pool.read(loans_bytes, "loans.csv")  # a moment later it reads
    assert len(df) == len(read_table(loans_bytes, name="loans.csv")[0])


def test_a_file_over_its_first_reservation_is_read_with_the_whole_limit(
        monkeypatch, long_strings_csv, no_child_left):
    budgets = []
    real = guard.read_guarded

    def recording(data, name=None, **kw):
        budgets.append(kw["budget"])
        return real(data, name, **kw)

    monkeypatch.setattr(guard, "read_guarded", recording)
    # the first reservation (64 MB) is too small for this file (about 280 MB)
    pool = guard.SharedBudget(1 << 30, per_byte=1, minimum=64 << 20)
    df, info = pool.read(long_strings_csv, "big.csv")
    assert budgets == [64 << 20, 1 << 30]
    assert len(df) == 240_000 and info.size_bytes == len(long_strings_csv)
    # and over the whole limit, the message names the limit, not the reservation
    small = guard.SharedBudget(150 << 20, per_byte=1, minimum=64 << 20)
    with pytest.raises(guard.OverBudget) as err:
        small.read(long_strings_csv, "big.csv")
    assert "limit of 150.0 MB" in err.value.message, err.value.message
    assert small.used == 0


def test_the_dashboards_sessions_share_one_pool(monkeypatch, loans_bytes, no_child_left):
    import test_app as t

    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", "1G")
    pool = t.state.shared_budget(1 << 30)
    assert t.state.shared_budget(1 << 30) is pool
    before = pool.used
    other = _Token()
    pool.hold(other, (1 << 30) - before)  # other sessions hold it all
    monkeypatch.setattr(pool, "wait", 0.2)
    at = t.run_default()
    t.upload(at, "loans.csv", loans_bytes)
    t.assert_clean(at)
    msg = t.ctx(at).errors.get("file", "")
    assert "Try again in a minute" in msg, msg
    del other
    gc.collect()
    at.run()  # any rerun: the busy answer was not kept as the file's answer
    t.assert_clean(at)
    assert "file" not in t.ctx(at).errors and t.ctx(at).loaded.name == "loans.csv"
