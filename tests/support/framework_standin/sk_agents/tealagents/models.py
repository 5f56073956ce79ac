"""The stand-in framework's task models (fact 5), with semantic-kernel's real ``ChatHistory``."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from semantic_kernel.contents.chat_history import ChatHistory

from sk_agents.ska_types import MultiModalItem


class AgentTaskItem(BaseModel):
    """One turn; a paused turn keeps its tool calls (as dicts) and the chat history."""

    request_id: str
    task_id: str
    role: Literal["user", "assistant"]
    item: MultiModalItem
    updated: datetime
    pending_tool_calls: list[dict[str, Any]] | None = None
    chat_history: ChatHistory | None = None


class AgentTask(BaseModel):
    """A task and its turns."""

    session_id: str
    task_id: str
    user_id: str
    items: list[AgentTaskItem]
    created_at: datetime
    last_updated: datetime
    status: Literal["Running", "Paused", "Completed", "Failed", "Canceled"] = "Running"
