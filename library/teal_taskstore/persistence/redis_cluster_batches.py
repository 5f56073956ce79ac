"""Cluster mode: the index entries of many writes to one master, sent as one pipeline."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from teal_taskstore.persistence.redis_connections import Address, ReplicationShortfall

Reply = tuple[list[Any], ReplicationShortfall | None]
Send = Callable[[Address, list[tuple[Any, ...]]], Awaitable[list[Any]]]


class _Batch:
    __slots__ = ("commands", "waiters")

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []
        # (first command, end, future) of each write in the batch
        self.waiters: list[tuple[int, int, asyncio.Future[Reply]]] = []


class WriteBatches:
    """Gathers what the writes of one event loop send each master within one turn of the
    loop, and sends it as one pipeline (``send``: ``WAIT`` at its end when configured).

    Under load many writes resume in the same turn (their replies arrived together), so
    their index entries share one request per master instead of one each; this client, not
    the servers, is what limits the rate (docs/library.md). A batch leaves at the next turn
    of the loop: no timer, no added wait. Each write awaits its own future, so a write
    cancelled by its deadline does not cancel the batch of the others; the batch has its
    own deadline (``timeout``), and an error reaches every write in it.
    """

    def __init__(self, send: Send, timeout: float) -> None:
        self._send = send
        self._timeout = timeout
        self._open: dict[Address, _Batch] = {}
        self._flushing: set[asyncio.Task[None]] = set()  # held: the loop keeps weak refs

    def submit(self, address: Address, commands: list[tuple[Any, ...]]) -> "asyncio.Future[Reply]":
        """Add ``commands`` to ``address``'s batch; the future gives their replies in order
        (error replies in place) and the batch's ``WAIT`` shortfall, if any."""
        loop = asyncio.get_running_loop()
        batch = self._open.get(address)
        if batch is None:
            batch = self._open[address] = _Batch()
            task = loop.create_task(self._flush(address, batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        future: asyncio.Future[Reply] = loop.create_future()
        start = len(batch.commands)
        batch.commands.extend(commands)
        batch.waiters.append((start, len(batch.commands), future))
        return future

    async def _flush(self, address: Address, batch: _Batch) -> None:
        del self._open[address]  # from here, writes start the next batch
        shortfall: ReplicationShortfall | None = None
        try:
            async with asyncio.timeout(self._timeout):
                replies = await self._send(address, batch.commands)
        except ReplicationShortfall as exc:
            replies, shortfall = exc.reply, exc
        except BaseException as exc:
            for _, _, future in batch.waiters:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for start, end, future in batch.waiters:
            if not future.done():  # not cancelled by its write's deadline
                future.set_result((replies[start:end], shortfall))
