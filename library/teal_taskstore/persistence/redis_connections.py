"""The Redis manager's connections, one pool per event loop, each closed with its loop."""

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncGenerator, Callable

from redis.asyncio import Redis


class LoopConnections:
    """A client (its pool) and the slots that bound it, for use on one event loop only.

    asyncio streams, futures and semaphores belong to the loop that made them, so a manager
    used from one ``asyncio.run`` after another needs a pool per loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Redis, slots: int) -> None:
        self.loop = loop
        self.client = client
        # Callers beyond max_connections wait here for a free connection; redis-py's
        # BlockingConnectionPool would do the same at about a quarter of the throughput.
        self.slots = asyncio.Semaphore(slots)
        # Closes this pool when the loop shuts down; held here so it lives as long.
        self.closer: AsyncGenerator[None, None] | None = None

    async def close(self) -> None:
        """Close every connection of the pool, idle or in use."""
        await self.client.aclose()
        await self.client.connection_pool.disconnect()


class ConnectionsPerLoop:
    """Hands out the current loop's :class:`LoopConnections`, making them on first use.

    Pools this object makes are closed when their loop shuts down (``asyncio.run`` and
    ``asyncio.Runner`` finalise async generators before they close the loop), so nothing is
    left open on a loop that is gone. A client passed in by the caller is the caller's: it is
    used on every loop and never closed here.
    """

    def __init__(
        self, make_client: Callable[[], Redis], max_connections: int, *, owned: bool
    ) -> None:
        self._make_client = make_client
        self._max_connections = max_connections
        self._owned = owned
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopConnections] = {}
        self._current: LoopConnections | None = None
        _every_instance.add(self)

    def forget_all(self) -> None:
        """Drop every pool without closing it: in a forked child, the sockets are the parent's."""
        self._by_loop.clear()
        self._current = None

    def current(self) -> LoopConnections:
        """The running loop's connections."""
        loop = asyncio.get_running_loop()
        current = self._current
        if current is not None and current.loop is loop:
            return current
        current = self._by_loop.get(loop)
        if current is None:
            # Loops closed without finalising their async generators: their pools are
            # unusable and their sockets close when collected.
            for gone in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[gone]
            current = LoopConnections(loop, self._make_client(), self._max_connections)
            self._by_loop[loop] = current
            if self._owned:
                self._close_at_shutdown(current)
        self._current = current
        return current

    async def close_current(self) -> None:
        """Close the running loop's connections (a later operation opens new ones)."""
        loop = asyncio.get_running_loop()
        connections = self._by_loop.pop(loop, None)
        if self._current is connections:
            self._current = None
        if connections is not None and self._owned:
            await connections.close()

    def _close_at_shutdown(self, connections: LoopConnections) -> None:
        async def closer() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                if self._by_loop.get(connections.loop) is connections:
                    del self._by_loop[connections.loop]
                    if self._current is connections:
                        self._current = None
                    await connections.close()

        generator = closer()
        # Run it to its yield now: from here the loop finalises it at shutdown.
        with contextlib.suppress(StopIteration):
            generator.asend(None).send(None)
        connections.closer = generator


_every_instance: "weakref.WeakSet[ConnectionsPerLoop]" = weakref.WeakSet()


def _forget_in_forked_child() -> None:
    for connections in list(_every_instance):
        connections.forget_all()


os.register_at_fork(after_in_child=_forget_in_forked_child)
