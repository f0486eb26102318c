"""Documented limits, checked before any large allocation.

A small file can claim to be huge (a workbook whose sheet claims every cell
of Excel's grid, a 300 MB string packed into a few hundred KB) and a flag
can ask for more work than a machine holds (10^8 bootstrap replicates).
Each limit below is checked *before* the work it bounds, and going over it
is an :class:`InputError` that names the limit and how to raise it.

Every limit can be changed with an environment variable, which holds for
the command line and the dashboard alike::

    FAIRNESS_AUDIT_MAX_XLSX_CELLS=200000000 fairness-audit big.xlsx ...

==========================  =========================================  ==============
Variable                    What it bounds                             Default
==========================  =========================================  ==============
``..._MEMORY``              memory for one file's reading and audit    half the memory
                            (bytes with K/M/G suffix, or ``NN%``)      of the machine
``..._MAX_COLUMNS``         columns in a file                          10,000
``..._MAX_XLSX_CELLS``      cells a workbook's sheet may span          50,000,000
``..._MAX_CELL_CHARS``      characters in one cell or column name      32,767 (Excel's)
``..._MAX_GROUPS``          groups per attribute (``--max-groups``     10,000
                            cannot go above it)
``..._MAX_BOOTSTRAP``       bootstrap replicates                       100,000
==========================  =========================================  ==============

(``...`` stands for ``FAIRNESS_AUDIT``.)
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import InputError

PREFIX = "FAIRNESS_AUDIT_"
#: Names longer than this are shortened in terminal and page text (never in
#: JSON or the exported tables).
DISPLAY_CHARS = 80


def total_memory() -> int:
    """Physical memory of the machine in bytes (8 GiB when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 8 << 30


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)


def parse_size(text: str, total: int | None = None) -> int:
    """``"4G"`` -> bytes; ``"50%"`` -> that share of the machine's memory."""
    text = str(text).strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError:
            share = -1
        if not 0 < share <= 1:
            raise ValueError(text)
        return int(share * (total if total is not None else total_memory()))
    m = _SIZE.match(text)
    if not m:
        raise ValueError(text)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value <= 0:
        raise ValueError(text)
    return value


def _fmt_bytes(n: float) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


@dataclass(frozen=True)
class Limits:
    memory: int
    max_columns: int = 10_000
    max_xlsx_cells: int = 50_000_000
    max_cell_chars: int = 32_767
    max_groups: int = 10_000
    max_bootstrap: int = 100_000

    def check(self, what: str, value: int, limit_name: str, *, fix: str = "",
              field: str | None = None) -> None:
        """Raise an InputError when ``value`` is over the limit ``limit_name``."""
        limit = getattr(self, limit_name)
        if value <= limit:
            return
        var = PREFIX + limit_name.upper()
        if limit_name == "memory":
            said = f"{what} needs about {_fmt_bytes(value)}, over the memory limit of " \
                   f"{_fmt_bytes(limit)}"
        else:
            said = f"{what} is {value:,}, over the limit of {limit:,}"
        raise InputError(f"{said}. {fix + ' ' if fix else ''}If the machine can take it, "
                         f"raise the limit with the environment variable {var}.",
                         field=field)

    def check_memory(self, what: str, need_bytes: float, *, fix: str = "",
                     field: str | None = None) -> None:
        self.check(what, int(need_bytes), "memory", fix=fix, field=field)


def limits() -> Limits:
    """The limits in force (read from the environment on every call)."""
    values: dict = {}
    for name, default in (("memory", None), ("max_columns", 10_000),
                          ("max_xlsx_cells", 50_000_000), ("max_cell_chars", 32_767),
                          ("max_groups", 10_000), ("max_bootstrap", 100_000)):
        raw = os.environ.get(PREFIX + name.upper())
        if raw is None or not raw.strip():
            values[name] = total_memory() // 2 if name == "memory" else default
            continue
        try:
            values[name] = parse_size(raw) if name == "memory" else int(raw.replace("_", ""))
            if values[name] <= 0:
                raise ValueError(raw)
        except ValueError:
            kind = "a size such as 4G or 50%" if name == "memory" else "a whole number above 0"
            raise InputError(f"The environment variable {PREFIX + name.upper()} is {raw!r}; "
                             f"it must be {kind}.", field="limits") from None
    return Limits(**values)
