"""Reading a file within a memory budget.

:func:`read_guarded` runs :func:`fairness_core.io.read_table` in a child
process whose data size is capped at the memory limit
(``FAIRNESS_AUDIT_MEMORY``, see :mod:`fairness_core.limits`).  The readers'
up-front checks refuse the files they know to be too big; the cap also holds
for files nobody foresaw: a zip bomb, a CSV whose one line is gigabytes
long, a Parquet file whose dictionary expands a thousandfold.  Going over
the budget ends that child only and comes back as an :class:`InputError`
for that file; the calling process (the dashboard's server, with every
other session) carries on.

How it works
------------
* The children are forked by a small server process started once, on first
  use (:func:`serve`), which has loaded the readers, and everything they
  load on first use: a read costs a fork, not an interpreter start, and it
  is safe from a process with threads such as the dashboard's server.  A
  single-threaded program that reads once (the command line) forks itself
  instead (``start="fork"``) and saves starting the server.
  (multiprocessing's fork server is not used: its children first run the
  parent's ``__main__`` again, and in a Streamlit session ``__main__`` is
  the app's script.)
* The cap is ``RLIMIT_DATA``: the child's data size when it starts plus the
  budget, so the budget is what reading the file may add (the file's bytes,
  the parser's buffers, the table).  ``RLIMIT_AS`` would also count address
  space that allocators reserve without using: a read that needs 280 MB
  fails under an ``RLIMIT_AS`` of 700 MB.  For the same reason Arrow
  allocates through the C library's ``malloc`` in the server and the
  children: Arrow's default allocator (mimalloc) reserves its arenas ahead
  of use, and space reserved before the cap would be memory a child could
  fill unseen.
* The file's bytes go to the child through a socket pair, never a file.  The
  table comes back pickled with its column buffers out of band: written to
  the socket as they are and read once into the caller's memory.
* Running out of memory shows in the child as a ``MemoryError``, a reader's
  error caused by one, or the child killed (Arrow aborts on some failed
  allocations; the kernel may kill a child when the machine runs short).
  Each of these becomes one :class:`InputError` with ``field="file"``.  An
  :class:`InputError` raised by the reader comes back as it was (message,
  field, column); any other exception is a bug and comes back as a one-line
  ``RuntimeError`` caused by a :class:`ChildTraceback` with the child's
  traceback.

The child writes nothing to disk and prints nothing (its standard error
goes nowhere unless ``FAIRNESS_AUDIT_DEBUG`` is set): everything comes back
through the pipe.  The cap is a Linux feature; elsewhere the read still
runs in a child, without a cap.
"""
from __future__ import annotations

import errno
import gc
import json
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from .errors import InputError
from .limits import PREFIX, _fmt_bytes, limits

# Words of an allocation failure, in a reader's message that quotes it.
_MEMORY_WORDS = ("out of memory", "memoryerror", "unable to allocate", "cannot allocate",
                 "bad_alloc", "malloc of size", "failed to allocate")
_PID = struct.Struct("q")


class OverBudget(InputError):
    """Reading a file needed more memory than its budget."""


class Busy(InputError):
    """The server's memory for files is in use by other sessions: a moment
    later the same file may read (not kept as the file's answer)."""


def over_budget(name: str, budget: int) -> InputError:
    """The error for a file whose reading needs more than ``budget`` bytes."""
    return OverBudget(
        f"Reading {name!r} needs more memory than the limit of {_fmt_bytes(budget)} for "
        "reading one file, so it was stopped. Use a smaller file (fewer rows, only the "
        "columns the audit needs, or CSV or Parquet instead of Excel), or, if the machine "
        f"has the memory, raise the limit with the environment variable {PREFIX}MEMORY "
        f"(for example {PREFIX}MEMORY=16G or {PREFIX}MEMORY=75%).", field="file")


def read_guarded(data, name: str | None = None, columns=None, fmt: str | None = None,
                 budget: int | None = None, *, start: str = "forkserver"):
    """Read a table as :func:`fairness_core.io.read_table` does, in a child
    process that may use at most ``budget`` bytes.

    Parameters
    ----------
    data : bytes or path
        The file's bytes (an upload: they reach the child through a socket
        pair, never a file) or its path (the child reads the file).
    name : str, optional
        The file's name (its extension picks the format); a path's own name
        by default.
    columns, fmt
        As for :func:`~fairness_core.io.read_table`.
    budget : int, optional
        Bytes the reading may use; by default the memory limit
        (``FAIRNESS_AUDIT_MEMORY``, half the machine's memory).
    start : {"forkserver", "fork"}
        Where the child comes from.  "forkserver": the fork server, safe in
        a process with threads (the dashboard's server).  "fork": this
        process forks itself, which saves starting the server in a
        single-threaded program that reads once (the command line).

    Returns
    -------
    (DataFrame, TableInfo)
        Equal to what :func:`~fairness_core.io.read_table` returns.

    Raises
    ------
    InputError
        The reader's own errors, unchanged; or, with ``field="file"``, the
        reading needs more memory than the budget.
    RuntimeError
        The reader failed in another way (a bug).
    """
    if budget is None:
        budget = limits().memory
    path = None
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)  # the child works in the same folder
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f"cannot read a table from {type(data).__name__}")
    shown = name or (Path(path).name if path is not None else "upload")
    request = {"path": path, "name": name, "columns": list(columns) if columns else None,
               "fmt": fmt, "budget": int(budget), "cwd": os.getcwd(),
               "env": {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}}
    if start not in ("forkserver", "fork"):
        raise ValueError(f"start must be 'forkserver' or 'fork', not {start!r}")
    child = _SERVER.fork() if start == "forkserver" else _Child.fork_here()
    reply, answered, code = None, False, None
    try:
        conn = child.conn
        try:
            conn.send(request)
            if path is None:
                conn.send_bytes(data)
        except OSError:
            pass  # the child stopped reading: its answer says why
        try:
            reply = conn.recv()
            if reply[0] == "ok":
                buffers = [_recv_into(conn, size) for size in reply[2]]
                answered = True
                return pickle.loads(reply[1], buffers=buffers)
        except (EOFError, OSError):
            reply = None  # the child died: its exit code says how
        answered = True
    finally:
        # never leave a child behind: one that has answered ends by itself
        code = child.wait(10 if answered else 0)
        if code is None:
            child.kill()
            code = child.wait()
        child.close()
    if reply is None:
        if code is not None and code < 0:
            raise over_budget(shown, budget)
        raise RuntimeError(f"The process reading {shown!r} ended without an answer "
                           f"(exit code {code}).")
    if reply[0] == "input":
        _, message, field, column, value = reply
        raise InputError(message, field=field, column=column, value=value)
    if reply[0] == "memory":
        raise over_budget(shown, budget)
    _, what, trace = reply
    raise RuntimeError(f"Reading {shown!r} failed in the reading process: {what}") \
        from ChildTraceback(trace)


class SharedBudget:
    """The memory a server shares among its sessions' files.

    Each session's read runs under its own cap (:func:`read_guarded`), and a
    table once read stays in the session's memory.  With many sessions, the
    caps and the tables could together exceed the machine even though each
    is within the limit.  A SharedBudget draws every read's cap and every
    held table from one pool of ``total`` bytes (the memory limit), so their
    sum never exceeds it:

    * a read first reserves what a file of its size usually needs
      (``per_byte`` times its bytes, at least ``minimum``, at most the
      limit); a file that needs more is read again with the whole limit,
      once the pool has it;
    * a table read is held (:meth:`hold`, twice its size in memory, for the
      work the audit does on it) until the session lets go of it (the
      object is garbage-collected);
    * a read that cannot get its reservation waits up to ``wait`` seconds,
      then fails with :class:`Busy`, a message that says to try again.
    """

    def __init__(self, total: int, *, per_byte: int = 20, minimum: int = 512 << 20,
                 wait: float = 60.0):
        self.total = int(total)
        self.per_byte = per_byte
        self.minimum = minimum
        self.wait = wait
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        """Bytes reserved by reads under way and held by tables."""
        with self._cond:
            return self._used

    def _take(self, want: int, name: str) -> int:
        deadline = time.monotonic() + self.wait
        with self._cond:
            while self.total - self._used < want:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(
                        f"{name!r} was not read: the dashboard's other sessions are using "
                        f"{_fmt_bytes(self._used)} of the {_fmt_bytes(self.total)} it may use "
                        "for files. Try again in a minute (closing other dashboard tabs frees "
                        f"their tables); whoever runs the dashboard can raise the limit with "
                        f"the environment variable {PREFIX}MEMORY.", field="file")
                self._cond.wait(left)
            self._used += want
            return want

    def release(self, nbytes: int) -> None:
        with self._cond:
            self._used = max(0, self._used - nbytes)
            self._cond.notify_all()

    def hold(self, obj, nbytes: int) -> None:
        """Count ``nbytes`` against the pool for as long as ``obj`` lives."""
        import weakref

        nbytes = int(nbytes)
        with self._cond:
            self._used += nbytes
        weakref.finalize(obj, self.release, nbytes)

    def read(self, data: bytes, name: str):
        """:func:`read_guarded` of an upload with a reservation from the pool;
        the table it returns is held (see the class)."""
        first = min(self.total, max(self.minimum, self.per_byte * len(data)))
        for budget in dict.fromkeys((first, self.total)):
            granted = self._take(budget, name)
            try:
                df, info = read_guarded(data, name, budget=granted)
                break
            except OverBudget:
                if budget == self.total:
                    raise
            finally:
                self.release(granted)
        self.hold(df, 2 * int(df.memory_usage(deep=True).sum()))
        return df, info


class ChildTraceback(Exception):
    """The traceback of an exception in a reading child, as text (the cause
    of the RuntimeError that reports it)."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0] if self.args else "")


class _Child:
    """One reading child: the connection to it and its exit code."""

    def __init__(self, pid: int, conn: Connection, status: int | None = None):
        self.pid = pid
        self.conn = conn
        self.status = status  # the server's pipe for the exit code, or None: our own child
        self.code = None

    @classmethod
    def fork_here(cls) -> "_Child":
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (measured through its answers)
            ours.close()
            _run_child(theirs.detach())
        theirs.close()
        return cls(pid, Connection(ours.detach()))

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (negative: the signal that ended it); None when the
        child is still running after ``timeout`` seconds."""
        if self.code is not None:
            return self.code
        if self.status is not None:
            ready, _, _ = select.select([self.status], [], [], timeout)
            if not ready:
                return None
            raw = _read_exactly(self.status, _PID.size)
            # no code: the server died; the child is not its child any more
            self.code = _PID.unpack(raw)[0] if raw else 255
            return self.code
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def kill(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.conn.close()
        if self.status is not None:
            os.close(self.status)
            self.status = None


class _ForkServer:
    """The process that forks the reading children (see :func:`serve`),
    started on first use and again if it has died."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = None
        self.control = None

    def _start(self) -> None:
        ours, theirs = socket.socketpair()
        path = [p or os.getcwd() for p in sys.path]
        code = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
                "from fairness_core.guard import serve; serve(int(sys.argv[2]))")
        env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}
        self.proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(path),
                                      str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                     env=env, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        theirs.close()
        self.control = ours

    def _stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def fork(self) -> _Child:
        with self.lock:
            for attempt in (1, 2):
                if self.proc is None or self.proc.poll() is not None:
                    self._stop()
                    self._start()
                ours, theirs = socket.socketpair()
                status_r, status_w = os.pipe()
                try:
                    socket.send_fds(self.control, [b"r"], [theirs.fileno(), status_w])
                    raw = _read_exactly(status_r, _PID.size)
                except OSError:
                    raw = b""
                finally:
                    theirs.close()
                    os.close(status_w)
                if raw:
                    return _Child(_PID.unpack(raw)[0], Connection(ours.detach()), status_r)
                ours.close()
                os.close(status_r)
                self._stop()  # it died: start another
            raise RuntimeError("The process that reads files could not be started.")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None


_SERVER = _ForkServer()


def _after_fork_in_child() -> None:
    """A forked process does not share its parent's fork server: it starts
    its own if it reads, and does not keep the parent's alive."""
    global _SERVER
    inherited, _SERVER = _SERVER, _ForkServer()
    if inherited.control is not None:
        inherited.control.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _read_exactly(fd: int, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = os.read(fd, size - len(out))
        if not chunk:
            return b""
        out += chunk
    return out


def serve(fd: int) -> None:
    """The fork server's loop: fork a reading child for each request on the
    control socket ``fd`` (its connection and a pipe for its pid and exit
    code come with the request); end when the parent closes the socket."""
    import selectors

    control = socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
    gc.freeze()  # loaded objects stay out of the children's collections: pages stay shared
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    pending: dict = {}  # pid -> pipe for its exit code
    sel = selectors.DefaultSelector()
    sel.register(control, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is control:
                try:
                    msg, fds, _, _ = socket.recv_fds(control, 16, 2)
                except OSError:
                    msg, fds = b"", []
                if not msg or len(fds) != 2:
                    for f in fds:
                        os.close(f)
                    if not msg:
                        return  # the parent has gone
                    continue
                conn_fd, status_w = fds
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    sel.close()
                    for f in (fd, wake_r, wake_w, status_w, *pending.values()):
                        os.close(f)
                    _run_child(conn_fd)
                os.close(conn_fd)
                os.write(status_w, _PID.pack(pid))
                pending[pid] = status_w
            else:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                while pending:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if not pid:
                        break
                    status_w = pending.pop(pid, None)
                    if status_w is not None:
                        try:
                            os.write(status_w, _PID.pack(os.waitstatus_to_exitcode(status)))
                        except OSError:
                            pass
                        os.close(status_w)


def _run_child(fd: int) -> None:
    """The body of a reading child; it never returns."""
    code = 0
    try:
        _child(Connection(fd))
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _recv_into(conn, size: int) -> bytearray:
    """``size`` raw bytes from the connection, read into one new buffer."""
    buf = bytearray(size)
    view = memoryview(buf)
    fd = conn.fileno()
    got = 0
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError
        got += n
    return buf


def _send_raw(conn, view: memoryview) -> None:
    fd = conn.fileno()
    while len(view):
        n = os.write(fd, view)
        view = view[n:]


# --------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------
def _status(key: bytes) -> int:
    """A size from /proc/self/status in bytes (0 where there is none)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _Cap:
    """The child's cap on its data size, and whether it came close to it."""

    def __init__(self, budget: int):
        import resource

        self.resource = resource
        self.kind = getattr(resource, "RLIMIT_DATA", None)
        self.budget = budget
        start = _status(b"VmData:")
        # what is not data (code, stacks, mapped files), to read the data's
        # peak from the peak of the whole address space
        self.other = _status(b"VmPeak:") - start
        self.limit = None
        if self.kind is None or not start:
            return
        _, self.hard = resource.getrlimit(self.kind)
        limit = start + budget
        if self.hard != resource.RLIM_INFINITY:
            limit = min(limit, self.hard)
        resource.setrlimit(self.kind, (limit, self.hard))
        self.limit = limit

    def lift(self) -> None:
        """Make room to answer after a failure (an answer is small)."""
        if self.limit is not None:
            self.resource.setrlimit(self.kind, (self.hard, self.hard))

    def came_close(self) -> bool:
        """Whether the data came within a few per cent of the cap: a failed
        small allocation can surface as another error."""
        if self.limit is None:
            return False
        peak = _status(b"VmPeak:") - self.other
        return peak >= self.limit - max(64 << 20, self.budget // 20)


def _memory_error(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _answer(exc: BaseException, cap: _Cap | None) -> tuple:
    """What to tell the parent about an exception in the child."""
    if _memory_error(exc):
        return ("memory",)
    close = cap is not None and cap.came_close()
    if isinstance(exc, InputError):
        if close and any(w in exc.message.lower() for w in _MEMORY_WORDS):
            return ("memory",)
        value = exc.value
        try:
            pickle.dumps(value)
        except Exception:
            value = None
        return ("input", exc.message, exc.field, exc.column, value)
    if close:
        return ("memory",)
    import traceback

    return ("error", f"{type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc)))


def _child(conn) -> None:
    """Read one table under the cap and send it back, or what went wrong."""
    cap = None
    try:
        request = conn.recv()
        # the parent's limits, as they are now
        for key in [k for k in os.environ if k.startswith(PREFIX)]:
            del os.environ[key]
        os.environ.update(request["env"])
        try:
            os.chdir(request["cwd"])  # where a relative path is
        except OSError:
            pass
        if not os.environ.get(PREFIX + "DEBUG"):
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 2)
            os.close(quiet)
        _system_allocator()
        from .io import read_table

        cap = _Cap(request["budget"])
        source = request["path"] if request["path"] is not None else conn.recv_bytes()
        table = read_table(source, name=request["name"], columns=request["columns"],
                           fmt=request["fmt"])
        del source
        buffers: list = []
        head = pickle.dumps(table, protocol=5, buffer_callback=buffers.append)
        views = [b.raw() for b in buffers]
        conn.send(("ok", head, [v.nbytes for v in views]))
        for view in views:
            _send_raw(conn, view)
    except BaseException as exc:  # everything goes back to the parent
        if cap is not None:
            cap.lift()
        try:
            reply = _answer(exc, cap)
        except BaseException:
            reply = ("memory",) if isinstance(exc, MemoryError) else \
                ("error", type(exc).__name__, "")
        try:
            conn.send(reply)
        except BaseException:
            pass
    finally:
        conn.close()


def _system_allocator() -> None:
    """Arrow's allocations from Python go through the C library's malloc."""
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    except Exception:  # pragma: no cover - pyarrow is a dependency
        pass


def _parquet_bytes(df) -> bytes:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def warm_up() -> None:
    """Read a tiny table of every kind, so that everything the readers load
    on first use is loaded (in the fork server, before any child is capped:
    under the cap, loading a library can fail like any allocation)."""
    import pandas as pd

    from .io import read_table

    small = pd.DataFrame({"y": [1, 0, 1], "group": ["a", "b", "a"], "score": [0.5, 0.25, 1.0]})
    samples = [(small.to_csv(index=False).encode(), "warm.csv"),
               (small.to_csv(index=False, sep="\t").encode(), "warm.tsv"),
               ("y;name\n1;caf\u00e9\n0;na\u00efve\n".encode("cp1252"), "warm.csv")]
    from .exports import to_xlsx_bytes  # in memory: nothing written to a temporary file

    for writer, name in ((lambda: _parquet_bytes(small), "warm.parquet"),
                         (lambda: to_xlsx_bytes({"warm": small}), "warm.xlsx")):
        try:
            samples.append((writer(), name))
        except Exception:  # a missing writer only makes the first real read slower
            pass
    for data, name in samples:
        try:
            buffers: list = []
            head = pickle.dumps(read_table(data, name=name), protocol=5,
                                buffer_callback=buffers.append)
            pickle.loads(head, buffers=[bytearray(b.raw()) for b in buffers])
        except Exception:
            pass
