"""Count network round trips on the client side, where a Lua script's inner commands are not."""

import contextlib
from collections.abc import Iterator
from typing import Any

from redis.asyncio.connection import Connection


@contextlib.contextmanager
def recorded_requests() -> Iterator[list[bytes]]:
    """Record every request a redis.asyncio connection writes: one entry per round trip."""
    requests: list[bytes] = []
    original = Connection.send_packed_command

    async def recording(self: Connection, command: Any, check_health: bool = True) -> None:
        chunks = [command] if isinstance(command, bytes | str) else list(command)
        requests.append(b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks))
        await original(self, command, check_health)

    Connection.send_packed_command = recording  # type: ignore[method-assign,assignment]
    try:
        yield requests
    finally:
        Connection.send_packed_command = original  # type: ignore[method-assign]
