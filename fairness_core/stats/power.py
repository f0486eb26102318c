"""Power: how many rows a group would need for a tolerance-sized gap to be
detected with the chosen power at the chosen alpha."""
from __future__ import annotations

import numpy as np


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
