"""Power: how many rows a group would need for a tolerance-sized gap to be
detected with the chosen power at the chosen alpha."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .tests import Proportions


def rows_for_power(p_ref, d_ref, p_alt, alpha: float, power: float):
    """Denominator counts needed to detect ``p_alt`` vs ``p_ref``.

    The reference keeps its ``d_ref``; returns ``(d_group, d_ref_needed)``:
    the group's denominator count needed for a two-sided test at ``alpha``
    with the given ``power`` (normal approximation), and, when the reference
    itself is too small for that, equal counts for both (then
    ``d_ref_needed`` > ``d_ref``).  NaN where there is no gap to detect.
    """
    from scipy import stats as st
    p_ref, d_ref, p_alt = (np.asarray(a, dtype=float) for a in (p_ref, d_ref, p_alt))
    zz = (st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) ** 2
    delta2 = (p_alt - p_ref) ** 2
    v_alt, v_ref = p_alt * (1 - p_alt), p_ref * (1 - p_ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        room = delta2 / zz - np.where(d_ref > 0, v_ref / d_ref, np.inf)
        d_group = np.where(room > 0, v_alt / room, np.nan)
        equal = zz * (v_alt + v_ref) / delta2
    both = ~(room > 0)
    d_group = np.where(both, equal, d_group)
    d_ref_needed = np.where(both, equal, d_ref)
    bad = (delta2 == 0) | np.isnan(delta2)
    return np.where(bad, np.nan, np.ceil(d_group)), np.where(bad, np.nan, np.ceil(d_ref_needed))


def rows_needed(disp: pd.DataFrame, counts: Proportions, significant: np.ndarray,
                spec) -> dict[str, np.ndarray]:
    """The rows a group would need, where its gap fails the tolerance
    without being significant or cannot be judged.

    A gap the size of the tolerance (from the reference's value towards
    the group's) should be detected at ``spec.alpha`` with ``spec.power``.
    Known for the proportions of ``counts`` whose reference value is above
    0; the denominator counts needed are scaled to rows by the group's (or,
    if it has none, the reference's) share of rows in the denominator.

    Returns
    -------
    dict
        ``rows_needed`` (at least ``spec.min_group_size``),
        ``more_rows_needed`` (beyond the group's rows) and
        ``reference_rows_needed`` (at least the reference's rows), NaN
        where not wanted or not known.
    """
    verdict = disp["verdict"].to_numpy()
    want = ((verdict == "fail") & ~significant) | (verdict == "insufficient")
    refv = disp["reference_value"].to_numpy(dtype=float)
    val = disp["value"].to_numpy(dtype=float)
    n_g, n_r = disp["n"].to_numpy(), disp["reference_n"].to_numpy()
    d1, d2 = counts.n1, counts.n2
    tol = spec.tolerance
    go_up = (val > refv) & (refv / tol <= 1)
    p_alt = np.where(go_up, np.minimum(refv / tol, 1.0), refv * tol)
    # denominators: for rates known from the counts; share of the group's rows
    with np.errstate(invalid="ignore", divide="ignore"):
        share_g = np.where((d1 > 0) & (n_g > 0), d1 / n_g, np.nan)
        share_r = np.where((d2 > 0) & (n_r > 0), d2 / n_r, np.nan)
    share_g = np.where(np.isnan(share_g), share_r, share_g)
    need_g, need_r = rows_for_power(refv, d2, p_alt, spec.alpha, spec.power)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = np.ceil(need_g / share_g)
        ref_rows = np.ceil(need_r / share_r)
    rows = np.maximum(rows, spec.min_group_size)
    usable = want & counts.known & (refv > 0) & np.isfinite(rows)
    return {"rows_needed": np.where(usable, rows, np.nan),
            "more_rows_needed": np.where(usable, np.maximum(rows - n_g, 0), np.nan),
            "reference_rows_needed": np.where(usable, np.maximum(ref_rows, n_r), np.nan)}
