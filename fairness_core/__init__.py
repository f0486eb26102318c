"""fairness_core: audit binary classifiers for group fairness.

The whole audit in one call::

    from fairness_core import AuditSpec, audit
    result = audit("predictions.csv", AuditSpec(label="y", predictions=["pred"],
                                                sensitive=["sex", "race"]))
    result.summary, result.disparities, result.to_json()
"""
__version__ = "0.1.0"

from .errors import InputError  # noqa: E402
from .spec import AuditSpec  # noqa: E402
from .io import read_table  # noqa: E402
from .audit import AuditResult, audit, run_audit  # noqa: E402
from .metrics import REGISTRY  # noqa: E402

__all__ = ["AuditSpec", "AuditResult", "InputError", "REGISTRY", "audit", "read_table",
           "run_audit", "__version__"]
