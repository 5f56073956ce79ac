"""The Teal Agents framework's view of our stores: subclasses of its own base class.

The framework's factory accepts only subclasses of
``sk_agents.persistence.task_persistence_manager.TaskPersistenceManager``, hands them its
own ``AgentTask`` objects (whose items carry a semantic-kernel ``ChatHistory``) and catches
its own exception types. The classes here meet that contract and delegate to a
``teal_taskstore`` backend:

- tasks are converted both ways through their JSON form, so ``chat_history`` comes back as
  a ``ChatHistory`` and ``pending_tool_calls`` as the dicts the handler rebuilds tool calls
  from; a task whose JSON form would not come back as the framework's model is refused
  when it is written, never discovered when it is resumed;
- our errors become the framework's ``Persistence*Error`` of the operation, with a
  ``.message`` naming the operation and the id, and our error chained as the cause;
- the store version a task object saw travels with the object (see ``TaskVersions``), so
  of two replicas resuming one paused task, the second gets ``PersistenceUpdateError``
  instead of running its tools again.

Importing this module imports ``sk_agents``; ``teal_taskstore`` itself never does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from teal_taskstore.config import AppConfig
from teal_taskstore.errors import PersistenceError
from teal_taskstore.framework.task_versions import TaskVersions
from teal_taskstore.models import AgentTask
from teal_taskstore.persistence import in_memory_persistence_manager, redis_persistence_manager
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager

try:
    from sk_agents.exceptions import (
        PersistenceCreateError,
        PersistenceDeleteError,
        PersistenceLoadError,
        PersistenceUpdateError,
    )
    from sk_agents.persistence.task_persistence_manager import (
        TaskPersistenceManager as FrameworkTaskPersistenceManager,
    )
    from sk_agents.tealagents.models import AgentTask as FrameworkAgentTask
except ImportError as _missing:
    _package = (_missing.name or "sk_agents").split(".")[0]
    raise ImportError(
        f"teal_taskstore's Teal Agents adapter needs the package {_package!r}, which is not "
        f"importable here ({_missing}). It runs inside an agent that runs the Teal Agents "
        "framework (sk_agents); an agent without the framework uses "
        "teal_taskstore.PersistenceFactory instead.",
        name=_package,
    ) from _missing


class FrameworkAdapter(FrameworkTaskPersistenceManager):  # type: ignore[misc]
    """Any ``teal_taskstore`` backend, as a task store the Teal Agents framework accepts.

    Subclass it in a ``.py`` file to hand a backend of your own to the framework::

        class MyStore(FrameworkAdapter):
            def __init__(self, app_config: object = None) -> None:
                super().__init__(MyTealTaskstoreBackend())
    """

    def __init__(self, backend: TaskPersistenceManager) -> None:
        self._backend = backend
        self._versions = TaskVersions()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend!r})"

    @property
    def backend(self) -> TaskPersistenceManager:
        """The ``teal_taskstore`` manager this adapter delegates to."""
        return self._backend

    async def create(self, task: Any) -> None:
        """Store a new task; ``PersistenceCreateError`` if its id exists or it cannot be stored."""
        subject = f"create task {task.task_id!r}"
        ours = self._to_ours(task, PersistenceCreateError, subject)
        with _translated(PersistenceCreateError):
            await self._backend.create(ours)
        self._versions.remember(task, TaskPersistenceManager.seen_version(ours))

    async def load(self, task_id: str) -> Any:
        """The task with this id as the framework's ``AgentTask``, or ``None``."""
        with _translated(PersistenceLoadError):
            ours = await self._backend.load(task_id)
        return None if ours is None else self._to_framework(ours, f"load task {task_id!r}")

    async def update(self, task: Any) -> None:
        """Replace a stored task; ``PersistenceUpdateError`` if absent or written since loaded."""
        subject = f"update task {task.task_id!r}"
        ours = self._to_ours(task, PersistenceUpdateError, subject)
        version = self._versions.get(task)
        if version is not None:
            TaskPersistenceManager.remember_version(ours, version)
        with _translated(PersistenceUpdateError):
            await self._backend.update(ours)
        self._versions.remember(task, TaskPersistenceManager.seen_version(ours))

    async def delete(self, task_id: str) -> None:
        """Remove a task; ``PersistenceDeleteError`` if absent."""
        with _translated(PersistenceDeleteError):
            await self._backend.delete(task_id)

    async def load_by_request_id(self, request_id: str) -> Any:
        """A task that has an item with this request id, or ``None``."""
        with _translated(PersistenceLoadError):
            ours = await self._backend.load_by_request_id(request_id)
        if ours is None:
            return None
        return self._to_framework(ours, f"load task {ours.task_id!r} by request id {request_id!r}")

    async def health_check(self) -> bool:
        """Whether the backing store answers; for readiness probes."""
        return await self._backend.health_check()

    async def close(self) -> None:
        """Release the backend's connections."""
        await self._backend.close()

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
    def _to_ours(task: Any, error: type[Exception], subject: str) -> AgentTask:
        """Our model of a framework task, checked to come back as the framework's model."""
        try:
            data = task.model_dump(mode="json")
            type(task).model_validate(data)
            return AgentTask.model_validate(data)
        except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
            raise error(
                f"{subject}: the task cannot be stored (its JSON form does not come back as the "
                f"framework's AgentTask): {type(exc).__name__}: {exc}"
            ) from exc

    def _to_framework(self, ours: AgentTask, subject: str) -> Any:
        """The framework's model of a stored task; it remembers the version it came with."""
        try:
            task = FrameworkAgentTask.model_validate(ours.model_dump(mode="json"))
        except (ValueError, TypeError) as exc:
            raise PersistenceLoadError(
                f"{subject}: the stored task is not a valid framework AgentTask "
                f"(left as it is): {type(exc).__name__}: {exc}"
            ) from exc
        self._versions.remember(task, TaskPersistenceManager.seen_version(ours))
        return task


class InMemoryPersistenceManager(FrameworkAdapter):
    """``teal_taskstore``'s in-memory store, for the framework (one store per process)."""

    def __init__(self, app_config: object = None) -> None:
        # The framework's AppConfig refuses names it did not register; ours reads os.environ.
        del app_config
        super().__init__(in_memory_persistence_manager.InMemoryPersistenceManager(AppConfig()))


class RedisTaskPersistenceManager(FrameworkAdapter):
    """``teal_taskstore``'s Redis store, for the framework, configured by ``TA_REDIS_*``."""

    def __init__(self, app_config: object = None) -> None:
        # Read when built: the framework's AppConfig has copied TA_ENV_STORE into os.environ.
        del app_config
        super().__init__(redis_persistence_manager.RedisTaskPersistenceManager(AppConfig()))


@contextmanager
def _translated(error: type[Exception]) -> Iterator[None]:
    """Re-raise our ``PersistenceError`` as the framework's ``error``, same message, chained."""
    try:
        yield
    except PersistenceError as exc:
        raise error(str(exc)) from exc


__all__ = ["FrameworkAdapter", "InMemoryPersistenceManager", "RedisTaskPersistenceManager"]
