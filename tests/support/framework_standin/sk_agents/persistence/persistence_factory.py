"""The stand-in framework's factory (facts 1-4)."""

from typing import Any

from ska_utils import AppConfig, ModuleLoader

from sk_agents.configs import TA_PERSISTENCE_CLASS, TA_PERSISTENCE_MODULE

from .in_memory_persistence_manager import InMemoryPersistenceManager
from .singleton import Singleton
from .task_persistence_manager import TaskPersistenceManager


class PersistenceFactory(metaclass=Singleton):
    """Loads the custom module when built (an error stops the agent); builds the store."""

    def __init__(self, app_config: AppConfig) -> None:
        self.app_config = app_config
        module_name = app_config.get(TA_PERSISTENCE_MODULE.env_name)
        self.class_name = app_config.get(TA_PERSISTENCE_CLASS.env_name)
        self.module: Any = None
        defaults = (TA_PERSISTENCE_MODULE.default_value, TA_PERSISTENCE_CLASS.default_value)
        if (module_name, self.class_name) == defaults or not (module_name and self.class_name):
            return  # the framework's own in-memory store
        try:
            self.module = ModuleLoader.load_module(module_name)
        except Exception as exc:
            raise ImportError(f"Failed to load module '{module_name}': {exc}") from exc
        if not hasattr(self.module, self.class_name):
            raise ValueError(f"Class {self.class_name} not found in module {module_name}")
        if not issubclass(getattr(self.module, self.class_name), TaskPersistenceManager):
            raise TypeError(
                f"Class '{self.class_name}' is not a subclass of TaskPersistenceManager."
            )

    def get_persistence_manager(self) -> TaskPersistenceManager:
        """The configured store: the custom class, or the framework's own in-memory one."""
        if self.module is None:
            return InMemoryPersistenceManager()
        manager_class = getattr(self.module, str(self.class_name))
        try:
            manager: TaskPersistenceManager = manager_class(app_config=self.app_config)
        except TypeError:
            manager = manager_class()
        return manager
