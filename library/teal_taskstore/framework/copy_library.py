"""``copy-library DEST``: the library and its framework entry file, copied for an agent pod.

The operator's init container runs it into an ``emptyDir`` that agent containers mount
read-only, so an unmodified Teal Agents image can load our stores from a file
(``TA_PERSISTENCE_MODULE=<DEST>/teal_taskstore_entry.py``).
"""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from teal_taskstore.framework import ENTRY_FILE_NAME, IN_MEMORY_CLASS, REDIS_CLASS

PACKAGE = "teal_taskstore"

# The entry file runs in the agent's Python before teal_taskstore can be imported, so it
# uses nothing but the standard library until it has put the copy on sys.path.
ENTRY_SOURCE = f'''"""teal-taskstore's task stores for Teal Agents (TA_PERSISTENCE_MODULE).

Written by ``python -m teal_taskstore copy-library`` beside the copy of the
``{PACKAGE}`` package it made. The framework's factory loads this file and builds
TA_PERSISTENCE_CLASS from it: {IN_MEMORY_CLASS} or {REDIS_CLASS}.
"""

import os as _os
import sys as _sys

_HERE = _os.path.dirname(_os.path.abspath(__file__))

# The copy beside this file comes first, so the agent runs the library the operator ships,
# whatever teal-taskstore its image may have installed; unless the process has already
# imported {PACKAGE}: one process never holds two copies of it.
if "{PACKAGE}" not in _sys.modules:
    if _HERE in _sys.path:
        _sys.path.remove(_HERE)
    _sys.path.insert(0, _HERE)

try:
    import {PACKAGE}
except ImportError as _missing:
    _package = (_missing.name or "{PACKAGE}").split(".")[0]
    if _package == "{PACKAGE}":
        _what = (
            "the package teal-taskstore (import name {PACKAGE}) is neither in "
            + _HERE
            + " (the init container's copy) nor installed"
        )
    else:
        _what = "teal-taskstore needs the package " + repr(_package) + ", which is not installed"
    raise ImportError(
        __file__ + ": " + _what + " (" + str(_missing) + ")", name=_package
    ) from _missing

from {PACKAGE}.framework.adapter import {IN_MEMORY_CLASS}, {REDIS_CLASS}

__all__ = ["{IN_MEMORY_CLASS}", "{REDIS_CLASS}"]
'''


@dataclass(frozen=True)
class CopiedLibrary:
    """What ``copy_library`` wrote."""

    package: Path
    entry_file: Path
    files: int
    size: int


def copy_library(destination: Path) -> CopiedLibrary:
    """Copy the installed package (no ``__pycache__``) and the entry file into ``destination``.

    Run again into the same directory (a restarted pod), it replaces the previous copy.
    Everything written is world-readable: agent containers may run as another user.
    """
    source = Path(__file__).resolve().parent.parent
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{PACKAGE}-", dir=destination))
    try:
        copied = staging / PACKAGE
        shutil.copytree(source, copied, ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
        files, size = _make_readable(copied)
        entry = staging / ENTRY_FILE_NAME
        entry.write_text(ENTRY_SOURCE, encoding="utf-8")
        entry.chmod(0o644)
        target = destination / PACKAGE
        if target.exists():
            target.rename(staging / "previous")
        copied.rename(target)
        entry.replace(destination / ENTRY_FILE_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CopiedLibrary(target, destination / ENTRY_FILE_NAME, files, size)


def _make_readable(root: Path) -> tuple[int, int]:
    """Directories 0755, files 0644; the number of files and their total size."""
    files = size = 0
    root.chmod(0o755)
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories:
            Path(directory, name).chmod(0o755)
        for name in names:
            path = Path(directory, name)
            path.chmod(0o644)
            files += 1
            size += path.stat().st_size
    return files, size
