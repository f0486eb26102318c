"""fairness_core: audit models' decisions for group fairness: yes/no
decisions, one of several classes, or a number.

The whole audit in one call::

    from fairness_core import AuditSpec, audit
    result = audit("predictions.csv", AuditSpec(label="y", predictions=["pred"],
                                                sensitive=["sex", "race"]))
    result.summary, result.disparities, result.to_json()

``AuditSpec(task="multiclass" | "regression", ...)`` audits several classes
or a numeric outcome (:func:`infer_task` guesses the task from the data);
:func:`compare_audits` compares an audit with an earlier one.

``import fairness_core`` is cheap: the public names below are imported on
first use, so that a command's ``--help`` or a program that only needs the
spec does not pay for pandas, scipy or the chart libraries.
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "AuditSpec": ".spec",
    "AuditResult": ".audit",
    "InputError": ".errors",
    "REGISTRY": ".metrics",
    "audit": ".audit",
    "compare_audits": ".compare",
    "infer_task": ".tasks",
    "read_table": ".io",
    "run_audit": ".audit",
}

__all__ = ["AuditSpec", "AuditResult", "InputError", "REGISTRY", "audit", "compare_audits",
           "infer_task", "read_table", "run_audit", "__version__"]


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """The package's module type: ``fairness_core.audit`` stays the function.

    Importing the submodule ``fairness_core.audit`` makes Python set the
    package's attribute ``audit`` to that submodule; the function of the
    same name must win (the submodule stays ``sys.modules[
    "fairness_core.audit"]``)."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and name in _EXPORTS:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
