"""Write tokens on a real redis-server: unique per write across processes, and retries that
recognise their own earlier success."""

import asyncio
import multiprocessing
from collections.abc import Callable
from multiprocessing.queues import Queue

import pytest

from support.library_backends import flush, make_item, make_task, redis_env
from support.redis_proxy import reply_losing_proxy
from support.redis_server import RedisServer
from teal_taskstore import (
    AgentTask,
    PersistenceConflictError,
    PersistenceCreateError,
    RedisTaskPersistenceManager,
)

CHILDREN = 4

# Built before the fork, as gunicorn --preload or a Celery prefork worker would.
_inherited: RedisTaskPersistenceManager | None = None
_loaded: AgentTask | None = None


def _create_in_forked_child(child: int) -> bool:
    async def create() -> bool:
        assert _inherited is not None
        try:
            await _inherited.create(make_task("forked", user_id=f"child-{child}"))
        except PersistenceCreateError:
            return False
        finally:
            await _inherited.close()
        return True

    return asyncio.run(create())


def _update_in_forked_child(child: int) -> bool:
    async def update() -> bool:
        assert _inherited is not None and _loaded is not None
        _loaded.items.append(make_item("loaded", f"child-{child}"))
        try:
            await _inherited.update(_loaded)
        except PersistenceConflictError:
            return False
        finally:
            await _inherited.close()
        return True

    return asyncio.run(update())


def _report(function: Callable[[int], bool], child: int, results: "Queue[bool]") -> None:
    results.put(function(child))


def _in_forked_children(function: Callable[[int], bool]) -> list[bool]:
    """Run ``function`` once in each of several children forked from this process."""
    context = multiprocessing.get_context("fork")
    results: Queue[bool] = context.Queue()
    children = [
        context.Process(target=_report, args=(function, child, results))
        for child in range(CHILDREN)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
    return outcomes


def test_forked_children_of_one_manager_never_share_a_write_token(
    redis_server: RedisServer,
) -> None:
    """Of the children creating one id exactly one wins; of those updating one version too."""
    global _inherited, _loaded
    flush(redis_server)

    async def create_and_load() -> AgentTask | None:
        async with RedisTaskPersistenceManager(redis_env(redis_server)) as other:
            await other.create(make_task("loaded"))
            return await other.load("loaded")

    _loaded = asyncio.run(create_and_load())
    _inherited = RedisTaskPersistenceManager(redis_env(redis_server))
    try:
        assert _in_forked_children(_create_in_forked_child).count(True) == 1
        assert _in_forked_children(_update_in_forked_child).count(True) == 1
    finally:
        _inherited = _loaded = None


@pytest.mark.parametrize("operation", ["create", "update", "update from scratch", "delete"])
async def test_a_write_retried_after_a_lost_reply_never_undoes_another_writers_work(
    redis_server: RedisServer, operation: str
) -> None:
    """The write runs, its reply is lost, another writer writes, then the retry runs."""
    flush(redis_server)
    other = RedisTaskPersistenceManager(redis_env(redis_server))
    async with reply_losing_proxy(redis_server.port) as proxy:
        settings = {"TA_REDIS_PORT": str(proxy.port), "TA_REDIS_RETRIES": "2"}
        mine = RedisTaskPersistenceManager(redis_env(redis_server, **settings))
        async with mine, other:
            # Scripts loaded first, so the reply lost is the write's, not a NOSCRIPT.
            warm = make_task("warm", ("warm",))
            await mine.create(warm)
            await mine.update(warm)
            await mine.delete("warm")
            task = make_task()
            if operation != "create":
                await other.create(make_task())
                loaded = await mine.load("task-1")
                assert loaded is not None
                task = loaded if operation == "update" else make_task(user_id="rebuilt")
                task.items.append(make_item("task-1", "mine"))

            async def another_writer() -> None:
                if operation == "delete":
                    await other.create(make_task(user_id="created-after-the-delete"))
                    return
                theirs = await other.load("task-1")
                assert theirs is not None
                theirs.items.append(make_item("task-1", "theirs"))
                await other.update(theirs)

            proxy.lose_next_reply(b"EVALSHA", another_writer)
            if operation == "delete":
                await mine.delete("task-1")
            elif operation == "create":
                await mine.create(task)
            else:
                await mine.update(task)
            assert proxy.replies_lost == 1
            stored = await other.load("task-1")
    assert stored is not None
    if operation == "delete":
        assert stored.user_id == "created-after-the-delete"
    else:
        expected = ["req-1", "theirs"] if operation == "create" else ["req-1", "mine", "theirs"]
        assert [item.request_id for item in stored.items] == expected
