"""A TCP proxy on loopback in front of a real redis-server that can lose one reply."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable


class ReplyLosingProxy:
    """Forwards bytes both ways; once armed, loses the reply to the next matching request.

    The request reaches the server and runs; its reply is dropped, ``meanwhile`` runs (another
    writer, say), and then the client's connection is closed: what a client sees when a
    network fails between a command and its reply.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.replies_lost = 0
        self._marker: bytes | None = None
        self._meanwhile: Callable[[], Awaitable[None]] | None = None
        self._server: asyncio.Server | None = None

    def lose_next_reply(self, marker: bytes, meanwhile: Callable[[], Awaitable[None]]) -> None:
        """Lose the reply to the next request containing ``marker``, then run ``meanwhile``."""
        self._marker, self._meanwhile = marker, meanwhile

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        losing = asyncio.Event()

        async def to_server() -> None:
            while data := await reader.read(65536):
                if self._marker is not None and self._marker in data:
                    self._marker = None
                    losing.set()
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if losing.is_set():
                    self.replies_lost += 1
                    if self._meanwhile is not None:
                        await self._meanwhile()
                    return
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(to_server()), asyncio.create_task(to_client())]
        with contextlib.suppress(ConnectionError):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for stream in (writer, up_writer):
            stream.close()
            with contextlib.suppress(ConnectionError):
                await stream.wait_closed()


@contextlib.asynccontextmanager
async def reply_losing_proxy(upstream_port: int) -> AsyncIterator[ReplyLosingProxy]:
    """A running proxy to ``upstream_port`` for the duration of an ``async with`` block."""
    proxy = ReplyLosingProxy(upstream_port)
    server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        await server.wait_closed()
