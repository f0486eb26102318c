"""Honest uncertainty from the count table: intervals, tests, multiple-
comparison control and the rows a group would need.

Everything here reads counts, never rows:

- **Bootstrap on counts** (:mod:`.bootstrap`).  Resampling the N rows with
  replacement gives each (group combination x cell) a multinomial count
  with the observed shares as probabilities.  Drawing those counts directly
  is the same bootstrap at a cost that does not depend on N.  With sample
  weights each resampled cell keeps its mean weight per row.
- **Wilson intervals** (:mod:`.intervals`; scipy.stats.binomtest's
  ``proportion_ci``, vectorised here and tested against it) for a single
  unweighted proportion such as a group's selection rate; bootstrap
  percentile intervals for everything else (balanced accuracy, F1,
  weighted rates, differences, ratios and the between-group summaries).
- **Tests** per disparity (:mod:`.tests`): a pooled two-proportion z-test,
  or Fisher's exact test when an expected cell count is below 5; for
  balanced accuracy, F1 and weighted data a Wald test with the bootstrap
  standard error.
- **Multiple comparisons** across every test of one audit: Benjamini-
  Hochberg (default) or Holm.
- **Power** (:mod:`.power`): how many rows a group would need for a
  tolerance-sized gap to be detected with the chosen power at the chosen
  alpha.

scipy is imported by the functions that need it, not by this package.
"""
from __future__ import annotations

from .bootstrap import (Uncertainty, aggregate, bootstrap_cells, quantiles, replicate_store,
                        row_quantiles)
from .intervals import hall_interval, wilson_interval, z_value
from .power import rows_for_power, rows_needed
from .tests import (FINISHED_COLUMNS, MIN_EXPECTED, Proportions, adjust_p, disparity_tests,
                    finish_tests, fisher_p, min_expected, two_proportion_p, wald_p, welch)

__all__ = ["FINISHED_COLUMNS", "MIN_EXPECTED", "Proportions", "Uncertainty", "adjust_p",
           "aggregate", "bootstrap_cells", "disparity_tests", "finish_tests", "fisher_p",
           "hall_interval", "min_expected", "quantiles", "replicate_store", "row_quantiles",
           "rows_for_power", "rows_needed", "two_proportion_p", "wald_p", "welch", "wilson_interval", "z_value"]
