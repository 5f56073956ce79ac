"""A real redis-server short of memory: eviction policies and maxmemory refusals."""

import contextlib

import redis.asyncio

from support.library_backends import make_item, make_task, redis_env
from support.redis_server import running_redis_server
from teal_taskstore import PersistenceError, PersistenceUpdateError, RedisTaskPersistenceManager

TASKS = 40
ROUNDS = 30


async def test_under_eviction_load_by_request_id_never_returns_a_task_lacking_the_id() -> None:
    """Redis may evict any key; a task recreated under an evicted one's id inherits nothing."""
    with running_redis_server("--maxmemory-policy", "allkeys-random") as server:
        async with (
            redis.asyncio.Redis(port=server.port) as admin,
            RedisTaskPersistenceManager(redis_env(server, TA_REDIS_RETRIES="0")) as manager,
        ):
            baseline = int((await admin.info("memory"))["used_memory"])
            await admin.config_set("maxmemory", baseline + 2_000_000)
            wrong = looked_up = 0
            for round_ in range(ROUNDS):
                for n in range(TASKS):
                    # Each round, the same task ids with new request ids, and as many new
                    # tasks again, big enough that Redis keeps evicting keys at random.
                    filler = make_task(f"filler-{round_}-{n}", (f"filler-{round_}-{n}",))
                    filler.items[0].item.content = "x" * 4000
                    await manager.create(filler)
                    task = make_task(f"task-{n}", (f"r{round_}-{n}",))
                    task.items[0].item.content = "x" * 4000
                    with contextlib.suppress(PersistenceError):  # it survived: its id exists
                        await manager.create(task)
                for earlier in range(round_):
                    for n in range(TASKS):
                        request_id = f"r{earlier}-{n}"
                        found = await manager.load_by_request_id(request_id)
                        if found is not None:
                            looked_up += 1
                            wrong += request_id not in found.request_ids()
            assert int((await admin.info("stats"))["evicted_keys"]) > 0
    assert looked_up > 0
    assert wrong == 0


async def test_updates_redis_has_no_memory_for_are_refused_and_leave_the_task() -> None:
    with running_redis_server("--maxmemory-policy", "noeviction") as server:
        async with (
            redis.asyncio.Redis(port=server.port) as admin,
            RedisTaskPersistenceManager(redis_env(server, TA_REDIS_RETRIES="0")) as manager,
        ):
            baseline = int((await admin.info("memory"))["used_memory"])
            limit = baseline + 1_000_000
            await admin.config_set("maxmemory", limit)
            await manager.create(make_task())
            last_stored = await manager.load("task-1")
            assert last_stored is not None
            refusals: list[str] = []
            for n in range(50):
                task = await manager.load("task-1")
                assert task is not None
                task.items.append(make_item("task-1", f"big-{n}", "x" * 200_000))
                try:
                    await manager.update(task)
                except PersistenceUpdateError as error:
                    refusals.append(str(error))
                    assert await manager.load("task-1") == last_stored
                    assert await manager.load_by_request_id(f"big-{n}") is None
                else:
                    last_stored = task
            used = int((await admin.info("memory"))["used_memory"])
    assert refusals
    assert all("update task 'task-1'" in refusal for refusal in refusals)
    assert used < limit + 500_000  # at most one update past the limit, as for a SET
