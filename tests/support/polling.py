"""Wait for a condition with a deadline, instead of sleeping a fixed time and hoping."""

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``condition`` until it is true; ``AssertionError`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s: {condition}")
        await asyncio.sleep(interval)


def answered(condition: Callable[[], bool]) -> Callable[[], bool]:
    """``condition`` for ``wait_for``, where a Redis error (a node down or busy) means not yet."""

    def check() -> bool:
        try:
            return condition()
        except redis.RedisError:
            return False

    return check
