"""The package as a library user gets it: a light ``import fairness_core``,
public names that load on first use, and dependencies that match what the
code imports."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

HEAVY = ["streamlit", "plotly", "playwright", "kaleido", "jinja2", "scipy"]
# distribution -> the module it installs
MODULES = {"numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "scipy": "scipy",
           "openpyxl": "openpyxl", "xlsxwriter": "xlsxwriter",
           "charset-normalizer": "charset_normalizer",
           "streamlit": "streamlit", "plotly": "plotly", "jinja2": "jinja2",
           "playwright": "playwright", "kaleido": "kaleido", "pytest": "pytest",
           "hypothesis": "hypothesis", "pytest-playwright": "pytest_playwright",
           "fairlearn": "fairlearn", "scikit-learn": "sklearn",
           "sqlalchemy": "sqlalchemy", "alembic": "alembic",
           "threadpoolctl": "threadpoolctl"}


def _python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter from the repository root (this
    checkout's package first) and return the JSON it prints."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _names(requirements: list[str]) -> set[str]:
    out = set()
    for req in requirements:
        name = req.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        out.add(name.strip().lower())
    return out


def test_import_fairness_core_loads_no_heavy_library():
    got = _python(
        "import json, sys\n"
        "import fairness_core\n"
        f"print(json.dumps({{'file': fairness_core.__file__, 'heavy': sorted(m for m in "
        f"{HEAVY!r} if m in sys.modules), 'version': fairness_core.__version__}}))")
    assert Path(got["file"]).resolve() == ROOT / "fairness_core" / "__init__.py"
    assert got["heavy"] == []
    assert got["version"] == PYPROJECT["project"]["version"]


def test_public_names_load_on_first_use():
    got = _python(
        "import json, sys\n"
        "import fairness_core\n"
        "before = 'fairness_core.audit' in sys.modules\n"
        "from fairness_core.audit import Auditor\n"  # the submodule first ...
        "after_submodule = type(fairness_core.audit).__name__\n"  # ... the function wins
        "from fairness_core import (AuditResult, AuditSpec, InputError, REGISTRY, audit,\n"
        "                           read_table, run_audit, charts)\n"
        "print(json.dumps({'before': before, 'after_submodule': after_submodule,\n"
        "                  'audit': audit.__module__, 'spec': AuditSpec.__module__,\n"
        "                  'charts': charts.__name__, 'n_metrics': len(REGISTRY),\n"
        "                  'all': sorted(fairness_core.__all__),\n"
        "                  'missing': [n for n in fairness_core.__all__\n"
        "                              if not hasattr(fairness_core, n)],\n"
        "                  'in_dir': sorted(set(fairness_core.__all__)\n"
        "                                   - set(dir(fairness_core)))}))")
    assert got["before"] is False
    assert got["after_submodule"] == "function"
    assert got["audit"] == "fairness_core.audit" and got["spec"] == "fairness_core.spec"
    assert got["charts"] == "fairness_core.charts" and got["n_metrics"] > 10
    assert got["missing"] == [] and got["in_dir"] == []


def test_unknown_name_is_an_attribute_error():
    got = _python(
        "import json, fairness_core\n"
        "try:\n"
        "    fairness_core.no_such_name\n"
        "    out = 'no error'\n"
        "except AttributeError as err:\n"
        "    out = str(err)\n"
        "print(json.dumps({'out': out}))")
    assert "no_such_name" in got["out"]


def _module_level_imports(path: Path) -> set[str]:
    """Top-level packages a module imports when it is imported (not inside
    functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_dependencies_cover_what_the_code_imports():
    project = PYPROJECT["project"]
    core = _names(project["dependencies"])
    extras = {k: _names(v) for k, v in project["optional-dependencies"].items()}
    # what a library user does not need is not a core dependency
    assert not core & {"streamlit", "plotly", "playwright", "kaleido", "jinja2",
                       "fairlearn", "scikit-learn", "pytest", "hypothesis"}
    assert {"streamlit", "plotly"} <= extras["app"]
    assert {"plotly", "jinja2", "playwright", "kaleido"} <= extras["report"]
    assert extras["all"] == {"fairness-audit"}
    all_extras = project["optional-dependencies"]["all"][0].replace(" ", "")
    assert set(all_extras.split("[")[1].rstrip("]").split(",")) == {"app", "report", "engines",
                                                                 "store"}
    assert {"duckdb", "ibis-framework", "pyspark", "psycopg"} <= extras["engines"]
    assert {"pytest", "hypothesis", "pytest-playwright", "fairlearn",
            "scikit-learn"} <= extras["test"]
    assert {"sqlalchemy", "alembic"} <= extras["store"]
    installed = {MODULES[d] for d in core | extras["app"] | extras["report"] | extras["store"]}
    stdlib = set(sys.stdlib_module_names) | {"fairness_core"}
    for path in sorted((ROOT / "fairness_core").glob("*.py")):
        third_party = _module_level_imports(path) - stdlib
        assert third_party <= installed, (path.name, third_party - installed)
    for path in sorted((ROOT / "app").rglob("*.py")):
        app_modules = {p.stem for p in (ROOT / "app").rglob("*.py")} | {"views"}
        third_party = _module_level_imports(path) - stdlib - app_modules
        assert third_party <= {MODULES[d] for d in core | extras["app"]}, \
            (path.name, third_party)
    assert (ROOT / "scripts" / "setup.sh").read_text().count("'.[all,test]'") == 1
