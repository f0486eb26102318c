"""What kind of audit a table calls for: yes/no decisions, one of several
classes, or a number.

``binary``
    The true outcome has two values (or a set of values is chosen as the
    positive class), and each model gives a yes/no decision or a score.
``multiclass``
    The true outcome is one of 3 to :data:`MAX_CLASSES` classes (a triage
    level, a product tier), and each model predicts one of them.
``regression``
    The true outcome is a number (a credit limit, a price, a length of
    stay), and each model predicts a number.

:func:`infer_task` guesses the task from the label's values (and the
predictions'), and says why, so the user can overrule it.  It only needs a
sample of each column's distinct values (:data:`MAX_CLASSES` + 1 of them
decide), so an engine can answer it with a ``SELECT DISTINCT ... LIMIT``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The tasks an audit can be, in the order the CLI and the dashboard list them.
TASKS = ("binary", "multiclass", "regression")

#: A label with at most this many values is a set of classes; a numeric
#: label with more is a number.
MAX_CLASSES = 20

#: Plain names of the tasks, for sentences.
TASK_NAMES = {"binary": "yes/no decisions", "multiclass": "several classes",
              "regression": "a numeric outcome"}


@dataclass(frozen=True)
class TaskGuess:
    """The inferred task and the reason, in a sentence fragment that
    follows "inferred: " (e.g. "the label 'limit' is a number with 412
    values")."""

    task: str
    reason: str


def _numeric(values: pd.Series) -> bool:
    return (pd.api.types.is_numeric_dtype(values)
            and not pd.api.types.is_bool_dtype(values))


def _whole_numbers(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def distinct_values(values: pd.Series, limit: int = MAX_CLASSES + 1) -> pd.Series:
    """Up to ``limit`` distinct non-missing values of a column (enough for
    :func:`infer_task`)."""
    return pd.Series(pd.unique(values.dropna()), dtype=values.dtype).head(limit)


def infer_task(label: pd.Series | None, predictions=(), positive=None) -> TaskGuess:
    """Guess the audit's task from the columns' values.

    Parameters
    ----------
    label : Series or None
        The true outcome's values (all of them, or a sample of at least
        :data:`MAX_CLASSES` + 1 distinct ones); None without a label.
    predictions : sequence of Series
        Each decision column's values (or such a sample).
    positive : optional
        The label values chosen as the positive class: when given, the
        audit is about yes/no decisions, whatever the label holds.

    Returns
    -------
    TaskGuess
        ``multiclass`` for a label with 3 to :data:`MAX_CLASSES` values,
        unless it is numeric and a prediction holds numbers that are not
        whole or has more than :data:`MAX_CLASSES` values (then
        ``regression``); ``regression`` for a numeric label with more
        values; ``binary`` otherwise (two values, a chosen positive class,
        no label, or many values that are not numbers, which then need a
        positive class).
    """
    if label is None:
        return TaskGuess("binary", "there is no label: the decisions are audited alone")
    if positive is not None and not (isinstance(positive, (list, tuple)) and not positive):
        return TaskGuess("binary", "the label's positive values are chosen")
    name = str(label.name) if label.name is not None else "label"
    values = distinct_values(label)
    k = len(values)
    if k <= 2:
        return TaskGuess("binary", f"the label {name!r} has {k} value{'s' * (k != 1)}")
    many = f"more than {MAX_CLASSES}" if k > MAX_CLASSES else f"{k}"
    if _numeric(label):
        if k > MAX_CLASSES:
            return TaskGuess("regression", f"the label {name!r} is a number with {many} "
                                           "values")
        for p in predictions:
            if p is None or not _numeric(p):
                continue
            pv = distinct_values(p)
            x = pv.to_numpy(dtype=float)
            if len(pv) > MAX_CLASSES or not _whole_numbers(x):
                why = ("numbers that are not whole" if not _whole_numbers(x)
                       else f"more than {MAX_CLASSES} values")
                return TaskGuess("regression", f"the label {name!r} is a number and the "
                                               f"prediction {str(p.name)!r} holds {why}")
        return TaskGuess("multiclass", f"the label {name!r} has {k} values")
    if k > MAX_CLASSES:
        return TaskGuess("binary", f"the label {name!r} has {many} values that are not "
                                   "numbers: choose the values that count as positive")
    return TaskGuess("multiclass", f"the label {name!r} has {k} values")
