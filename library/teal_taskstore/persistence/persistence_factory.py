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
from teal_taskstore.framework import ENTRY_FILE_NAME, IN_MEMORY_CLASS, REDIS_CLASS
from teal_taskstore.persistence.in_memory_persistence_manager import InMemoryPersistenceManager
from teal_taskstore.persistence.redis_persistence_manager import RedisTaskPersistenceManager
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager

# What the Teal Agents framework's factory sees when neither variable is set: its in-memory store.
FRAMEWORK_DEFAULT_PAIR = ("persistence/in_memory_persistence_manager.py", IN_MEMORY_CLASS)
# The classes the injected entry file offers, as our native classes of the same names.
_ENTRY_CLASSES: dict[str, type[TaskPersistenceManager]] = {
    IN_MEMORY_CLASS: InMemoryPersistenceManager,
    REDIS_CLASS: RedisTaskPersistenceManager,
}


class PersistenceFactory:
    """Chooses and builds the task persistence backend from the configuration.

    Neither variable set, or the framework's default pair: the in-memory backend. Both set:
    the class ``TA_PERSISTENCE_CLASS`` from ``TA_PERSISTENCE_MODULE``, a file path
    (``/app/custom/my_store.py``) or a dotted module path. The entry file the operator injects
    for the framework (``teal_taskstore_entry.py``) names our own class of the same name. The
    manager is built once per factory and then shared.
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
        chosen = (module_name, class_name)
        if chosen == (None, None) or chosen == FRAMEWORK_DEFAULT_PAIR:
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
    if _is_file_path(module_name) and Path(module_name).name == ENTRY_FILE_NAME:
        return _entry_class(module_name, class_name)
    module = _load_module(module_name)
    manager_class = getattr(module, class_name, None)
    if manager_class is None:
        raise ValueError(
            f"{TA_PERSISTENCE_CLASS}={class_name!r}: module {module_name!r} has no such class"
        )
    if not (inspect.isclass(manager_class) and issubclass(manager_class, TaskPersistenceManager)):
        raise TypeError(
            f"{TA_PERSISTENCE_CLASS}={class_name!r} in {module_name!r} is not a subclass of "
            "teal_taskstore.TaskPersistenceManager (a class written for the Teal Agents "
            "framework's base class is loaded by the framework's own factory, not this one)"
        )
    return manager_class


def _is_file_path(module_name: str) -> bool:
    return module_name.endswith(".py") or "/" in module_name


def _entry_class(module_name: str, class_name: str) -> type[TaskPersistenceManager]:
    """The native class for the injected entry file, which needs neither the file nor sk_agents."""
    manager_class = _ENTRY_CLASSES.get(class_name)
    if manager_class is None:
        raise ValueError(
            f"{TA_PERSISTENCE_CLASS}={class_name!r}: the entry file {module_name!r} offers "
            f"{' and '.join(sorted(_ENTRY_CLASSES))} only"
        )
    return manager_class


def _load_module(module_name: str) -> ModuleType:
    if _is_file_path(module_name):
        return _load_file(Path(module_name))
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigurationError(
            f"{TA_PERSISTENCE_MODULE}={module_name!r} is neither the path of a .py file "
            "(/app/custom/my_store.py) nor a dotted module name (my_package.my_store)"
        )
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # KeyboardInterrupt and SystemExit propagate unchanged
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
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: never disguised as an import failure
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
