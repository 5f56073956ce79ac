"""``TaskPersistenceManager``: the interface every backend implements."""

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from pydantic_core import PydanticSerializationError

from teal_taskstore.errors import PersistenceError
from teal_taskstore.models import AgentTask


class TaskPersistenceManager(ABC):
    """Stores agent tasks. Subclass it and implement the five async methods for a custom backend.

    Semantics every backend keeps (see the README): ``create`` fails when the id exists,
    ``load`` returns ``None`` for an absent task, ``update`` and ``delete`` fail when it is
    absent, and ``update`` of a task object that remembers an older store version than the
    stored one raises ``PersistenceConflictError``.
    """

    @abstractmethod
    async def create(self, task: AgentTask) -> None:
        """Store a new task; ``PersistenceCreateError`` if its id exists."""

    @abstractmethod
    async def load(self, task_id: str) -> AgentTask | None:
        """The task with this id, or ``None``."""

    @abstractmethod
    async def update(self, task: AgentTask) -> None:
        """Replace a stored task; ``PersistenceUpdateError`` if absent or written since loaded."""

    @abstractmethod
    async def delete(self, task_id: str) -> None:
        """Remove a task and its request-id index entries; ``PersistenceDeleteError`` if absent."""

    @abstractmethod
    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        """A task that has an item with this request id, or ``None``."""

    async def health_check(self) -> bool:
        """Whether the backing store answers; for readiness probes."""
        return True

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections; the manager is not used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @staticmethod
    def task_json(task: AgentTask, error: type[PersistenceError], subject: str) -> str:
        """The task as JSON; a value JSON cannot hold raises ``error`` naming the operation."""
        try:
            return task.model_dump_json()
        except PydanticSerializationError as exc:
            raise error(f"{subject}: the task cannot be stored as JSON: {exc}") from exc

    @staticmethod
    def seen_version(task: AgentTask) -> int | None:
        """The store version ``task`` last saw, or ``None`` for a task built from scratch."""
        # Straight from pydantic's dict of private attributes: the attribute protocol of a
        # model costs microseconds per access, on every write.
        version: int | None = task.__pydantic_private__["_store_version"]  # type: ignore[index]
        return version

    @staticmethod
    def remember_version(task: AgentTask, version: int) -> None:
        """Record on ``task`` the store version it now matches (never serialised)."""
        task.__pydantic_private__["_store_version"] = version  # type: ignore[index]
