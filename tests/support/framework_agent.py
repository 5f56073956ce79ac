"""A fresh agent process that loads its task store as the framework does; prints JSON.

Run by the framework tier with the injected ``TA_*`` environment::

    python tests/support/framework_agent.py [--without-installed-library]
        [--import-library-first] [--without-framework] [--without-package NAME]

It prints ``{"store": ..., "library": <teal_taskstore.__file__>, "round_trip": true}``,
or ``{"error": <type>, "message": ...}`` with exit status 2 when loading fails.
"""

import argparse
import asyncio
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

STANDIN = Path(__file__).resolve().parent / "framework_standin"


class OnlyBesideTheEntryFile(importlib.abc.MetaPathFinder):
    """Stands for an image without teal-taskstore installed.

    ``teal_taskstore`` is found only in ``allowed`` directories (the volume), whatever this
    virtualenv has installed (an editable install is a finder of its own, so hiding
    directories from ``sys.path`` would not be enough).
    """

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "teal_taskstore":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, [self.allowed])
        if spec is None:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return spec


class Without(importlib.abc.MetaPathFinder):
    """Stands for an image that lacks ``package``."""

    def __init__(self, package: str) -> None:
        self.package = package

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] == self.package:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def load_entry_without_framework(entry: str) -> Any:
    """What a loader other than the framework's does with the entry file."""
    spec = importlib.util.spec_from_file_location("teal_taskstore_entry", entry)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, os.environ["TA_PERSISTENCE_CLASS"])()


async def round_trip(store: Any) -> bool:
    """Create, load and delete one task through the framework's models."""
    from sk_agents.tealagents.models import AgentTask

    now = datetime.now()
    task = AgentTask(
        session_id="s", task_id="agent-process-task", user_id="u", items=[],
        created_at=now, last_updated=now,
    )  # fmt: skip
    await store.create(task)
    loaded = await store.load(task.task_id)
    await store.delete(task.task_id)
    await store.close()
    return bool(loaded == task)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--without-installed-library", action="store_true")
    parser.add_argument("--import-library-first", action="store_true")
    parser.add_argument("--without-framework", action="store_true")
    parser.add_argument("--without-package", action="append", default=[])
    args = parser.parse_args()
    sys.meta_path[:0] = [Without(package) for package in args.without_package]
    entry = os.environ["TA_PERSISTENCE_MODULE"]
    if args.without_installed_library:
        sys.meta_path.insert(0, OnlyBesideTheEntryFile(str(Path(entry).parent)))
    if args.import_library_first:
        import teal_taskstore  # noqa: F401
    try:
        if args.without_framework:
            store = load_entry_without_framework(entry)
        else:
            sys.path.insert(0, str(STANDIN))
            import sk_agents.configs  # noqa: F401  (registers the framework's settings)
            from sk_agents.persistence.persistence_factory import PersistenceFactory
            from ska_utils import AppConfig

            store = PersistenceFactory(AppConfig()).get_persistence_manager()
        ok = asyncio.run(round_trip(store))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 2
    library = sys.modules["teal_taskstore"].__file__
    print(json.dumps({"store": type(store).__name__, "library": library, "round_trip": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
