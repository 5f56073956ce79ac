"""A work queue of TaskStores to reconcile: deduplicated, one worker per key, retried on error.

Watch events only enqueue a key (namespace, name); the reconcile reads what it needs
itself, so any number of events for one store while it waits collapse into one
reconcile, and an event during a reconcile runs it once more afterwards.

An event may come with an ``unless`` check (has the key's reconcile seen this version
already?), which is asked when the key is not being reconciled: at once, or, during a
reconcile, when it ends, since the watch may bring the echo of a write before the
writer has remembered it.
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
# True when the event needs no reconcile after all.
Unless = Callable[[], bool]

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
        # Enqueued again while active: run once more when done, unless every check says no.
        self._again: dict[Key, list[tuple[str, Unless | None]]] = {}
        self._failures: dict[Key, int] = {}

    @property
    def depth(self) -> int:
        """Keys waiting or being reconciled."""
        return len(self._pending) + len(self._active)

    def enqueue(self, key: Key, kind: str, unless: Unless | None = None) -> None:
        """Ask for a reconcile of ``key`` because of an event on an object of ``kind``.

        ``unless``, if given, is asked once the key is not being reconciled; True drops the
        request.
        """
        if key in self._active:
            self._again.setdefault(key, []).append((kind, unless))
        elif unless is not None and unless():
            return
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
                again = [
                    kind
                    for kind, unless in self._again.pop(key, [])
                    if unless is None or not unless()
                ]
                if again:
                    self.enqueue(key, again[0])
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
