"""The framework's factory loads our entry file and runs a HITL task on each of our stores."""

import asyncio
from pathlib import Path

import pytest
import redis
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.function_call_content import FunctionCallContent
from sk_agents.exceptions import (
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceLoadError,
    PersistenceUpdateError,
)
from sk_agents.persistence.task_persistence_manager import TaskPersistenceManager
from sk_agents.tealagents.v1alpha1.agent.handler import TealAgentsV1Alpha1Handler

from support.framework_tasks import (
    LoadTogether,
    booking_call,
    framework_store,
    history_json,
    history_with_a_tool_call_and_result,
)
from support.redis_server import RedisServer
from teal_taskstore import ConfigurationError, PersistenceConflictError
from teal_taskstore.framework import IN_MEMORY_CLASS, REDIS_CLASS

BACKENDS = {"memory": IN_MEMORY_CLASS, "redis": REDIS_CLASS}


@pytest.fixture(params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest,
    entry_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_env: RedisServer,
) -> str:
    """The environment the operator injects for each backend (Redis: a real server)."""
    monkeypatch.setenv("TA_PERSISTENCE_MODULE", str(entry_file))
    monkeypatch.setenv("TA_PERSISTENCE_CLASS", BACKENDS[request.param])
    return str(request.param)


async def test_a_paused_task_with_tool_calls_is_resumed_through_our_store(backend: str) -> None:
    store = framework_store()
    assert isinstance(store, TaskPersistenceManager)
    assert type(store).__name__ == BACKENDS[backend]
    handler = TealAgentsV1Alpha1Handler(store)

    task, request_id = await handler.open_task("user-1", "Book me a flight to Lisbon")
    loaded = await store.load(task.task_id)
    assert loaded == task

    history = history_with_a_tool_call_and_result()
    paused = await handler.pause_for_approval(request_id, history, [booking_call()])
    stored = await store.load_by_request_id(request_id)
    # Equal in JSON form: semantic-kernel never serialises a result's provider object
    # (inner_content), so no store keeps it, the framework's own examples included.
    assert stored.model_dump(mode="json") == paused.model_dump(mode="json")
    assert stored.status == "Paused"
    kept = stored.items[-1].chat_history
    assert isinstance(kept, ChatHistory)
    assert history_json(kept) == history_json(history)
    assert [type(item).__name__ for message in kept.messages for item in message.items] == [
        "TextContent", "FunctionCallContent", "FunctionResultContent", "FunctionCallContent",
    ]  # fmt: skip
    assert stored.items[-1].pending_tool_calls == [booking_call().model_dump()]

    ran: list[str] = []

    def run_tool(call: FunctionCallContent) -> str:
        ran.append(call.function_name)
        return "booked"

    resumed = await handler.resume_task(request_id, run_tool)
    assert ran == ["book_flight"]
    done = await store.load(task.task_id)
    assert done.status == "Completed"
    assert history_json(done.items[-3].chat_history) == history_json(resumed)
    assert resumed.messages[-1].items[0].result == "booked"

    await store.delete(task.task_id)
    assert await store.load(task.task_id) is None
    assert await store.load_by_request_id(request_id) is None
    with pytest.raises(PersistenceDeleteError) as raised:
        await store.delete(task.task_id)
    assert task.task_id in raised.value.message
    assert "delete" in raised.value.message


async def test_two_replicas_resuming_one_paused_task_run_its_tools_once(backend: str) -> None:
    store = framework_store()
    handler = TealAgentsV1Alpha1Handler(store)
    task, request_id = await handler.open_task("user-1", "Book me a flight")
    await handler.pause_for_approval(
        request_id, history_with_a_tool_call_and_result(), [booking_call()]
    )

    # Redis: two agent replicas, each with its own store. In memory: one process, two requests.
    replicas = [store, type(store)() if backend == "redis" else store]
    barrier = asyncio.Barrier(2)
    ran: list[str] = []

    def run_tool(call: FunctionCallContent) -> str:
        ran.append(call.function_name)
        return "booked"

    results = await asyncio.gather(
        *[
            TealAgentsV1Alpha1Handler(LoadTogether(replica, barrier)).resume_task(
                request_id, run_tool
            )
            for replica in replicas
        ],
        return_exceptions=True,
    )
    assert ran == ["book_flight"]
    [refused] = [result for result in results if isinstance(result, BaseException)]
    assert sum(isinstance(result, ChatHistory) for result in results) == 1
    assert isinstance(refused, PersistenceUpdateError)
    assert task.task_id in refused.message
    assert "someone else" in refused.message
    assert isinstance(refused.__cause__, PersistenceConflictError)
    assert (await store.load(task.task_id)).status == "Completed"


async def test_our_errors_arrive_as_the_frameworks_with_a_message(backend: str) -> None:
    store = framework_store()
    task, _ = await TealAgentsV1Alpha1Handler(store).open_task("user-1", "hello")
    with pytest.raises(PersistenceCreateError) as created:
        await store.create(task)
    assert task.task_id in created.value.message
    assert str(created.value) == created.value.message

    await store.delete(task.task_id)
    with pytest.raises(PersistenceUpdateError) as updated:
        await store.update(task)
    assert task.task_id in updated.value.message
    assert "no such task" in updated.value.message


@pytest.mark.parametrize("unholdable", [object(), b"\xff not UTF-8"], ids=["object", "bytes"])
async def test_a_chat_history_the_store_cannot_hold_is_refused_and_the_task_kept(
    backend: str, unholdable: object
) -> None:
    store = framework_store()
    handler = TealAgentsV1Alpha1Handler(store)
    task, request_id = await handler.open_task("user-1", "hello")
    before = await store.load(task.task_id)

    history = history_with_a_tool_call_and_result()
    history.messages[0].metadata["kept"] = unholdable  # JSON cannot hold it
    with pytest.raises(PersistenceUpdateError) as updated:
        await handler.pause_for_approval(request_id, history, [booking_call()])
    assert task.task_id in updated.value.message
    assert "cannot be stored" in updated.value.message
    assert await store.load(task.task_id) == before

    broken = before.model_copy(deep=True)
    broken.task_id = "task-that-cannot-be-stored"
    broken.items[0].chat_history = history
    with pytest.raises(PersistenceCreateError) as created:
        await store.create(broken)
    assert "task-that-cannot-be-stored" in created.value.message
    assert await store.load("task-that-cannot-be-stored") is None


async def test_loaded_tasks_carry_no_trace_of_their_version(backend: str) -> None:
    store = framework_store()
    task, _ = await TealAgentsV1Alpha1Handler(store).open_task("user-1", "hello")
    loaded = await store.load(task.task_id)
    again = await store.load(task.task_id)
    assert loaded == again == task
    assert loaded.model_dump() == task.model_dump()
    assert set(vars(loaded)) == set(type(loaded).model_fields)


async def test_settings_the_framework_does_not_register_are_read_from_the_environment(
    redis_env: RedisServer, entry_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TA_PERSISTENCE_MODULE", str(entry_file))
    monkeypatch.setenv("TA_PERSISTENCE_CLASS", REDIS_CLASS)
    # TA_ENV_STORE entries reach os.environ when the framework's AppConfig is built (fact 8).
    monkeypatch.setenv("TA_ENV_STORE", '{"TA_REDIS_KEY_PREFIX": "team-a:"}')
    store = framework_store()
    task, _ = await TealAgentsV1Alpha1Handler(store).open_task("user-1", "hello")
    client = redis.Redis(port=redis_env.port, decode_responses=True)
    try:
        keys = [str(key) for key in client.keys("*")]
    finally:
        client.close()
    assert keys
    assert all(key.startswith("team-a:") for key in keys)
    assert any(task.task_id in key for key in keys)


async def test_a_wrong_password_is_a_load_error_that_never_shows_it(
    entry_file: Path, monkeypatch: pytest.MonkeyPatch, fresh_framework: None
) -> None:
    password = "the-wrong-password-41"
    server = RedisServer("--requirepass", "the-right-one")
    server.start()
    try:
        for name, value in {
            "TA_PERSISTENCE_MODULE": str(entry_file),
            "TA_PERSISTENCE_CLASS": REDIS_CLASS,
            "TA_REDIS_HOST": "127.0.0.1",
            "TA_REDIS_PORT": str(server.port),
            "TA_REDIS_PWD": password,
        }.items():
            monkeypatch.setenv(name, value)
        store = framework_store()
        with pytest.raises(PersistenceLoadError) as raised:
            await store.load("task-1")
        assert "task-1" in raised.value.message
        error: BaseException | None = raised.value
        while error is not None:
            assert password not in str(error)
            assert password not in repr(error)
            error = error.__cause__ or error.__context__
        await store.close()
    finally:
        server.cleanup()


async def test_a_stored_task_the_framework_cannot_read_is_a_load_error_and_stays(
    backend: str,
) -> None:
    store = framework_store()
    task, request_id = await TealAgentsV1Alpha1Handler(store).open_task("user-1", "hello")
    ours = await store.backend.load(task.task_id)
    ours.items[0].chat_history = {"messages": "not a list of messages"}
    await store.backend.update(ours)  # written by an agent of another kind, say
    for load in (store.load(task.task_id), store.load_by_request_id(request_id)):
        with pytest.raises(PersistenceLoadError) as raised:
            await load
        assert task.task_id in raised.value.message
        assert "not a valid framework AgentTask" in raised.value.message
    assert await store.backend.load(task.task_id) == ours


async def test_a_copy_of_a_loaded_task_carries_no_version_and_replaces(backend: str) -> None:
    store = framework_store()
    task, _ = await TealAgentsV1Alpha1Handler(store).open_task("user-1", "hello")
    loaded = await store.load(task.task_id)
    copy = loaded.model_copy(deep=True)
    loaded.status = "Failed"
    await store.update(loaded)
    copy.status = "Canceled"
    await store.update(copy)  # built by the caller, as from scratch: replaces
    assert (await store.load(task.task_id)).status == "Canceled"
    loaded.status = "Completed"
    with pytest.raises(PersistenceUpdateError, match="someone else"):
        await store.update(loaded)


async def test_a_bad_setting_stops_the_agent_at_start_up_naming_it(
    entry_file: Path, monkeypatch: pytest.MonkeyPatch, fresh_framework: None
) -> None:
    monkeypatch.setenv("TA_PERSISTENCE_MODULE", str(entry_file))
    monkeypatch.setenv("TA_PERSISTENCE_CLASS", REDIS_CLASS)
    monkeypatch.setenv("TA_REDIS_PORT", "six-three-seven-nine")
    with pytest.raises(ConfigurationError, match="TA_REDIS_PORT"):
        framework_store()
