"""Backends for the library's behavioural suite: in-memory, fakeredis and a real redis-server."""

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio

from support.library_backends import Backend, fake_redis_backend, flush, redis_env
from support.redis_server import RedisServer
from teal_taskstore import (
    InMemoryPersistenceManager,
    RedisTaskPersistenceManager,
    TaskPersistenceManager,
)

BACKENDS = ["memory", "fakeredis", "redis"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session; tests flush it before use."""
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest_asyncio.fixture(params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[Backend]:
    """Each backend in turn; a real server is flushed first."""
    name: str = request.param
    if name == "memory":
        built = Backend(name, lambda _settings: InMemoryPersistenceManager())
    elif name == "fakeredis":
        built = fake_redis_backend()
    else:
        flush(redis_server)
        built = Backend(
            name,
            lambda settings: RedisTaskPersistenceManager(redis_env(redis_server, **settings)),
            lambda: redis.asyncio.Redis(port=redis_server.port, decode_responses=True),
        )
    yield built
    for manager in built.managers:
        await manager.close()


@pytest.fixture
def manager(backend: Backend) -> TaskPersistenceManager:
    """A manager of the current backend."""
    return backend.new_manager()
