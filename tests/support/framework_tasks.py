"""Chat histories and stores for the framework tier (needs the stand-in on sys.path)."""

import asyncio
from typing import Any

import sk_agents.configs  # noqa: F401  (registers the framework's settings)
from semantic_kernel.contents import ChatMessageContent
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.function_call_content import FunctionCallContent
from semantic_kernel.contents.function_result_content import FunctionResultContent
from semantic_kernel.contents.utils.author_role import AuthorRole
from sk_agents.persistence.persistence_factory import PersistenceFactory
from sk_agents.persistence.task_persistence_manager import TaskPersistenceManager
from ska_utils import AppConfig


def framework_store() -> TaskPersistenceManager:
    """What the framework does at start-up: its factory, from its AppConfig."""
    return PersistenceFactory(AppConfig()).get_persistence_manager()


def history_with_a_tool_call_and_result() -> ChatHistory:
    """A user turn, a tool call the model made and the tool's result."""
    history = ChatHistory()
    history.add_user_message("Book me a flight to Lisbon on Friday")
    lookup = FunctionCallContent(
        id="call-lookup", plugin_name="travel", function_name="find_flights",
        arguments='{"to": "LIS", "day": "Friday"}',
    )  # fmt: skip
    history.add_message(ChatMessageContent(role=AuthorRole.ASSISTANT, items=[lookup]))
    result = FunctionResultContent.from_function_call_content_and_result(lookup, "TP1353 09:05")
    history.add_message(result.to_chat_message_content())
    return history


def booking_call() -> FunctionCallContent:
    """A tool call that needs a human's approval."""
    return FunctionCallContent(
        id="call-book", plugin_name="travel", function_name="book_flight",
        arguments='{"flight": "TP1353"}',
    )  # fmt: skip


def history_json(history: Any) -> Any:
    """A history's JSON form, for comparing histories."""
    return history.model_dump(mode="json")


class LoadTogether:
    """A store whose ``load_by_request_id`` waits until ``parties`` callers have loaded.

    Two resumes through it both see the paused task before either writes: the race that
    optimistic concurrency must settle.
    """

    def __init__(self, store: TaskPersistenceManager, barrier: asyncio.Barrier) -> None:
        self._store = store
        self._barrier = barrier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def load_by_request_id(self, request_id: str) -> Any:
        task = await self._store.load_by_request_id(request_id)
        await self._barrier.wait()
        return task
