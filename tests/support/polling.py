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


def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Blocking ``eventually`` for process harnesses: a Redis error counts as not yet.

    ``TimeoutError`` naming ``what`` after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {within} s: {what}")
        time.sleep(0.05)
