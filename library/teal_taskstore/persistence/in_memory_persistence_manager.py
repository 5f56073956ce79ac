"""``InMemoryPersistenceManager``: the default backend, one dictionary per manager."""

from dataclasses import dataclass

from teal_taskstore.config import AppConfig
from teal_taskstore.errors import (
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceUpdateError,
)
from teal_taskstore.models import AgentTask
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager


@dataclass
class _StoredTask:
    json: str
    request_ids: list[str]
    version: int


class InMemoryPersistenceManager(TaskPersistenceManager):
    """Keeps tasks in process memory, for development and single-replica agents.

    Tasks are kept as JSON snapshots, so mutating a loaded task never changes the stored
    one, and a task that Redis could not store fails here too. Every method runs without
    awaiting, so each operation is atomic within the event loop. A request id names the
    task that wrote it last, as in the Redis backend.
    """

    def __init__(self, app_config: AppConfig | None = None) -> None:
        self._tasks: dict[str, _StoredTask] = {}
        self._task_id_by_request: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"InMemoryPersistenceManager(tasks={len(self._tasks)})"

    async def create(self, task: AgentTask) -> None:
        subject = f"create task {task.task_id!r}"
        if task.task_id in self._tasks:
            raise PersistenceCreateError(f"{subject}: a task with this id already exists")
        self._store(task, self.task_json(task, PersistenceCreateError, subject), version=1)

    async def load(self, task_id: str) -> AgentTask | None:
        stored = self._tasks.get(task_id)
        return None if stored is None else self._copy_out(stored)

    async def update(self, task: AgentTask) -> None:
        subject = f"update task {task.task_id!r}"
        stored = self._tasks.get(task.task_id)
        if stored is None:
            raise PersistenceUpdateError(f"{subject}: no such task")
        seen = self.seen_version(task)
        if seen is not None and seen != stored.version:
            raise PersistenceConflictError(
                f"{subject}: written by someone else since this copy was loaded "
                f"(copy has version {seen}, store has {stored.version}); load it again"
            )
        task_json = self.task_json(task, PersistenceUpdateError, subject)
        self._unindex(task.task_id, stored)
        self._store(task, task_json, version=stored.version + 1)

    async def delete(self, task_id: str) -> None:
        stored = self._tasks.pop(task_id, None)
        if stored is None:
            raise PersistenceDeleteError(f"delete task {task_id!r}: no such task")
        self._unindex(task_id, stored)

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        task_id = self._task_id_by_request.get(request_id)
        return None if task_id is None else self._copy_out(self._tasks[task_id])

    def _store(self, task: AgentTask, task_json: str, version: int) -> None:
        request_ids = task.request_ids()
        self._tasks[task.task_id] = _StoredTask(task_json, request_ids, version)
        for request_id in request_ids:
            self._task_id_by_request[request_id] = task.task_id
        self.remember_version(task, version)

    def _unindex(self, task_id: str, stored: _StoredTask) -> None:
        """Drop the entries of the task's request ids that still name it."""
        for request_id in stored.request_ids:
            if self._task_id_by_request.get(request_id) == task_id:
                del self._task_id_by_request[request_id]

    def _copy_out(self, stored: _StoredTask) -> AgentTask:
        task = AgentTask.model_validate_json(stored.json)
        self.remember_version(task, stored.version)
        return task
