"""The Redis manager's connections: its own small pool per event loop, closed with its loop."""

import asyncio
import contextlib
import functools
import os
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

Address = tuple[str, int]


class Routes(Protocol):
    """What a loop's connections need of cluster mode's routes (``ClusterRoutes``): closing."""

    async def close(self) -> None: ...


class ReplicationShortfall(Exception):
    """A write's ``WAIT`` counted fewer replicas than asked; ``reply`` is the write's own."""

    def __init__(self, reply: Any, acknowledged: int, wanted: int) -> None:
        super().__init__(f"acknowledged by {acknowledged} of {wanted} replicas")
        self.reply = reply
        self.acknowledged = acknowledged
        self.wanted = wanted


def pack_commands(commands: list[tuple[Any, ...]]) -> bytes:
    """The RESP request of ``commands``, whose arguments are ``str``, ``int`` or ``bytes``.

    redis-py's packer handles more kinds of argument and splits large ones; for the many
    small commands of a cluster-mode write (an index entry's ``SET`` has five) it costs a
    quarter of the client's time per write.
    """
    out = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class LoopConnections:
    """Connections for one event loop, and the slots that bound how many are busy.

    asyncio streams, futures and semaphores belong to the loop that made them, so a manager
    used from one ``asyncio.run`` after another needs connections per loop. Commands go
    straight to a redis-py ``Connection``: its client and pool layers (retry wrappers,
    response callbacks, pool locking and metrics) cost as much client time as the command,
    and the manager does its own retries, deadlines and bounding. A caller's ``client``, if
    given, is used through its ``execute_command`` instead.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        slots: int,
        *,
        connect: Callable[[], AbstractConnection] | None = None,
        client: Redis | None = None,
        address: Callable[[], Address | None] | None = None,
        hold: Callable[[], Awaitable[None] | None] | None = None,
        wait: tuple[int, int] = (0, 0),
    ) -> None:
        self.loop = loop
        self._hold = hold
        self._connect = connect
        self._client = client
        self._address = address
        self._wait_replicas, self._wait_ms = wait
        self._idle: list[AbstractConnection] = []
        self._busy: set[AbstractConnection] = set()
        # Callers beyond max_connections wait here for a free connection.
        self.slots = asyncio.Semaphore(slots)
        # Closes these connections when the loop shuts down; held here so it lives as long.
        self.closer: AsyncGenerator[None, None] | None = None
        # In cluster mode: the routes to every node (this object then only bounds calls).
        self.cluster: Routes | None = None

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply (bytes, ints, lists; errors raised)."""
        if self._client is not None:
            return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
        connection = await self._take()
        try:
            if not connection.is_connected:  # connect() costs a retry wrapper even then
                await connection.connect()  # type: ignore[no-untyped-call]
            await connection.send_packed_command(connection.pack_command(*args), False)
            reply = await connection.read_response()
        except ResponseError:
            # An error reply: the connection is in step and stays usable.
            await self._give_back(connection)
            raise
        except BaseException:
            # Anything else (a reset, a timeout, a cancellation) may leave a reply unread.
            self._busy.discard(connection)
            await connection.disconnect(nowait=True)
            raise
        await self._give_back(connection)
        return reply

    async def execute_write(self, *args: Any) -> Any:
        """``execute`` a write; with ``TA_REDIS_WAIT_REPLICAS``, ``WAIT`` in the same round trip.

        ``ReplicationShortfall`` when fewer replicas than asked acknowledged it in time. The
        write's own error reply wins over ``WAIT``'s (see :meth:`execute_pipeline`). In
        sentinel mode a write first waits while ``hold`` says a failover is under way.
        """
        if self._hold is not None and (held := self._hold()) is not None:
            await held
        if not self._wait_replicas:
            return await self.execute(*args)
        if self._client is not None:
            pipeline = self._client.pipeline(transaction=False)
            pipeline.execute_command(*args)
            pipeline.execute_command("WAIT", self._wait_replicas, self._wait_ms)
            reply, acknowledged = await pipeline.execute()
            return self._replicated(reply, int(acknowledged))
        return await self._last_reply([args], write=True)

    async def execute_asking(self, *args: Any, write: bool = False) -> Any:
        """``ASKING`` and ``args`` pipelined on one connection (a cluster's ``ASK`` redirect).

        ``ASKING`` admits only the next command on its connection, so both must share one.
        A ``write`` carries ``WAIT`` too, as with :meth:`execute_write`.
        """
        return await self._last_reply([("ASKING",), args], write=write)

    async def _last_reply(self, commands: list[tuple[Any, ...]], *, write: bool) -> Any:
        """:meth:`execute_pipeline`'s reply to the last command, its error reply raised (it
        wins over a ``WAIT`` shortfall, whose ``reply`` is that command's)."""
        try:
            replies = await self.execute_pipeline(commands, write=write)
        except ReplicationShortfall as shortfall:
            if isinstance(shortfall.reply[-1], ResponseError):
                raise shortfall.reply[-1] from None
            shortfall.reply = shortfall.reply[-1]
            raise
        if isinstance(replies[-1], ResponseError):
            raise replies[-1]
        return replies[-1]

    async def execute_pipeline(
        self, commands: list[tuple[Any, ...]], *, write: bool = False
    ) -> list[Any]:
        """Send ``commands`` on one connection in one round trip; each one's reply in order.

        An error reply is returned in its place as the exception, not raised. With ``write``
        and ``TA_REDIS_WAIT_REPLICAS``, ``WAIT`` follows them (it covers every write before
        it on the connection): ``ReplicationShortfall``, with the replies, when it fell short.
        ``WAIT``'s error reply is raised, unless a command got an error reply too: a replica
        refuses both (``MOVED`` or ``READONLY``, then "WAIT cannot be used with replica
        instances"), and the commands' errors, such as a redirect, are what the caller needs.
        """
        wait = bool(write and self._wait_replicas)
        sent = [*commands, ("WAIT", self._wait_replicas, self._wait_ms)] if wait else commands
        connection = await self._take()
        replies: list[Any] = []
        try:
            if not connection.is_connected:
                await connection.connect()  # type: ignore[no-untyped-call]
            await connection.send_packed_command(pack_commands(sent), False)
            for _ in sent:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            self._busy.discard(connection)
            await connection.disconnect(nowait=True)
            raise
        await self._give_back(connection)
        if wait:
            acknowledged = replies.pop()
            if isinstance(acknowledged, ResponseError):
                if any(isinstance(reply, ResponseError) for reply in replies):
                    return replies
                raise acknowledged
            return self._replicated(replies, int(acknowledged))  # type: ignore[no-any-return]
        return replies

    def _replicated(self, reply: Any, acknowledged: int) -> Any:
        if acknowledged < self._wait_replicas:
            raise ReplicationShortfall(reply, acknowledged, self._wait_replicas)
        return reply

    async def _take(self) -> AbstractConnection:
        assert self._connect is not None  # one of connect and client is always given
        while self._idle:
            connection = self._idle.pop()
            if self._current(connection):
                break
            await connection.disconnect(nowait=True)
        else:
            connection = self._connect()
        self._busy.add(connection)
        return connection

    async def _give_back(self, connection: AbstractConnection) -> None:
        self._busy.discard(connection)
        if self._current(connection):
            self._idle.append(connection)
        else:
            await connection.disconnect(nowait=True)

    def _current(self, connection: AbstractConnection) -> bool:
        """False for a connection to a server that is no longer the master (sentinel mode)."""
        if self._address is None:
            return True
        address = self._address()
        return address is None or (
            connection.port == address[1] and connection.host == address[0]  # type: ignore[attr-defined]
        )

    async def close(self) -> None:
        """Close every connection, idle or in use (not a caller's client)."""
        if self.cluster is not None:
            await self.cluster.close()
        connections = [*self._idle, *self._busy]
        self._idle.clear()
        self._busy.clear()
        for connection in connections:
            await connection.disconnect()


class ConnectionsPerLoop:
    """Hands out the current loop's :class:`LoopConnections`, making them on first use.

    Connections this object makes are closed when their loop shuts down (``asyncio.run``
    and ``asyncio.Runner`` finalise async generators before they close the loop), so nothing
    is left open on a loop that is gone. A client passed in by the caller is the caller's:
    it is used on every loop and never closed here.
    """

    def __init__(
        self,
        max_connections: int,
        *,
        connect: Callable[[], AbstractConnection] | None = None,
        client: Redis | None = None,
        address: Callable[[], Address | None] | None = None,
        hold: Callable[[], Awaitable[None] | None] | None = None,
        wait: tuple[int, int] = (0, 0),
        cluster: Callable[[asyncio.AbstractEventLoop], Routes] | None = None,
    ) -> None:
        # Every loop's connections are made alike: only the loop differs.
        self._make = functools.partial(
            LoopConnections,
            slots=max_connections,
            connect=connect,
            client=client,
            address=address,
            hold=hold,
            wait=wait,
        )
        self._cluster = cluster
        self._client = client
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopConnections] = {}
        self._current: LoopConnections | None = None
        _every_instance.add(self)

    def current(self) -> LoopConnections:
        """The running loop's connections."""
        loop = asyncio.get_running_loop()
        current = self._current
        if current is not None and current.loop is loop:
            return current
        current = self._by_loop.get(loop)
        if current is None:
            self._forget_closed_loops()
            current = self._make(loop)
            if self._cluster is not None:
                current.cluster = self._cluster(loop)
            self._by_loop[loop] = current
            if self._client is None:
                self._close_at_shutdown(current)
        self._current = current
        return current

    async def close_current(self) -> None:
        """Close the running loop's connections (a later operation opens new ones)."""
        connections = self._by_loop.pop(asyncio.get_running_loop(), None)
        if self._current is connections:
            self._current = None
        self._forget_closed_loops()
        if connections is not None and self._client is None:
            await connections.close()

    def forget_all(self) -> None:
        """Drop every connection without closing it: in a forked child they are the parent's."""
        self._by_loop.clear()
        self._current = None

    def _forget_closed_loops(self) -> None:
        # Loops closed without finalising their async generators: their connections are
        # unusable and their sockets close when collected.
        for gone in [loop for loop in self._by_loop if loop.is_closed()]:
            del self._by_loop[gone]

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
