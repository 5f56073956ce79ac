"""``python -m teal_taskstore``: ``demo`` (the documented usage flow) and ``copy-library DEST``.

``demo`` runs the usage flow against the backend the ``TA_*`` variables select;
``copy-library DEST`` copies the library and the Teal Agents entry file into DEST (the
operator's init container runs it).
"""

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from teal_taskstore import (
    AgentTask,
    AgentTaskItem,
    AppConfig,
    ConfigurationError,
    MultiModalItem,
    PersistenceConflictError,
    PersistenceError,
    PersistenceFactory,
)
from teal_taskstore.framework.copy_library import copy_library


def _item(task_id: str, request_id: str, role: str, text: str) -> AgentTaskItem:
    return AgentTaskItem.model_validate(
        {
            "task_id": task_id,
            "role": role,
            "item": MultiModalItem(content=text),
            "request_id": request_id,
            "updated": datetime.now(UTC),
        }
    )


def _present(task: AgentTask | None, key: str) -> AgentTask:
    if task is None:
        raise PersistenceError(f"demo: {key!r} was stored a moment ago but is not found")
    return task


async def demo(say: Callable[[str], None] = print) -> None:
    """Create, load, update, load by request id, show a conflict, and delete one task."""
    manager = PersistenceFactory(AppConfig()).get_persistence_manager()
    say(f"backend: {manager!r}")
    task_id = f"demo-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
    now = datetime.now(UTC)
    task = AgentTask(
        task_id=task_id,
        session_id="demo-session",
        user_id="demo-user",
        items=[_item(task_id, "request-1", "user", "Plan a trip to Lisbon")],
        created_at=now,
        last_updated=now,
    )
    async with manager:
        await manager.create(task)
        say(f"create: stored {task_id} with {len(task.items)} item")

        loaded = _present(await manager.load(task_id), task_id)
        say(f"load: {loaded.task_id} status={loaded.status} items={len(loaded.items)}")

        loaded.items.append(_item(task_id, "request-2", "assistant", "Here is a plan..."))
        loaded.status = "Paused"
        await manager.update(loaded)
        say(f"update: {len(loaded.items)} items, status={loaded.status}")

        found = _present(await manager.load_by_request_id("request-2"), "request-2")
        say(f"load_by_request_id: request-2 -> {found.task_id}")

        stale = _present(await manager.load(task_id), task_id)
        found.status = "Running"
        await manager.update(found)
        stale.status = "Running"
        try:
            await manager.update(stale)
            say("conflict: NOT detected (this backend has no optimistic concurrency)")
        except PersistenceConflictError:
            say("conflict: a second resume of the paused task was refused, as it should be")

        await manager.delete(task_id)
        say(f"delete: {task_id} removed; load now returns {await manager.load(task_id)}")


def copy_library_command(destination: Path) -> int:
    """Copy the library and the entry file into ``destination``; say what was written."""
    try:
        copied = copy_library(destination)
    except OSError as exc:
        print(f"copy-library failed: {destination}: {exc}", file=sys.stderr)
        return 1
    print(
        f"copied {copied.files} files ({copied.size / 1024:.0f} KiB) to {copied.package}; "
        f"entry file {copied.entry_file}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m teal_taskstore")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the documented usage flow")
    copy = commands.add_parser(
        "copy-library", help="copy the library and the Teal Agents entry file into DEST"
    )
    copy.add_argument("destination", metavar="DEST", type=Path)
    args = parser.parse_args(argv)
    if args.command == "copy-library":
        return copy_library_command(args.destination)
    try:
        asyncio.run(demo())
    except (ConfigurationError, ImportError, TypeError, ValueError, PersistenceError) as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
