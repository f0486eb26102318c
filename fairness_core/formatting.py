"""How numbers are written for people: one formatter for findings, reports,
charts, the terminal and the dashboard.

Undefined numbers (NaN, None) read "undefined", never 0; unbounded ratios
read "unbounded".
"""
from __future__ import annotations

import math

UNDEFINED = "undefined"
UNBOUNDED = "unbounded"


def _missing(x) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def pct(x, digits: int = 1) -> str:
    """A share as a percentage: ``0.4482`` -> ``"44.8%"``."""
    if _missing(x):
        return UNDEFINED
    return f"{100 * float(x):.{digits}f}%"


#: From this size on, :func:`num` writes a number with an exponent: fixed
#: decimals of 1e300 would be 300 digits long.
LARGE = 1e15


def num(x, digits: int = 3) -> str:
    """A plain number with fixed decimals (ratios, differences, scores);
    with an exponent from :data:`LARGE` on (``2.994e+303``)."""
    if _missing(x):
        return UNDEFINED
    x = float(x)
    if math.isinf(x):
        return UNBOUNDED
    if abs(x) >= LARGE:
        return f"{x:.{digits}e}"
    return f"{x:.{digits}f}"


def bound_shows(bound, digits: int = 3) -> bool:
    """An error bound that changes a number written with ``digits`` decimals."""
    return not _missing(bound) and float(bound) >= 0.5 * 10.0 ** -digits


def auc(x, bound=None, digits: int = 3) -> str:
    """An AUC, with its error bound when the bound shows at ``digits``
    decimals (scores counted in bins too coarse for them): ``0.702``,
    ``0.501 ± 0.250``."""
    text = num(x, digits)
    if not _missing(x) and bound_shows(bound, digits):
        text += f" ± {num(bound, digits)}"
    return text


def count(n) -> str:
    """A whole number with thousands separators."""
    if _missing(n):
        return UNDEFINED
    return f"{int(n):,}"


def about(n) -> str:
    """A number of rows, rounded the way people say it: ``about 1,200``."""
    n = int(n)
    if n >= 1000:
        return f"about {round(n, -2):,}"
    if n >= 100:
        return f"about {round(n, -1):,}"
    return f"{n:,}"


def value(x, metric: str) -> str:
    """A metric's value in its own unit (see :meth:`Metric.format`)."""
    from .metrics import REGISTRY
    return REGISTRY[metric].format(x)


def interval(lo, hi, metric: str | None = None) -> str:
    """``"40.1% to 49.5%"``, or ``"no interval"``."""
    if _missing(lo) or _missing(hi):
        return "no interval"
    f = (lambda v: value(v, metric)) if metric else num
    return f"{f(lo)} to {f(hi)}"


def with_interval(x, lo, hi, metric: str | None = None) -> str:
    """``"44.8% (40.1% to 49.5%)"``."""
    f = (lambda v: value(v, metric)) if metric else num
    if _missing(lo) or _missing(hi):
        return f(x)
    return f"{f(x)} ({interval(lo, hi, metric)})"


def level(confidence: float) -> str:
    """``0.95`` -> ``"95%"``; ``0.995`` -> ``"99.5%"``."""
    return f"{100 * float(confidence):.4g}%"


def p_value(p) -> str:
    if _missing(p):
        return UNDEFINED
    return f"{p:.2g}" if p >= 1e-4 else "< 0.0001"


#: Characters that reorder or hide text on a terminal or a page: the
#: bidirectional embeddings, overrides and isolates, and zero-width ones.
INVISIBLE = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0xFEFF, 0x061C,
     *range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def visible(text) -> str:
    """Text safe to print: bidirectional overrides, zero-width characters and
    control characters become a visible escape such as ``<U+202E>``, so a
    printed line can neither be reordered nor hide a character."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if o in INVISIBLE or (o < 32 and ch not in "\t") or 0x7F <= o < 0xA0:
            out.append(f"<U+{o:04X}>")
        else:
            out.append(ch)
    return "".join(out)


def short(text, limit: int | None = None) -> str:
    """A name for terminal and page text: made :func:`visible`, and cut to
    ``limit`` characters (80 by default) with a note of the full length.
    JSON and exported tables keep the name whole."""
    from .limits import DISPLAY_CHARS
    limit = limit or DISPLAY_CHARS
    text = visible(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}… ({len(text):,} characters)"


def visible_text(text, names=(), limit: int | None = None) -> str:
    """A sentence for terminal and page text (a finding, a warning, an error
    message): made :func:`visible`, with each of ``names`` that it holds, as
    it is or as Python quotes it (``'a\\u202eb'``), written as :func:`short`
    writes it (cut when longer than ``limit`` characters, 80 by default)."""
    from .limits import DISPLAY_CHARS
    limit = limit or DISPLAY_CHARS
    text = str(text)
    forms = {}
    for name in {str(n) for n in names if n is not None}:
        quoted = repr(name)[1:-1]
        if len(name) > limit or quoted != name:
            forms[name] = forms[quoted] = short(name, limit)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, forms[form])
    return visible(text)
