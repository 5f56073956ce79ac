"""Connections on a real redis-server: the timeouts in force, release on close, event loops."""

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from support.library_backends import flush, make_task, redis_env
from support.polling import eventually
from support.redis_server import RedisServer
from teal_taskstore import AppConfig, PersistenceLoadError, RedisTaskPersistenceManager

PAUSE_SECONDS = 5.6  # past redis-py 8's default socket timeout of 5 s


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers, like a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


async def test_a_command_timeout_above_five_seconds_is_the_one_in_force(
    redis_server: RedisServer,
) -> None:
    flush(redis_server)
    settings = {"TA_REDIS_COMMAND_TIMEOUT": "20", "TA_REDIS_RETRIES": "0"}
    async with (
        RedisTaskPersistenceManager(redis_env(redis_server, **settings)) as manager,
        redis.asyncio.Redis(port=redis_server.port) as admin,
    ):
        await manager.create(make_task())  # the connection is open before the pause
        await admin.client_pause(int(PAUSE_SECONDS * 1000))
        started = time.monotonic()
        loaded = await manager.load("task-1")
        waited = time.monotonic() - started
    assert loaded is not None
    assert waited >= PAUSE_SECONDS - 0.5  # the reply really came after the pause


async def test_a_database_the_server_lacks_is_an_error_naming_the_variable(
    redis_server: RedisServer,
) -> None:
    async with RedisTaskPersistenceManager(redis_env(redis_server, TA_REDIS_DB="16")) as manager:
        with pytest.raises(PersistenceLoadError, match="TA_REDIS_DB=16"):
            await manager.load("task-1")


async def connected_clients(admin: redis.asyncio.Redis) -> int:
    return int((await admin.info("clients"))["connected_clients"])


async def test_close_and_async_with_release_every_connection(redis_server: RedisServer) -> None:
    flush(redis_server)
    async with redis.asyncio.Redis(port=redis_server.port) as admin:
        await admin.ping()
        before = await connected_clients(admin)
        for n in range(5):
            async with RedisTaskPersistenceManager(redis_env(redis_server)) as manager:
                await manager.create(make_task(f"task-{n}"))
                await asyncio.gather(*(manager.load(f"task-{n}") for _ in range(20)))

        async def all_released() -> bool:
            # At most as many as before: connections of earlier tests may still be closing.
            return await connected_clients(admin) <= before

        await eventually(all_released)


async def test_an_operation_in_flight_at_close_still_ends_within_its_deadline(
    silent_port: int,
) -> None:
    settings = {"TA_REDIS_COMMAND_TIMEOUT": "0.3", "TA_REDIS_RETRIES": "0"}
    manager = RedisTaskPersistenceManager(
        AppConfig({"TA_REDIS_HOST": "127.0.0.1", "TA_REDIS_PORT": str(silent_port), **settings})
    )
    in_flight = asyncio.create_task(manager.load("task-1"))
    await asyncio.sleep(0)  # the load starts and waits for a reply that never comes
    await asyncio.wait_for(manager.close(), timeout=3)
    with pytest.raises(PersistenceLoadError, match="unreachable"):
        await asyncio.wait_for(in_flight, timeout=3)


def test_one_manager_serves_one_event_loop_after_another(redis_server: RedisServer) -> None:
    """As with ``asyncio.run`` per job: every loop works, and none leaves a connection open."""
    flush(redis_server)
    manager = RedisTaskPersistenceManager(redis_env(redis_server, TA_REDIS_MAX_CONNECTIONS="2"))

    async def job(n: int) -> None:
        task = make_task(f"task-{n}", (f"req-{n}",))
        await manager.create(task)
        # More callers than connections, so they queue for one.
        await asyncio.gather(*(manager.load(task.task_id) for _ in range(10)))
        assert await manager.load_by_request_id(f"req-{n}") == task
        await manager.update(task)
        await manager.delete(task.task_id)

    with redis.Redis(port=redis_server.port) as admin:

        def connected() -> int:
            return int(admin.info("clients")["connected_clients"])

        before = connected()
        for n in range(3):
            asyncio.run(job(n))
        # At most as many as before: connections of earlier tests may still be closing.
        assert connected() <= before
