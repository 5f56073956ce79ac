"""The stand-in Teal Agents framework, as the framework tier uses it (see framework_standin/)."""

import os
import subprocess
import sys
from pathlib import Path

from teal_taskstore.framework import ENTRY_FILE_NAME

STANDIN = Path(__file__).resolve().parent / "framework_standin"
ROOT = Path(__file__).resolve().parents[2]


def use_standin() -> None:
    """Make ``sk_agents`` and ``ska_utils`` importable; a clear error without semantic-kernel."""
    try:
        import semantic_kernel  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "the framework tier needs semantic-kernel (the framework's chat history types): "
            "run scripts/test-pythons, which builds virtualenvs that have it"
        ) from exc
    if str(STANDIN) not in sys.path:
        sys.path.insert(0, str(STANDIN))


def copy_library(destination: Path) -> Path:
    """Run the init container's command into ``destination``; the entry file's path."""
    subprocess.run(
        [sys.executable, "-m", "teal_taskstore", "copy-library", str(destination)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=60,
    )
    return destination / ENTRY_FILE_NAME
