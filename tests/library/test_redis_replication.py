"""``TA_REDIS_WAIT_REPLICAS``: WAIT travels with the write, and a shortfall is a clear error."""

from collections.abc import Iterator

import pytest
import redis

from support.library_backends import flush, make_task, redis_env
from support.polling import answered
from support.redis_server import RedisServer, running_redis_server
from support.round_trips import recorded_requests
from taskstore_dev.envtest.waiting import wait_for
from teal_taskstore import (
    PersistenceCreateError,
    PersistenceNotReplicatedError,
    RedisTaskPersistenceManager,
)
from teal_taskstore.errors import DeleteNotReplicatedError, UpdateNotReplicatedError


@pytest.fixture
def replica(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A replica of the session's server, for the duration of one test."""
    with running_redis_server("--replicaof", "127.0.0.1", str(redis_server.port)) as server:
        client = redis.Redis(port=server.port, decode_responses=True)

        def in_sync() -> bool:
            return bool(client.info("replication")["master_link_status"] == "up")

        wait_for("the replica is in sync", answered(in_sync), 10, 0.05)
        yield server
        client.close()


async def test_each_write_waits_for_its_replica_in_the_same_round_trip(
    redis_server: RedisServer, replica: RedisServer
) -> None:
    flush(redis_server)
    config = redis_env(redis_server, TA_REDIS_WAIT_REPLICAS="1")
    async with RedisTaskPersistenceManager(config) as manager:
        warm = make_task("warm", ("warm-req",))
        await manager.create(warm)  # loads the scripts
        await manager.update(warm)
        task = make_task()
        with recorded_requests() as requests:
            await manager.create(task)
            await manager.update(task)
        assert len(requests) == 2
        assert all(b"\r\nWAIT\r\n" in request for request in requests)
        with redis.Redis(port=replica.port) as client:
            # WAIT returned once the replica had it: no polling needed.
            assert client.get("taskstore:v1:task:task-1") is not None
        await manager.delete("task-1")


async def test_a_write_no_replica_acknowledged_is_a_clear_error_and_stays_stored(
    redis_server: RedisServer,
) -> None:
    flush(redis_server)
    with redis.Redis(port=redis_server.port) as client:
        client.script_flush()  # the first write's reply is NOSCRIPT, then WAIT's
    config = redis_env(redis_server, TA_REDIS_WAIT_REPLICAS="1", TA_REDIS_COMMAND_TIMEOUT="0.2")
    async with RedisTaskPersistenceManager(config) as manager:
        task = make_task()
        with pytest.raises(PersistenceCreateError) as created:
            await manager.create(task)
        assert isinstance(created.value, PersistenceNotReplicatedError)
        message = str(created.value)
        assert "create task 'task-1'" in message
        assert "acknowledged by 0 of 1 replicas within 100 ms" in message
        assert "TA_REDIS_WAIT_REPLICAS" in message
        # Stored on the master, and the connection is still in step for the next command.
        loaded = await manager.load("task-1")
        assert loaded == task
        assert loaded is not None
        with pytest.raises(UpdateNotReplicatedError):
            await manager.update(loaded)
        with pytest.raises(DeleteNotReplicatedError):
            await manager.delete("task-1")
        assert await manager.load("task-1") is None


async def test_a_write_to_a_replica_with_wait_is_refused_as_a_replica(
    redis_server: RedisServer, replica: RedisServer
) -> None:
    """The replica refuses the write and its ``WAIT``: the write's own error is the one
    reported (the ``WAIT`` error would hide a cluster's ``MOVED`` or a demoted master's
    ``READONLY``)."""
    config = redis_env(replica, TA_REDIS_WAIT_REPLICAS="1")
    async with RedisTaskPersistenceManager(config) as manager:
        with pytest.raises(PersistenceCreateError) as created:
            await manager.create(make_task())
        message = str(created.value)
        assert "TA_REDIS_HOST names a replica" in message, message
        assert "WAIT cannot be used" not in message
