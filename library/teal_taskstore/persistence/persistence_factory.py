"""``PersistenceFactory``: builds the backend that ``TA_PERSISTENCE_MODULE``/``_CLASS`` name."""

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from teal_taskstore.config import TA_PERSISTENCE_CLASS, TA_PERSISTENCE_MODULE, AppConfig
from teal_taskstore.errors import ConfigurationError
from teal_taskstore.persistence.in_memory_persistence_manager import InMemoryPersistenceManager
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager


class PersistenceFactory:
    """Chooses and builds the task persistence backend from the configuration.

    Neither variable set: the in-memory backend. Both set: the class ``TA_PERSISTENCE_CLASS``
    from ``TA_PERSISTENCE_MODULE``, a file path (``/app/custom/my_store.py``) or a dotted
    module path. The manager is built once per factory and then shared.
    """

    def __init__(self, app_config: AppConfig | None = None) -> None:
        self._app_config = app_config or AppConfig()
        self._manager: TaskPersistenceManager | None = None

    def get_persistence_manager(self) -> TaskPersistenceManager:
        """The configured manager; the same object on every call."""
        if self._manager is None:
            self._manager = self._build()
        return self._manager

    def _build(self) -> TaskPersistenceManager:
        module_name = self._app_config.get(TA_PERSISTENCE_MODULE)
        class_name = self._app_config.get(TA_PERSISTENCE_CLASS)
        if module_name is None and class_name is None:
            return InMemoryPersistenceManager(app_config=self._app_config)
        if module_name is None or class_name is None:
            given, missing = (
                (TA_PERSISTENCE_CLASS, TA_PERSISTENCE_MODULE)
                if module_name is None
                else (TA_PERSISTENCE_MODULE, TA_PERSISTENCE_CLASS)
            )
            raise ConfigurationError(
                f"{given} is set but {missing} is not: set both to choose a custom backend, "
                "or neither for the in-memory one"
            )
        manager_class = load_manager_class(module_name, class_name)
        if _accepts_app_config(manager_class):
            return manager_class(app_config=self._app_config)  # type: ignore[call-arg]
        return manager_class()


def load_manager_class(module_name: str, class_name: str) -> type[TaskPersistenceManager]:
    """Import ``class_name`` from a module path or file; clear errors name what is wrong."""
    module = _load_module(module_name)
    manager_class = getattr(module, class_name, None)
    if manager_class is None:
        raise ValueError(
            f"{TA_PERSISTENCE_CLASS}={class_name!r}: module {module_name!r} has no such class"
        )
    if not (inspect.isclass(manager_class) and issubclass(manager_class, TaskPersistenceManager)):
        raise TypeError(
            f"{TA_PERSISTENCE_CLASS}={class_name!r} in {module_name!r} is not a subclass of "
            "teal_taskstore.TaskPersistenceManager"
        )
    return manager_class


def _load_module(module_name: str) -> ModuleType:
    if module_name.endswith(".py") or "/" in module_name:
        return _load_file(Path(module_name))
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"{TA_PERSISTENCE_MODULE}={module_name!r}: cannot import it: {exc}", name=module_name
        ) from exc


def _load_file(path: Path) -> ModuleType:
    """Load a file under a name of its own, so ``redis.py`` never replaces the real package."""
    resolved = path.expanduser().resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    unique_name = f"teal_taskstore_custom_{resolved.stem}_{digest}"
    if unique_name in sys.modules:
        return sys.modules[unique_name]
    spec = importlib.util.spec_from_file_location(unique_name, resolved)
    if not resolved.is_file() or spec is None or spec.loader is None:
        raise ImportError(
            f"{TA_PERSISTENCE_MODULE}={str(path)!r}: no such Python file", path=str(path)
        )
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as the import system does, so dataclasses and pickling work.
    sys.modules[unique_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[unique_name]
        raise ImportError(
            f"{TA_PERSISTENCE_MODULE}={str(path)!r}: loading the file failed: {exc}",
            path=str(path),
        ) from exc
    return module


def _accepts_app_config(manager_class: type[TaskPersistenceManager]) -> bool:
    try:
        parameters = inspect.signature(manager_class).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.name == "app_config" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )
