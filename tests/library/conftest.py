"""Backends for the library's behavioural suite: in-memory, fakeredis and a real redis-server."""

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio

from support.library_backends import (
    Backend,
    cluster_env,
    fake_redis_backend,
    flush,
    redis_env,
    sentinel_env,
)
from support.redis_cluster import RedisClusterSet
from support.redis_sentinel import DATA_PASSWORD, RedisSentinelSet
from support.redis_server import RedisServer
from teal_taskstore import (
    InMemoryPersistenceManager,
    RedisTaskPersistenceManager,
    TaskPersistenceManager,
)

# The sentinel and cluster backends start the session's Sentinel set or 6-node cluster
# (tests/support/ha_fixtures.py).
BACKENDS = [
    "memory",
    "fakeredis",
    "redis",
    pytest.param("sentinel", marks=pytest.mark.redis_ha),
    pytest.param("cluster", marks=pytest.mark.redis_ha),
]


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
    elif name == "sentinel":
        built = sentinel_backend(request.getfixturevalue("redis_sentinel"))
    elif name == "cluster":
        built = cluster_backend(request.getfixturevalue("redis_cluster"))
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


def sentinel_backend(sentinel_set: RedisSentinelSet) -> Backend:
    """Managers in sentinel mode on the healed set, its master flushed."""
    host, port = sentinel_set.master_address()
    with sentinel_set.data_client(port) as client:
        client.flushall()
    return Backend(
        "sentinel",
        lambda settings: RedisTaskPersistenceManager(sentinel_env(sentinel_set, **settings)),
        lambda: redis.asyncio.Redis(
            host=host, port=port, password=DATA_PASSWORD, decode_responses=True
        ),
    )


def cluster_backend(cluster: RedisClusterSet) -> Backend:
    """Managers in cluster mode on the healed 6-node cluster, its masters flushed."""
    for master in cluster.masters():
        with cluster.client(master.port) as client:
            client.flushall()
    return Backend(
        "cluster", lambda settings: RedisTaskPersistenceManager(cluster_env(cluster, **settings))
    )
