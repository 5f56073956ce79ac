"""Redis-specific behaviour, on fakeredis and on a real redis-server."""

import pytest
import redis.asyncio
import redis.exceptions

from support.library_backends import Backend, make_item, make_task
from support.polling import eventually
from teal_taskstore import (
    AgentTask,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceLoadError,
    PersistenceUpdateError,
    TaskPersistenceManager,
)
from teal_taskstore.persistence.redis_connections import LoopConnections

pytestmark = pytest.mark.parametrize("backend", ["fakeredis", "redis"], indirect=True)

TASK_KEY = "taskstore:v1:task:task-1"
REQUESTS_KEY = "taskstore:v1:task-requests:task-1"


def raw(backend: Backend) -> redis.asyncio.Redis:
    assert backend.raw_client is not None
    return backend.raw_client()


async def test_keys_follow_the_documented_versioned_layout(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_KEY_PREFIX="team-a:")
    task = make_task(request_ids=("req-1",))
    await manager.create(task)
    client = raw(backend)
    stored = await client.get("team-a:taskstore:v1:task:task-1")
    assert isinstance(stored, str)
    version, writer, data = stored.split(":", 2)
    assert sorted(await client.keys("*")) == [
        f"team-a:taskstore:v1:receipt:{writer}",
        "team-a:taskstore:v1:request:req-1",
        "team-a:taskstore:v1:task-requests:task-1",
        "team-a:taskstore:v1:task:task-1",
    ]
    assert version == "1"
    assert int(writer, 16) >= 0  # hex token of the write
    # The write's receipt: what it did, kept while the writer may retry.
    assert await client.get(f"team-a:taskstore:v1:receipt:{writer}") == "1"
    assert 0 < await client.ttl(f"team-a:taskstore:v1:receipt:{writer}") <= 60
    assert AgentTask.model_validate_json(data) == task
    assert await client.smembers("team-a:taskstore:v1:task-requests:task-1") == {"req-1"}
    assert await client.get("team-a:taskstore:v1:request:req-1") == "task-1"


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
    for key in (TASK_KEY, REQUESTS_KEY, "taskstore:v1:request:req-1"):
        await client.expire(key, 5)
    task = await manager.load("task-1")
    assert task is not None
    task.items.append(make_item("task-1", "req-2"))
    await manager.update(task)
    keys = (TASK_KEY, REQUESTS_KEY, "taskstore:v1:request:req-1", "taskstore:v1:request:req-2")
    ttls = [await client.ttl(key) for key in keys]
    assert all(95 <= ttl <= 100 for ttl in ttls), ttls


async def test_task_and_index_expire_together(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_TTL="1")
    await manager.create(make_task())
    client = raw(backend)
    assert await client.exists(TASK_KEY, REQUESTS_KEY, "taskstore:v1:request:req-1") == 3

    async def task_gone() -> bool:
        return not await client.exists(TASK_KEY)

    await eventually(task_gone)
    assert await manager.load("task-1") is None
    assert await manager.load_by_request_id("req-1") is None
    assert await client.exists(REQUESTS_KEY, "taskstore:v1:request:req-1") == 0


async def test_ttl_zero_means_no_expiry(backend: Backend) -> None:
    manager = backend.new_manager(TA_REDIS_TTL="0")
    await manager.create(make_task())
    client = raw(backend)
    for key in (TASK_KEY, REQUESTS_KEY, "taskstore:v1:request:req-1"):
        assert await client.ttl(key) == -1


@pytest.mark.parametrize(
    "stored",
    [
        "1:0123abcd:{not json",
        '1:0123abcd:{"task_id": 1}',
        "x:0123abcd:" + make_task().model_dump_json(),
        "no header at all",
    ],
)
async def test_corrupt_data_is_reported_and_left_in_place(backend: Backend, stored: str) -> None:
    manager = backend.new_manager()
    await manager.create(make_task())
    client = raw(backend)
    await client.set(TASK_KEY, stored)
    with pytest.raises(PersistenceLoadError, match="'task-1'") as raised:
        await manager.load("task-1")
    assert raised.value.__cause__ is not None
    with pytest.raises(PersistenceLoadError, match="'req-1'"):
        await manager.load_by_request_id("req-1")
    assert await client.get(TASK_KEY) == stored


async def test_a_key_of_the_wrong_type_is_an_error_naming_the_task(backend: Backend) -> None:
    manager = backend.new_manager()
    await raw(backend).hset(TASK_KEY, "field", "a hash, not a string")
    with pytest.raises(PersistenceLoadError, match="'task-1'") as raised:
        await manager.load("task-1")
    assert raised.value.__cause__ is not None
    with pytest.raises(PersistenceUpdateError, match="'task-1'"):
        await manager.update(make_task())
    assert await raw(backend).hgetall(TASK_KEY) == {"field": "a hash, not a string"}


async def test_stale_index_entries_are_ignored_and_cleaned_up(backend: Backend) -> None:
    manager = backend.new_manager()
    client = raw(backend)
    await manager.create(make_task("task-1", ("req-1",)))
    # Entries naming a task that lacks the request id, and a task that is gone.
    await client.set("taskstore:v1:request:req-9", "task-1")
    await client.set("taskstore:v1:request:req-8", "task-gone")
    for request_id in ("req-9", "req-8"):
        assert await manager.load_by_request_id(request_id) is None
        assert await client.exists(f"taskstore:v1:request:{request_id}") == 0
    found = await manager.load_by_request_id("req-1")
    assert found is not None and found.task_id == "task-1"


async def test_an_update_keeps_index_entries_another_task_took_over(backend: Backend) -> None:
    manager = backend.new_manager()
    client = raw(backend)
    await manager.create(make_task("task-1", ("shared", "own")))
    await manager.create(make_task("task-2", ("shared",)))  # written last: the index names it
    task = await manager.load("task-1")
    assert task is not None
    task.items = [make_item("task-1", "own")]
    await manager.update(task)
    await manager.delete("task-1")
    assert await client.get("taskstore:v1:request:shared") == "task-2"
    found = await manager.load_by_request_id("shared")
    assert found is not None and found.task_id == "task-2"


@pytest.mark.parametrize("operation", ["create", "update", "delete"])
async def test_a_write_retried_after_a_lost_reply_succeeds_once(
    backend: Backend, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write goes through but its reply is lost: the retry must not turn it into an error."""
    manager = backend.new_manager()
    task = make_task()
    if operation != "create":
        await manager.create(task)
    real_execute = LoopConnections.execute
    replies_lost = 0

    async def execute_losing_first_reply(connections: LoopConnections, *args: object) -> object:
        nonlocal replies_lost
        result = await real_execute(connections, *args)
        if replies_lost == 0 and args[0] == "EVALSHA":
            replies_lost += 1
            raise redis.exceptions.ConnectionError("connection reset after the write")
        return result

    monkeypatch.setattr(LoopConnections, "execute", execute_losing_first_reply)
    if operation == "create":
        await manager.create(task)
    elif operation == "update":
        task.status = "Completed"
        await manager.update(task)
    else:
        await manager.delete("task-1")
    assert replies_lost == 1
    monkeypatch.undo()
    stored = await manager.load("task-1")
    if operation == "delete":
        assert stored is None
    else:
        assert stored == task
        assert TaskPersistenceManager.seen_version(stored) == (1 if operation == "create" else 2)


async def test_a_wrong_type_at_the_request_id_set_never_leaves_a_half_written_task(
    backend: Backend,
) -> None:
    manager = backend.new_manager()
    client = raw(backend)
    await client.set(REQUESTS_KEY, "a string, not a set")
    try:
        await manager.create(make_task())
    except PersistenceCreateError:
        assert await manager.load("task-1") is None  # refused before anything was written
        return
    found = await manager.load_by_request_id("req-1")
    assert found is not None and found.task_id == "task-1"
    assert await client.smembers(REQUESTS_KEY) == {"req-1"}


async def test_data_that_is_not_utf8_is_a_load_error_and_stays(backend: Backend) -> None:
    manager = backend.new_manager()
    await manager.create(make_task())
    client = raw(backend)
    stored = b'1:00ff:{"task_id": "\xff\xfe"}'
    await client.set(TASK_KEY, stored)
    with pytest.raises(PersistenceLoadError, match="'task-1'"):
        await manager.load("task-1")
    with pytest.raises(PersistenceLoadError, match="'req-1'"):
        await manager.load_by_request_id("req-1")
    kept = await client.execute_command("GET", TASK_KEY, NEVER_DECODE=True)  # type: ignore[no-untyped-call]
    assert kept == stored


LONE_SURROGATE = "task-\udc80"


async def test_ids_that_are_not_valid_text_fail_with_persistence_errors(backend: Backend) -> None:
    manager = backend.new_manager()
    with pytest.raises(PersistenceLoadError, match="task-"):
        await manager.load(LONE_SURROGATE)
    with pytest.raises(PersistenceDeleteError, match="task-"):
        await manager.delete(LONE_SURROGATE)
    with pytest.raises(PersistenceLoadError, match="task-"):
        await manager.load_by_request_id(LONE_SURROGATE)
    with pytest.raises(PersistenceCreateError, match="task-"):
        await manager.create(make_task(LONE_SURROGATE))
