"""Redis-specific behaviour, on fakeredis and on a real redis-server."""

import pytest
import redis.asyncio
from support.library_backends import Backend, make_item, make_task
from support.polling import eventually
from teal_taskstore import PersistenceLoadError, TaskPersistenceManager

pytestmark = pytest.mark.parametrize("backend", ["fakeredis", "redis"], indirect=True)

TASK_KEY = "taskstore:v1:task:task-1"


def raw(backend: Backend) -> redis.asyncio.Redis:
    assert backend.raw_client is not None
    return backend.raw_client()


async def test_keys_follow_the_documented_versioned_layout(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_KEY_PREFIX="team-a:")
    await manager.create(make_task(request_ids=("req-1",)))
    client = raw(backend)
    assert sorted(await client.keys("*")) == [
        "team-a:taskstore:v1:request:req-1",
        "team-a:taskstore:v1:task:task-1",
    ]
    stored = await client.hgetall("team-a:taskstore:v1:task:task-1")
    assert stored["version"] == "1"
    assert stored["rid:req-1"] == "1"
    assert await client.smembers("team-a:taskstore:v1:request:req-1") == {"task-1"}


async def test_two_prefixes_share_one_redis_without_seeing_each_other(backend: Backend) -> None:
    team_a = backend.new_manager(TA_REDIS_KEY_PREFIX="a:")
    team_b = backend.new_manager(TA_REDIS_KEY_PREFIX="b:")
    await team_a.create(make_task())
    assert await team_b.load("task-1") is None
    assert await team_b.load_by_request_id("req-1") is None
    await team_b.create(make_task(user_id="b"))
    loaded = await team_a.load("task-1")
    assert loaded is not None and loaded.user_id == "user-1"


async def test_task_and_index_share_one_expiry_refreshed_by_every_write(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_TTL="100")
    client = raw(backend)
    await manager.create(make_task())
    await client.expire(TASK_KEY, 5)
    await client.expire("taskstore:v1:request:req-1", 5)
    task = await manager.load("task-1")
    assert task is not None
    task.items.append(make_item("task-1", "req-2"))
    await manager.update(task)
    ttls = [
        await client.ttl(key)
        for key in (TASK_KEY, "taskstore:v1:request:req-1", "taskstore:v1:request:req-2")
    ]
    assert all(95 <= ttl <= 100 for ttl in ttls), ttls


async def test_task_and_index_expire_together(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_TTL="1")
    await manager.create(make_task())
    client = raw(backend)
    assert await client.exists(TASK_KEY, "taskstore:v1:request:req-1") == 2

    async def task_gone() -> bool:
        return not await client.exists(TASK_KEY)

    await eventually(task_gone)
    assert await manager.load("task-1") is None
    assert await manager.load_by_request_id("req-1") is None
    assert await client.exists("taskstore:v1:request:req-1") == 0


async def test_ttl_zero_means_no_expiry(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_TTL="0")
    await manager.create(make_task())
    client = raw(backend)
    assert await client.ttl(TASK_KEY) == -1
    assert await client.ttl("taskstore:v1:request:req-1") == -1


@pytest.mark.parametrize(
    ("field", "value"), [("data", "{not json"), ("data", '{"task_id": 1}'), ("version", "x")]
)
async def test_corrupt_data_is_reported_and_left_in_place(
    backend: Backend, field: str, value: str
) -> None:
    manager = backend.new_manager()
    await manager.create(make_task())
    client = raw(backend)
    await client.hset(TASK_KEY, field, value)
    before = await client.hgetall(TASK_KEY)
    with pytest.raises(PersistenceLoadError, match="'task-1'") as raised:
        await manager.load("task-1")
    assert raised.value.__cause__ is not None
    with pytest.raises(PersistenceLoadError, match="'req-1'"):
        await manager.load_by_request_id("req-1")
    assert await client.hgetall(TASK_KEY) == before


async def test_a_key_of_the_wrong_type_is_an_error_naming_the_task(backend: Backend) -> None:
    manager = backend.new_manager()
    await raw(backend).set(TASK_KEY, "a string, not a hash")
    with pytest.raises(PersistenceLoadError, match="'task-1'") as raised:
        await manager.load("task-1")
    assert raised.value.__cause__ is not None
    assert await raw(backend).get(TASK_KEY) == "a string, not a hash"


async def test_stale_index_entries_are_ignored_and_cleaned_up(backend: Backend) -> None:
    manager = backend.new_manager()
    client = raw(backend)
    await manager.create(make_task("task-1", ("req-1",)))
    await manager.create(make_task("task-2", ("req-2",)))
    # An entry that points at a task lacking the request id, and one at a task that is gone.
    await client.sadd("taskstore:v1:request:req-2", "task-1", "task-gone")
    found = await manager.load_by_request_id("req-2")
    assert found is not None and found.task_id == "task-2"
    assert await client.smembers("taskstore:v1:request:req-2") == {"task-2"}
    await client.sadd("taskstore:v1:request:req-9", "task-1")
    assert await manager.load_by_request_id("req-9") is None
    assert await client.exists("taskstore:v1:request:req-9") == 0


async def test_a_replayed_write_recognises_its_own_token(backend: Backend) -> None:
    """A retry after a lost reply must not turn a successful write into an error."""
    manager = backend.new_manager()
    assert isinstance(manager, TaskPersistenceManager)
    task = make_task()
    args = manager._write_args(task)  # type: ignore[attr-defined]
    keys = [TASK_KEY]
    script = manager._create_script  # type: ignore[attr-defined]
    assert await script(keys=keys, args=[*args, "req-1"]) == 1
    assert await script(keys=keys, args=[*args, "req-1"]) == 1  # same token: already done
    other = manager._write_args(task)  # type: ignore[attr-defined]
    assert await script(keys=keys, args=[*other, "req-1"]) == 0  # another writer: exists
