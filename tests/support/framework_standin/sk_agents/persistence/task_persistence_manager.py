"""The stand-in framework's task store interface (fact 4: custom stores must subclass it)."""

from abc import ABC, abstractmethod

from sk_agents.tealagents.models import AgentTask


class TaskPersistenceManager(ABC):
    """Stores the framework's ``AgentTask`` objects."""

    @abstractmethod
    async def create(self, task: AgentTask) -> None: ...

    @abstractmethod
    async def load(self, task_id: str) -> AgentTask | None: ...

    @abstractmethod
    async def update(self, task: AgentTask) -> None: ...

    @abstractmethod
    async def delete(self, task_id: str) -> None: ...

    @abstractmethod
    async def load_by_request_id(self, request_id: str) -> AgentTask | None: ...
