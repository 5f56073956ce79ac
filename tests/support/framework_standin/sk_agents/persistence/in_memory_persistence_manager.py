"""The stand-in framework's own in-memory store (what it uses with the default pair)."""

from sk_agents.exceptions import (
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceUpdateError,
)
from sk_agents.tealagents.models import AgentTask

from .task_persistence_manager import TaskPersistenceManager


class InMemoryPersistenceManager(TaskPersistenceManager):
    """Keeps the task objects themselves in a dict."""

    def __init__(self) -> None:
        self.tasks: dict[str, AgentTask] = {}

    async def create(self, task: AgentTask) -> None:
        if task.task_id in self.tasks:
            raise PersistenceCreateError(f"Task with ID '{task.task_id}' already exists.")
        self.tasks[task.task_id] = task

    async def load(self, task_id: str) -> AgentTask | None:
        return self.tasks.get(task_id)

    async def update(self, task: AgentTask) -> None:
        if task.task_id not in self.tasks:
            raise PersistenceUpdateError(f"Task with ID '{task.task_id}' does not exist.")
        self.tasks[task.task_id] = task

    async def delete(self, task_id: str) -> None:
        if self.tasks.pop(task_id, None) is None:
            raise PersistenceDeleteError(f"Task with ID '{task_id}' does not exist.")

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        for task in self.tasks.values():
            if any(item.request_id == request_id for item in task.items):
                return task
        return None
