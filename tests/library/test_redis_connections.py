"""Connections on a real redis-server: the timeouts in force, release on close, event loops."""

import time

import pytest
import redis.asyncio

from support.library_backends import flush, make_task, redis_env
from support.redis_server import RedisServer
from teal_taskstore import PersistenceLoadError, RedisTaskPersistenceManager

PAUSE_SECONDS = 5.6  # past redis-py 8's default socket timeout of 5 s


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
