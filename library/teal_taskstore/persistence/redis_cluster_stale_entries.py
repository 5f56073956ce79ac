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


class StaleEntryRemovals:
    """Removes stale index entries in the background: no write waits for that.

    So no write costs its caller more than 2 round trips (docs/library.md, "Redis Sentinel
    and Redis Cluster").
    Each removal runs like an operation (``bounded``: a connection slot, the command
    timeout, secrets scrubbed) but is not retried and never raises: a stale entry is
    harmless (lookups check the task it names) and expires with that task. At most
    ``limit`` removals run at once; beyond, a write removes its entries itself before it
    answers, so a burst cannot pile up work. :meth:`wait` (in the manager's ``close()``)
    waits for the running loop's removals.
    """

    def __init__(self, limit: int, bounded: Bounded) -> None:
        self._limit = limit
        self._bounded = bounded
        self._pending: set[asyncio.Task[None]] = set()

    async def remove(self, routes: ClusterRoutes, commands: Commands) -> None:
        """Start removing (compare-and-delete) ``commands``' entries; at once when too busy."""
        if len(self._pending) >= self._limit:
            await self._remove(routes.execute_each(commands), len(commands))
            return
        task = asyncio.get_running_loop().create_task(self._in_background(commands))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _in_background(self, commands: Commands) -> None:
        await self._remove(
            self._bounded(lambda connections: routes_of(connections).execute_each(commands)),
            len(commands),
        )

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
        """Wait until the removals started on the running loop have ended."""
        loop = asyncio.get_running_loop()
        pending = [task for task in self._pending if task.get_loop() is loop]
        if pending:
            await asyncio.wait(pending)
