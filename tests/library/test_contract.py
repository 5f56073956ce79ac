"""The contract every backend keeps (library-api.md, "Semantics"), run on each backend."""

import asyncio

import pytest

from support.library_backends import Backend, make_item, make_task
from teal_taskstore import (
    AgentTask,
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceError,
    PersistenceUpdateError,
    TaskPersistenceManager,
)


async def test_create_then_load_returns_an_equal_task(manager: TaskPersistenceManager) -> None:
    task = make_task(request_ids=("req-1", "req-2"), status="Paused")
    await manager.create(task)
    loaded = await manager.load("task-1")
    assert loaded == task
    assert loaded is not task


async def test_load_of_an_absent_task_is_none(manager: TaskPersistenceManager) -> None:
    assert await manager.load("nope") is None
    assert await manager.load_by_request_id("nope") is None


async def test_create_of_an_existing_id_fails_and_keeps_the_first(
    manager: TaskPersistenceManager,
) -> None:
    await manager.create(make_task(user_id="first"))
    with pytest.raises(PersistenceCreateError, match="task-1"):
        await manager.create(make_task(user_id="second"))
    loaded = await manager.load("task-1")
    assert loaded is not None and loaded.user_id == "first"


async def test_mutating_a_loaded_or_created_task_does_not_change_the_stored_one(
    manager: TaskPersistenceManager,
) -> None:
    task = make_task()
    await manager.create(task)
    task.items.append(make_item("task-1", "req-x"))
    loaded = await manager.load("task-1")
    assert loaded is not None
    loaded.items.clear()
    loaded.status = "Failed"
    again = await manager.load("task-1")
    assert again is not None
    assert [i.request_id for i in again.items] == ["req-1"]
    assert again.status == "Running"


async def test_update_replaces_the_stored_task(manager: TaskPersistenceManager) -> None:
    await manager.create(make_task())
    task = await manager.load("task-1")
    assert task is not None
    task.items.append(make_item("task-1", "req-2", "more"))
    task.status = "Completed"
    await manager.update(task)
    # The same object may be updated again: it remembers the version it wrote.
    task.status = "Failed"
    await manager.update(task)
    stored = await manager.load("task-1")
    assert stored == task


async def test_update_of_an_absent_task_fails(manager: TaskPersistenceManager) -> None:
    with pytest.raises(PersistenceUpdateError, match="task-1") as raised:
        await manager.update(make_task())
    assert not isinstance(raised.value, PersistenceConflictError)
    assert await manager.load("task-1") is None


async def test_a_task_built_from_scratch_replaces_what_is_stored(
    manager: TaskPersistenceManager,
) -> None:
    await manager.create(make_task())
    other = await manager.load("task-1")
    assert other is not None
    await manager.update(other)
    await manager.update(make_task(user_id="rebuilt"))  # carries no version: replaces
    stored = await manager.load("task-1")
    assert stored is not None and stored.user_id == "rebuilt"


async def test_second_of_two_stale_updates_conflicts_and_nothing_is_lost(
    backend: Backend,
) -> None:
    first_replica, second_replica = backend.new_manager(), backend.new_manager()
    await first_replica.create(make_task())
    first = await first_replica.load("task-1")
    second = await second_replica.load("task-1")
    assert first is not None and second is not None
    first.items.append(make_item("task-1", "req-a"))
    await first_replica.update(first)
    second.items.append(make_item("task-1", "req-b"))
    with pytest.raises(PersistenceConflictError, match="task-1"):
        await second_replica.update(second)
    stored = await second_replica.load("task-1")
    assert stored is not None
    assert [i.request_id for i in stored.items] == ["req-1", "req-a"]


RESUME_TRIALS = 100


async def test_a_paused_task_is_resumed_exactly_once(backend: Backend) -> None:
    """The framework's own store resumed a paused task twice in 300 of 300 trials."""
    replicas = [backend.new_manager() for _ in range(4)]

    async def resume(replica: TaskPersistenceManager, task: AgentTask) -> bool:
        task.status = "Running"
        try:
            await replica.update(task)
        except PersistenceConflictError:
            return False
        return True

    resumed_once = 0
    for trial in range(RESUME_TRIALS):
        task_id = f"paused-{trial}"
        await replicas[0].create(make_task(task_id, status="Paused"))
        loaded = [await replica.load(task_id) for replica in replicas]
        results = await asyncio.gather(
            *(resume(r, t) for r, t in zip(replicas, loaded, strict=True) if t is not None)
        )
        resumed_once += results.count(True) == 1 and len(results) == 4
    assert resumed_once == RESUME_TRIALS


async def test_two_replicas_appending_to_one_task_lose_no_item(backend: Backend) -> None:
    """The framework's own store lost 165 of 400 items this way; retry on conflict loses none."""
    replicas = [backend.new_manager(), backend.new_manager()]
    await replicas[0].create(make_task(request_ids=()))

    async def append(replica: TaskPersistenceManager, request_id: str) -> None:
        while True:
            task = await replica.load("task-1")
            assert task is not None
            await asyncio.sleep(0)  # let the other replica interleave
            task.items.append(make_item("task-1", request_id))
            try:
                await replica.update(task)
                return
            except PersistenceConflictError:
                continue

    async def replica_appends(number: int) -> None:
        for n in range(200):
            await append(replicas[number], f"req-{number}-{n}")

    await asyncio.gather(replica_appends(0), replica_appends(1))
    stored = await replicas[0].load("task-1")
    assert stored is not None
    expected = {f"req-{r}-{n}" for r in (0, 1) for n in range(200)}
    assert len(stored.items) == 400
    assert {i.request_id for i in stored.items} == expected


async def test_concurrent_creates_of_one_id_from_two_managers_let_exactly_one_win(
    backend: Backend,
) -> None:
    replicas = [backend.new_manager(), backend.new_manager()]

    async def create(n: int) -> bool:
        try:
            await replicas[n % 2].create(make_task(user_id=f"user-{n}"))
        except PersistenceCreateError:
            return False
        return True

    results = await asyncio.gather(*(create(n) for n in range(20)))
    assert results.count(True) == 1
    winner = results.index(True)
    stored = await replicas[1].load("task-1")
    assert stored is not None and stored.user_id == f"user-{winner}"


async def test_delete_removes_the_task_and_its_index(manager: TaskPersistenceManager) -> None:
    await manager.create(make_task(request_ids=("req-1", "req-2")))
    await manager.delete("task-1")
    assert await manager.load("task-1") is None
    assert await manager.load_by_request_id("req-1") is None
    assert await manager.load_by_request_id("req-2") is None
    await manager.create(make_task())  # the id is free again


async def test_delete_of_an_absent_task_fails(manager: TaskPersistenceManager) -> None:
    with pytest.raises(PersistenceDeleteError, match="task-1"):
        await manager.delete("task-1")


async def test_load_by_request_id_finds_the_task_holding_it(
    manager: TaskPersistenceManager,
) -> None:
    await manager.create(make_task("task-1", ("req-1", "req-2")))
    await manager.create(make_task("task-2", ("req-3",)))
    for request_id, task_id in [("req-1", "task-1"), ("req-2", "task-1"), ("req-3", "task-2")]:
        found = await manager.load_by_request_id(request_id)
        assert found is not None and found.task_id == task_id
        assert request_id in found.request_ids()


async def test_update_that_changes_request_ids_moves_the_index(
    manager: TaskPersistenceManager,
) -> None:
    await manager.create(make_task(request_ids=("old",)))
    task = await manager.load("task-1")
    assert task is not None
    task.items = [make_item("task-1", "new")]
    await manager.update(task)
    assert await manager.load_by_request_id("old") is None
    found = await manager.load_by_request_id("new")
    assert found is not None and found.task_id == "task-1"


async def test_a_task_loaded_by_request_id_can_be_updated(manager: TaskPersistenceManager) -> None:
    await manager.create(make_task())
    task = await manager.load_by_request_id("req-1")
    assert task is not None
    task.status = "Completed"
    await manager.update(task)
    stored = await manager.load("task-1")
    assert stored is not None and stored.status == "Completed"


async def test_every_failure_names_the_operation_and_id(manager: TaskPersistenceManager) -> None:
    failures: list[PersistenceError] = []
    for operation in (manager.update(make_task("ghost")), manager.delete("ghost")):
        with pytest.raises(PersistenceError) as raised:
            await operation
        failures.append(raised.value)
    await manager.create(make_task("ghost"))
    with pytest.raises(PersistenceError) as raised:
        await manager.create(make_task("ghost"))
    failures.append(raised.value)
    for failure, name in zip(failures, ["update", "delete", "create"], strict=True):
        assert name in str(failure)
        assert "'ghost'" in str(failure)


async def test_version_is_never_serialised(manager: TaskPersistenceManager) -> None:
    task = make_task()
    await manager.create(task)
    await manager.update(task)
    assert "version" not in task.model_dump_json()
    assert TaskPersistenceManager.seen_version(task) == 2


async def test_async_with_closes_and_health_check_answers(backend: Backend) -> None:
    async with backend.new_manager() as manager:
        assert await manager.health_check() is True
        await manager.create(make_task())


async def test_a_task_json_cannot_hold_fails_with_the_operation_error(
    manager: TaskPersistenceManager,
) -> None:
    unstorable = make_task()
    unstorable.items[0].chat_history = {"history": object()}
    with pytest.raises(PersistenceCreateError, match="create task 'task-1'") as raised:
        await manager.create(unstorable)
    assert raised.value.__cause__ is not None
    assert await manager.load("task-1") is None
    await manager.create(make_task())
    with pytest.raises(PersistenceUpdateError, match="update task 'task-1'"):
        await manager.update(unstorable)
    stored = await manager.load("task-1")
    assert stored == make_task()


async def test_a_request_id_two_tasks_hold_finds_the_task_that_wrote_it_last(
    manager: TaskPersistenceManager,
) -> None:
    """The documented rule on every backend (the framework gives each request id one task)."""

    async def holder() -> str | None:
        found = await manager.load_by_request_id("shared")
        return None if found is None else found.task_id

    await manager.create(make_task("task-2", ("shared",)))
    await manager.create(make_task("task-1", ("shared",)))
    assert await holder() == "task-1"
    task_2 = await manager.load("task-2")
    assert task_2 is not None
    await manager.update(task_2)
    assert await holder() == "task-2"
    await manager.delete("task-2")  # the task it names is gone: until task-1 writes again
    assert await holder() is None
    task_1 = await manager.load("task-1")
    assert task_1 is not None
    await manager.update(task_1)
    assert await holder() == "task-1"
