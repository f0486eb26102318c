"""Whether the server runs with the dashboard's safe settings, and whether it
may take uploads.

The safe settings are in ``app/.streamlit/config.toml``, next to the
dashboard's script: Streamlit (1.46 and newer) reads that file wherever
``streamlit run .../app/main.py`` is started from, after
``~/.streamlit/config.toml`` and ``./.streamlit/config.toml``, so neither can
loosen it.  Only command-line flags and ``STREAMLIT_*`` environment variables
override it: that is how an operator chooses otherwise on purpose
(``./run.sh --server.address 0.0.0.0`` shares the dashboard on a network).

The script runs only when a browser connects: by then the server has bound
its socket, printed its address (and, without ``browser.serverAddress``,
looked up its public address online) and sent the first session its
settings.  So, on every run:

- a setting that took effect at start (where the server listens, usage
  statistics, the address look-up, headless, the file watcher) that is not
  safe and that nobody chose turns uploads off, with a message that says
  how to start the dashboard safely;
- a setting that is read again later (error details, the toolbar, the upload
  size; usage statistics and the file watcher for the next sessions) is set
  back to its safe value when nobody chose otherwise.

Inside ``streamlit.testing`` (no server) nothing is checked.
"""
from __future__ import annotations

import os
from pathlib import Path

#: This dashboard's own configuration file (its values are the operator's).
APP_CONFIG = Path(__file__).resolve().parent / ".streamlit" / "config.toml"
#: ``where_defined`` of an option set by a command-line flag or environment
#: variable (Streamlit's wording), and of one set back here.
BY_FLAG = ("command-line argument or environment variable", "environment variable")
SET_HERE = "the dashboard's safety check (app/safety.py)"
SAFE_UPLOAD_MB = 200

#: Settings that took effect when the server started: key -> what is wrong.
AT_START = {
    "server.address": "it listens on every network interface",
    "browser.gatherUsageStats": "it collects usage statistics",
    "browser.serverAddress": "it looks up its public address online",
    "server.headless": "it is not headless (it may open a browser)",
    "server.fileWatcherType": "it watches its files for changes",
}
#: Settings read again later, set back to these values when nobody chose them.
AT_RUN = {"client.showErrorDetails": "none", "client.toolbarMode": "minimal",
          "server.maxUploadSize": SAFE_UPLOAD_MB, "browser.gatherUsageStats": False,
          "server.fileWatcherType": "none"}


def _loopback(address) -> bool:
    a = str(address or "").strip().strip("[]").lower()
    return a == "localhost" or a.startswith("127.") or a == "::1" or a.startswith("unix://")


def is_safe(key: str, value) -> bool:
    """Whether ``value`` of the option ``key`` is one of the safe ones."""
    if key == "server.address":
        return _loopback(value)
    if key == "browser.serverAddress":
        return bool(value)  # any address printed instead of looking one up
    if key == "browser.gatherUsageStats":
        return value is False
    if key == "server.headless":
        return value is True
    if key == "server.fileWatcherType":
        return value == "none"
    if key == "client.showErrorDetails":
        return value in ("none", False)
    if key == "client.toolbarMode":
        return value in ("minimal", "viewer")
    if key == "server.maxUploadSize":
        return isinstance(value, (int, float)) and value <= SAFE_UPLOAD_MB
    raise KeyError(key)


def chosen(where_defined: str) -> bool:
    """Whether an option's value was chosen by the operator: a flag, an
    environment variable, or this dashboard's own configuration file."""
    if where_defined in BY_FLAG:
        return True
    try:
        return os.path.samefile(where_defined, APP_CONFIG)
    except (OSError, TypeError, ValueError):
        return False


def assess(options: dict) -> tuple[list[str], dict]:
    """``options``: key -> (value, where_defined).  Returns the problems that
    turn uploads off (settings that took effect at start) and the settings
    to set back (key -> safe value)."""
    problems, fixes = [], {}
    for key, (value, where) in options.items():
        if where == SET_HERE:  # set back on an earlier run: it started unsafe
            if key in AT_START:
                problems.append(AT_START[key])
            continue
        if is_safe(key, value) or chosen(where):
            continue
        if key in AT_START:
            problems.append(AT_START[key] if key != "server.address" or not value
                            or value in ("0.0.0.0", "::") else f"it listens on {value}")
        if key in AT_RUN:
            fixes[key] = AT_RUN[key]
    return problems, fixes


def serving() -> bool:
    """Whether this script runs in a real Streamlit server (not in
    ``streamlit.testing``, whose runtime is a stand-in)."""
    from streamlit.runtime import Runtime

    return Runtime.exists() and issubclass(type(Runtime.instance()), Runtime)


def _current() -> dict:
    from streamlit import config

    return {k: (config.get_option(k), config.get_where_defined(k))
            for k in dict.fromkeys([*AT_START, *AT_RUN])}


def _set(key: str, value) -> None:
    from streamlit import config

    config.set_option(key, value, where_defined=SET_HERE)


def keep_uploads_in_memory() -> int | None:
    """Make the server keep every upload in memory, never on disk.

    Streamlit's server (Starlette) parses an upload with Starlette's
    multipart parser, which writes a file part larger than its
    ``spool_max_size`` (1 MB by default) to a temporary file on disk before
    Streamlit reads it into memory.  Uploaded data must never touch the
    disk, so the threshold is raised above the largest upload the server
    accepts (``server.maxUploadSize``) plus the request's framing.  Returns
    the threshold in bytes, or None when the server does not parse uploads
    with Starlette (then there is nothing to change)."""
    try:
        from starlette.formparsers import MultiPartParser
    except ImportError:  # pragma: no cover - a server without Starlette
        return None
    from streamlit import config

    limit_mb = config.get_option("server.maxUploadSize") or SAFE_UPLOAD_MB
    needed = int(float(limit_mb) * 1024 * 1024) + 1024 * 1024  # framing margin
    if MultiPartParser.spool_max_size < needed:
        MultiPartParser.spool_max_size = needed
    return MultiPartParser.spool_max_size


def check() -> str | None:
    """Set back what can still be set; return why uploads are off (a
    message for the page), or None when the server runs safely.  Uploads
    are kept in memory (:func:`keep_uploads_in_memory`)."""
    if not serving():
        return None
    problems, fixes = assess(_current())
    for key, value in fixes.items():
        _set(key, value)
    keep_uploads_in_memory()
    if not problems:
        return None
    return ("Uploads are turned off: this dashboard was started without its safe settings ("
            + "; ".join(dict.fromkeys(problems)) + "). Start it with ./run.sh, or with "
            "streamlit run path/to/app/main.py from any folder (Streamlit 1.46 or newer reads "
            "app/.streamlit/config.toml). To share it on a network on purpose, add "
            "--server.address 0.0.0.0.")
