"""The task models, field for field as the Teal Agents framework defines them."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, PrivateAttr


class ContentType(StrEnum):
    """Kind of content a :class:`MultiModalItem` carries."""

    TEXT = "text"
    IMAGE = "image"


class MultiModalItem(BaseModel):
    """One piece of content: text, or an image reference."""

    content_type: ContentType = ContentType.TEXT
    content: str


class AgentTaskItem(BaseModel):
    """One turn of a task: who said what, for which request, and pending tool calls."""

    task_id: str
    role: Literal["user", "assistant"]
    item: MultiModalItem
    request_id: str
    updated: datetime
    pending_tool_calls: list[dict[str, Any]] | None = None
    # The framework stores its own ChatHistory here; any JSON-serialisable value is kept as is.
    chat_history: Any | None = None


TaskStatus = Literal["Running", "Paused", "Completed", "Failed", "Canceled"]


class AgentTask(BaseModel):
    """An agent task: its items and status, as stored by a ``TaskPersistenceManager``."""

    task_id: str
    session_id: str
    user_id: str
    items: list[AgentTaskItem]
    created_at: datetime
    last_updated: datetime
    status: TaskStatus = "Running"

    # The store version this object last saw (optimistic concurrency); never serialised.
    _store_version: int | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # Equal content is equal, whatever store version each copy last saw.
        if not isinstance(other, AgentTask):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    def request_ids(self) -> list[str]:
        """The distinct request ids of the task's items, in order of first appearance."""
        return list(dict.fromkeys(item.request_id for item in self.items))
