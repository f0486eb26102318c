"""The tolerance band: which ratio to the reference passes, how far outside
it a gap lies, and how to say so.

One object owns the band, so that every verdict, finding, chart, report
and terminal line describes it the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


@dataclass(frozen=True)
class Tolerance:
    """A ratio to the reference inside ``[ratio, 1 / ratio]`` passes.

    Parameters
    ----------
    ratio : float in (0, 1]
        0.8 is the four-fifths rule (0.8 to 1.25 passes).
    """

    ratio: float = 0.8

    @property
    def low(self) -> float:
        return float(self.ratio)

    @property
    def high(self) -> float:
        return 1.0 / float(self.ratio)

    @property
    def four_fifths(self) -> bool:
        return abs(self.ratio - 0.8) < 1e-12

    def contains(self, ratio):
        """True where a ratio lies inside the band (vectorised; NaN is outside)."""
        r = np.asarray(ratio, dtype=float)
        with np.errstate(invalid="ignore"):
            out = (r >= self.low - _EPS) & (r <= self.high + _EPS)
        return bool(out) if out.ndim == 0 else out

    def far_outside(self, ratio) -> bool:
        """Beyond the band's width again (e.g. below 0.64 or above 1.5625 for
        0.8): a 0, unbounded or undefined ratio counts as far."""
        if ratio is None or math.isnan(ratio) or ratio == 0 or math.isinf(ratio):
            return True
        return abs(math.log(ratio)) >= 2 * abs(math.log(self.ratio)) - _EPS

    def severity(self, verdict: str, significant: bool, ratio: float) -> str:
        """``high`` (fails, significant, far outside), ``medium`` (fails and
        significant), ``low`` (fails, may be noise) or ``info``."""
        if verdict != "fail":
            return "info"
        if not significant:
            return "low"
        return "high" if self.far_outside(ratio) else "medium"

    def band(self, unit: str = "") -> str:
        """``"0.8 to 1.25"`` (``unit="x"``: ``"0.8x to 1.25x"``)."""
        return f"{self.low:g}{unit} to {self.high:.3g}{unit}"

    def interval(self) -> str:
        """``"[0.8, 1.25]"``."""
        return f"[{self.low:g}, {self.high:.3g}]"

    def describe(self) -> str:
        """What the band means, in one sentence."""
        rule = " (the four-fifths rule)" if self.four_fifths else ""
        return (f"A group passes when its rate is between {self.band()} times the reference "
                f"group's{rule}.")

    def fail_sentence(self) -> str:
        """What a failing gap breaks, in one sentence."""
        if self.four_fifths:
            return "This fails the four-fifths rule (a ratio between 0.8 and 1.25 passes)."
        return f"This is outside the tolerance band ({self.band()})."
