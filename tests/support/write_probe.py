"""Writers that run through a failure and record which writes were acknowledged, when, by whom.

A probe's ``write(n)`` writes key number ``n`` and returns the port of the server that
acknowledged it. From the record: how long after a failure the first write was acknowledged
by the new master (the recovery time), the longest stretch without any acknowledgement, and
which acknowledged writes the new master lacks afterwards (lost in the failover).
"""

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio

Write = Callable[[int], Awaitable[int]]


@dataclass(frozen=True)
class Ack:
    n: int
    at: float  # time.monotonic() when the reply arrived
    port: int


@dataclass
class WriteProbe:
    """``writers`` concurrent loops of ``write``; errors are counted, then the loop goes on."""

    write: Write
    writers: int = 4
    pause_after_error: float = 0.02
    acks: list[Ack] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    _tasks: list["asyncio.Task[None]"] = field(default_factory=list)
    _numbers: "itertools.count[int]" = field(default_factory=itertools.count)
    _stopping: bool = False

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.writers)]

    async def stop(self) -> None:
        """Stop the writers; each finishes its current write (bounded by its socket timeout).

        A flag, not ``Task.cancel``: on Python 3.11 redis-py's ``asyncio.wait_for`` around
        socket writes can swallow a cancellation, and the loop would run on.
        """
        self._stopping = True
        await asyncio.gather(*self._tasks)

    async def _loop(self) -> None:
        while not self._stopping:
            n = next(self._numbers)
            try:
                port = await self.write(n)
            except (redis.RedisError, OSError) as error:
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                await asyncio.sleep(self.pause_after_error)
                continue
            self.acks.append(Ack(n, time.monotonic(), port))

    async def wait_for_ack(self, port: int, since: float, within: float) -> float:
        """Seconds from ``since`` to the first write ``port`` acknowledged after it (polled)."""
        deadline = time.monotonic() + within
        while (first := self.first_ack(port, since)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no write acknowledged by port {port} within {within} s; errors: {self.errors}"
                )
            await asyncio.sleep(0.02)
        return first.at - since

    def first_ack(self, port: int, since: float) -> Ack | None:
        return next((ack for ack in self.acks if ack.at > since and ack.port == port), None)

    def longest_gap(self, since: float) -> float:
        """The longest time without any acknowledged write from ``since`` to the last ack."""
        times = [since, *sorted(ack.at for ack in self.acks if ack.at > since)]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def key(n: int) -> str:
    return f"probe:{n}"


async def missing(client: redis.asyncio.Redis, acks: list[Ack]) -> list[int]:
    """The acknowledged write numbers whose key ``client``'s server does not hold."""
    numbers = [ack.n for ack in acks]
    present: list[bytes | str | None] = []
    for start in range(0, len(numbers), 500):
        present += await client.mget([key(n) for n in numbers[start : start + 500]])
    return [n for n, value in zip(numbers, present, strict=True) if value is None]
