"""The task-store calls of the framework's handler, with tools run by a callable, not a model.

A turn is created (load, then create), paused for approval of tool calls (the pending calls
stored as dicts with the chat history), and resumed: the task found by request id must be
``Paused``; it is marked ``Running`` and updated *before* the tools run, so a second resume
of the same pause fails at that update; the calls are rebuilt from the dicts, run, and their
results added to the stored ``ChatHistory`` through its methods.
"""

import uuid
from collections.abc import Callable
from datetime import datetime

from semantic_kernel.contents import ChatMessageContent
from semantic_kernel.contents.chat_history import ChatHistory
from semantic_kernel.contents.function_call_content import FunctionCallContent
from semantic_kernel.contents.function_result_content import FunctionResultContent
from semantic_kernel.contents.utils.author_role import AuthorRole

from sk_agents.exceptions import AgentInvokeException
from sk_agents.persistence.task_persistence_manager import TaskPersistenceManager
from sk_agents.ska_types import MultiModalItem
from sk_agents.tealagents.models import AgentTask, AgentTaskItem

Tool = Callable[[FunctionCallContent], str]


class TealAgentsV1Alpha1Handler:
    """Drives one task store as the framework's handler does around a HITL pause."""

    def __init__(self, state_manager: TaskPersistenceManager) -> None:
        self.state = state_manager

    async def open_task(self, user_id: str, text: str) -> tuple[AgentTask, str]:
        """A new task with the user's turn; returns it and the turn's request id."""
        task_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
        if await self.state.load(task_id) is None:
            now = datetime.now()
            task = AgentTask(
                session_id=str(uuid.uuid4()),
                task_id=task_id,
                user_id=user_id,
                items=[_item(task_id, request_id, "user", text)],
                created_at=now,
                last_updated=now,
            )
            await self.state.create(task)
        return task, request_id

    async def pause_for_approval(
        self, request_id: str, chat_history: ChatHistory, calls: list[FunctionCallContent]
    ) -> AgentTask:
        """The model asked for tools that need a human: store the calls and the history."""
        task = await self.state.load_by_request_id(request_id)
        if task is None:
            raise AgentInvokeException(f"No agent task found for request ID: {request_id}")
        chat_history.add_message(ChatMessageContent(role=AuthorRole.ASSISTANT, items=calls))
        task.status = "Paused"
        paused = _item(task.task_id, request_id, "assistant", "HITL intervention required.")
        paused.pending_tool_calls = [call.model_dump() for call in calls]
        paused.chat_history = chat_history
        task.items.append(paused)
        task.last_updated = datetime.now()
        await self.state.update(task)
        return task

    async def resume_task(self, request_id: str, run_tool: Tool) -> ChatHistory:
        """Approve a paused task: mark it running, run its tools once, record their results."""
        task = await self.state.load_by_request_id(request_id)
        if task is None:
            raise AgentInvokeException(f"No agent task found for request ID: {request_id}")
        chat_history = task.items[-1].chat_history
        if chat_history is None:
            raise AgentInvokeException(f"Cannot resume {request_id}: no chat history kept")
        if task.status != "Paused":
            raise AgentInvokeException(
                f"Cannot resume task {task.task_id}: it is {task.status!r}, expected 'Paused'"
            )
        task.status = "Running"
        task.items.append(_item(task.task_id, request_id, "user", "tool execution approved"))
        task.last_updated = datetime.now()
        await self.state.update(task)

        pending = task.items[-2].pending_tool_calls or []
        for call in [FunctionCallContent(**call) for call in pending]:
            result = FunctionResultContent.from_function_call_content_and_result(
                call, run_tool(call)
            )
            chat_history.add_message(result.to_chat_message_content())
        task.items.append(_item(task.task_id, request_id, "assistant", "done"))
        task.status = "Completed"
        await self.state.update(task)
        return chat_history


def _item(task_id: str, request_id: str, role: str, text: str) -> AgentTaskItem:
    return AgentTaskItem.model_validate(
        {
            "task_id": task_id,
            "request_id": request_id,
            "role": role,
            "item": MultiModalItem(content=text),
            "updated": datetime.now(),
        }
    )
