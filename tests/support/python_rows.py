"""The per-Python virtualenvs of ``scripts/test-pythons``, for tests that run a process in one.

The rows, their pins and how a virtualenv is built are that script's; this module loads it
and builds (or reuses, from ``.venvs/<row>/``) the virtualenv of one row, so a test finds
it on a fresh machine too.
"""

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from taskstore_dev.envtest.pytest_plugin import unavailable

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "test-pythons"


def _test_pythons() -> ModuleType:
    """``scripts/test-pythons`` as a module (it has no ``.py`` suffix)."""
    name = "test_pythons_script"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.machinery.SourceFileLoader(name, str(SCRIPT))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while it runs
    loader.exec_module(module)
    return module


def row_python(name: str) -> Path:
    """The interpreter of row ``name``'s virtualenv, built if needed.

    Without the row's Python (pyenv), the test skips, or fails under ``CI=true``.
    """
    script = _test_pythons()
    row = next(row for row in script.ROWS if row.name == name)
    python = script.find_python(row.python)
    if python is None:
        unavailable(f"no Python {row.python} for row {name} (pyenv install {row.python})")
    venv: Path = script.ensure_venv(row, python)
    return venv / "bin" / "python"
