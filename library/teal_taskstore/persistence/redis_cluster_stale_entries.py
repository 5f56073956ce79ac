"""Cluster mode: the index entries a write left stale, removed after its caller's answer."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes, routes_of
from teal_taskstore.persistence.redis_connections import LoopConnections

logger = logging.getLogger(__name__)

Commands = list[tuple[str, tuple[Any, ...]]]
Bounded = Callable[[Callable[[LoopConnections], Awaitable[Any]]], Awaitable[Any]]

# Removals queued at most per event loop; beyond, a write removes its entries itself.
QUEUED_LIMIT = 1000


class StaleEntryRemovals:
    """Removes stale index entries in the background, in batches: no write waits for that.

    So no write costs its caller more than 2 round trips (docs/library.md, "Redis Sentinel
    and Redis Cluster"), and the removals of many writes share one pipeline per master. One
    flusher task per event loop sends whatever is queued, again until the queue is empty;
    each batch runs like an operation (``bounded``: a connection slot, the command timeout,
    secrets scrubbed) but is not retried and never raises: a stale entry is harmless
    (lookups check the task it names) and expires with that task. At most ``QUEUED_LIMIT``
    removals wait; beyond, a write removes its entries itself before it answers. :meth:`wait`
    (in the manager's ``close()``) waits until the running loop's queue is empty.
    """

    def __init__(self, bounded: Bounded, limit: int = QUEUED_LIMIT) -> None:
        self._bounded = bounded
        self._limit = limit
        self._queues: dict[asyncio.AbstractEventLoop, Commands] = {}
        self._flushers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    async def remove(self, routes: ClusterRoutes, commands: Commands) -> None:
        """Queue ``commands`` (compare-and-deletes); run them at once when the queue is full."""
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, [])
        if len(queue) + len(commands) > self._limit:
            await self._remove(routes.execute_each(commands), len(commands))
            return
        queue.extend(commands)
        if loop not in self._flushers:
            self._flushers[loop] = loop.create_task(self._flush(loop, queue))

    async def _flush(self, loop: asyncio.AbstractEventLoop, queue: Commands) -> None:
        try:
            while queue:  # no await between this check and the finally: nothing is stranded
                batch = queue[:]
                queue.clear()
                await self._remove(self._bounded(_removal(batch)), len(batch))
        finally:  # a cancelled flusher (its loop shutting down) drops its queue: harmless
            del self._flushers[loop]
            del self._queues[loop]

    async def _remove(self, removal: Awaitable[Any], count: int) -> None:
        try:
            await removal
        except Exception as exc:  # nobody awaits a removal's outcome: log it
            logger.warning(
                "removing %d stale index entries failed (they expire with their task): %s",
                count,
                exc or type(exc).__name__,
            )

    async def wait(self) -> None:
        """Wait until the removals queued on the running loop have been sent and answered."""
        flusher = self._flushers.get(asyncio.get_running_loop())
        if flusher is not None:
            await asyncio.wait([flusher])


def _removal(batch: Commands) -> Callable[[LoopConnections], Awaitable[Any]]:
    return lambda connections: routes_of(connections).execute_each(batch)
