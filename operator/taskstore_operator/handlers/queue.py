"""A work queue of TaskStores to reconcile: deduplicated, one worker per key, retried on error.

Watch events only enqueue a key (namespace, name); the reconcile reads what it needs
itself, so any number of events for one store while it waits collapse into one
reconcile, and an event during a reconcile runs it once more afterwards.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from taskstore_operator.metrics import (
    QUEUE_DEPTH,
    RECONCILE_DURATION,
    RECONCILE_ERRORS,
    RECONCILES,
)

Key = tuple[str, str]
Work = Callable[[Key], Awaitable[None]]

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS: Final = 0.5
RETRY_MAX_SECONDS: Final = 60.0


class ReconcileQueue:
    """Runs ``work`` for each enqueued key, never twice at once for one key."""

    def __init__(self, work: Work, *, workers: int = 4) -> None:
        self._work = work
        self._workers = workers
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        # Waiting in the queue, with the kind of object whose event enqueued it.
        self._pending: dict[Key, str] = {}
        self._active: set[Key] = set()
        # Enqueued again while active: run once more when done.
        self._again: dict[Key, str] = {}
        self._failures: dict[Key, int] = {}

    @property
    def depth(self) -> int:
        """Keys waiting or being reconciled."""
        return len(self._pending) + len(self._active)

    def enqueue(self, key: Key, kind: str) -> None:
        """Ask for a reconcile of ``key`` because of an event on an object of ``kind``."""
        if key in self._active:
            self._again.setdefault(key, kind)
        elif key not in self._pending:
            self._pending[key] = kind
            self._queue.put_nowait(key)
        QUEUE_DEPTH.set(self.depth)

    async def run(self) -> None:
        """Run the workers until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._worker())

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            kind = self._pending.pop(key)
            self._active.add(key)
            try:
                await self._reconcile(key, kind)
            finally:
                self._active.discard(key)
                again = self._again.pop(key, None)
                if again is not None:
                    self.enqueue(key, again)
                QUEUE_DEPTH.set(self.depth)

    async def _reconcile(self, key: Key, kind: str) -> None:
        RECONCILES.labels(kind).inc()
        try:
            with RECONCILE_DURATION.time():
                await self._work(key)
        except asyncio.CancelledError:
            raise
        # One store's failure must not stop the others; it is retried with a growing delay.
        except Exception as error:
            RECONCILE_ERRORS.labels(kind).inc()
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
            log.warning(
                "reconcile of TaskStore %s/%s failed (%s: %s); retry in %.1f s",
                *key,
                type(error).__name__,
                error,
                delay,
            )
            asyncio.get_running_loop().call_later(delay, self.enqueue, key, kind)
        else:
            self._failures.pop(key, None)
