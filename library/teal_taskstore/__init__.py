"""Task persistence for Teal Agents: in-memory, Redis, or a backend of your own.

Usage::

    from teal_taskstore import AppConfig, PersistenceFactory

    manager = PersistenceFactory(AppConfig()).get_persistence_manager()
    await manager.create(task)
"""

from teal_taskstore.config import AppConfig
from teal_taskstore.errors import (
    ConfigurationError,
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceError,
    PersistenceLoadError,
    PersistenceNotReplicatedError,
    PersistenceUpdateError,
)
from teal_taskstore.models import AgentTask, AgentTaskItem, ContentType, MultiModalItem
from teal_taskstore.persistence.in_memory_persistence_manager import InMemoryPersistenceManager
from teal_taskstore.persistence.persistence_factory import PersistenceFactory
from teal_taskstore.persistence.redis_persistence_manager import RedisTaskPersistenceManager
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager

__all__ = [
    "AgentTask",
    "AgentTaskItem",
    "AppConfig",
    "ConfigurationError",
    "ContentType",
    "InMemoryPersistenceManager",
    "MultiModalItem",
    "PersistenceConflictError",
    "PersistenceCreateError",
    "PersistenceDeleteError",
    "PersistenceError",
    "PersistenceFactory",
    "PersistenceLoadError",
    "PersistenceNotReplicatedError",
    "PersistenceUpdateError",
    "RedisTaskPersistenceManager",
    "TaskPersistenceManager",
]
