"""``PersistenceFactory``: the backend the two variables choose, or a clear error."""

import sys
import textwrap
from pathlib import Path

import pytest
import redis

from teal_taskstore import (
    AppConfig,
    ConfigurationError,
    InMemoryPersistenceManager,
    PersistenceFactory,
    RedisTaskPersistenceManager,
)
from teal_taskstore.framework import ENTRY_FILE_PATH, IN_MEMORY_CLASS, REDIS_CLASS

REDIS_MODULE = "teal_taskstore.persistence.redis_persistence_manager"
# What the framework's factory sees when neither variable is set (its registered defaults).
FRAMEWORK_DEFAULT_MODULE = "persistence/in_memory_persistence_manager.py"


def test_no_variables_select_the_in_memory_backend() -> None:
    factory = PersistenceFactory(AppConfig({}))
    manager = factory.get_persistence_manager()
    assert isinstance(manager, InMemoryPersistenceManager)
    assert factory.get_persistence_manager() is manager


def test_a_dotted_module_path_selects_the_redis_backend() -> None:
    config = AppConfig(
        {
            "TA_PERSISTENCE_MODULE": REDIS_MODULE,
            "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
            "TA_REDIS_HOST": "redis.example",
            "TA_REDIS_TTL": "60",
        }
    )
    factory = PersistenceFactory(config)
    manager = factory.get_persistence_manager()
    assert isinstance(manager, RedisTaskPersistenceManager)
    assert manager.settings.host == "redis.example"
    assert manager.settings.ttl_seconds == 60
    assert factory.get_persistence_manager() is manager


CUSTOM_STORE = """
from teal_taskstore import AppConfig, InMemoryPersistenceManager

class TakesConfig(InMemoryPersistenceManager):
    def __init__(self, app_config: AppConfig) -> None:
        super().__init__()
        self.app_config = app_config

class NoConfig(InMemoryPersistenceManager):
    def __init__(self) -> None:
        super().__init__()

class NotAManager:
    pass

not_a_class = 42
"""


def write_store(directory: Path, file_name: str) -> Path:
    path = directory / file_name
    path.write_text(textwrap.dedent(CUSTOM_STORE))
    return path


def factory_for(module: str, class_name: str) -> PersistenceFactory:
    return PersistenceFactory(
        AppConfig({"TA_PERSISTENCE_MODULE": module, "TA_PERSISTENCE_CLASS": class_name})
    )


def test_a_file_path_loads_the_class_and_passes_app_config(tmp_path: Path) -> None:
    path = write_store(tmp_path, "my_store.py")
    manager = factory_for(str(path), "TakesConfig").get_persistence_manager()
    assert type(manager).__name__ == "TakesConfig"
    assert manager.app_config.get("TA_PERSISTENCE_CLASS") == "TakesConfig"  # type: ignore[attr-defined]
    plain = factory_for(str(path), "NoConfig").get_persistence_manager()
    assert type(plain).__name__ == "NoConfig"


def test_a_file_called_redis_py_never_replaces_the_redis_package(tmp_path: Path) -> None:
    path = write_store(tmp_path, "redis.py")
    manager = factory_for(str(path), "NoConfig").get_persistence_manager()
    assert type(manager).__name__ == "NoConfig"
    assert sys.modules["redis"] is redis
    assert hasattr(sys.modules["redis"], "Redis")
    assert type(manager).__module__ != "redis"


@pytest.mark.parametrize(
    ("class_name", "error", "words"),
    [
        ("Missing", ValueError, ["TA_PERSISTENCE_CLASS", "'Missing'", "my_store.py"]),
        ("NotAManager", TypeError, ["'NotAManager'", "TaskPersistenceManager"]),
        ("not_a_class", TypeError, ["'not_a_class'", "TaskPersistenceManager"]),
    ],
)
def test_a_wrong_class_is_a_clear_error(
    tmp_path: Path, class_name: str, error: type[Exception], words: list[str]
) -> None:
    path = write_store(tmp_path, "my_store.py")
    with pytest.raises(error) as raised:
        factory_for(str(path), class_name).get_persistence_manager()
    for word in words:
        assert word in str(raised.value)


@pytest.mark.parametrize(
    "module",
    ["no_such_module_anywhere", "teal_taskstore.no_such_module", "/nonexistent/store.py"],
)
def test_a_module_that_cannot_be_loaded_is_an_import_error_naming_it(module: str) -> None:
    with pytest.raises(ImportError) as raised:
        factory_for(module, "Anything").get_persistence_manager()
    assert module in str(raised.value)
    assert "TA_PERSISTENCE_MODULE" in str(raised.value)


def test_a_file_that_fails_to_import_is_an_import_error_and_leaves_no_module(
    tmp_path: Path,
) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ImportError, match="boom") as raised:
        factory_for(str(path), "Anything").get_persistence_manager()
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert not any("broken" in name for name in sys.modules)


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("TA_PERSISTENCE_MODULE", "TA_PERSISTENCE_CLASS"),
        ("TA_PERSISTENCE_CLASS", "TA_PERSISTENCE_MODULE"),
    ],
)
def test_only_one_of_the_two_variables_is_an_error_naming_the_missing_one(
    given: str, missing: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"{given} is set but {missing} is not"):
        PersistenceFactory(AppConfig({given: "x"})).get_persistence_manager()


def test_the_frameworks_default_pair_is_the_in_memory_default() -> None:
    factory = factory_for(FRAMEWORK_DEFAULT_MODULE, "InMemoryPersistenceManager")
    assert type(factory.get_persistence_manager()) is InMemoryPersistenceManager


def test_a_relative_file_path_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "custom").mkdir()
    write_store(tmp_path / "custom", "relative_store.py")
    monkeypatch.chdir(tmp_path)
    manager = factory_for("custom/relative_store.py", "NoConfig").get_persistence_manager()
    assert type(manager).__name__ == "NoConfig"


@pytest.mark.parametrize(
    ("class_name", "native"),
    [(IN_MEMORY_CLASS, InMemoryPersistenceManager), (REDIS_CLASS, RedisTaskPersistenceManager)],
)
def test_the_injected_entry_file_builds_our_native_class(
    class_name: str, native: type[object]
) -> None:
    # The entry file exists only in agent pods; our factory never needs it, nor sk_agents.
    assert not Path(ENTRY_FILE_PATH).exists()
    config = AppConfig(
        {
            "TA_PERSISTENCE_MODULE": ENTRY_FILE_PATH,
            "TA_PERSISTENCE_CLASS": class_name,
            "TA_REDIS_HOST": "redis.example",
        }
    )
    manager = PersistenceFactory(config).get_persistence_manager()
    assert type(manager) is native
    if isinstance(manager, RedisTaskPersistenceManager):
        assert manager.settings.host == "redis.example"


def test_the_entry_file_with_another_class_names_the_classes_it_offers() -> None:
    with pytest.raises(ValueError, match="TA_PERSISTENCE_CLASS='Other'") as raised:
        factory_for(ENTRY_FILE_PATH, "Other").get_persistence_manager()
    assert IN_MEMORY_CLASS in str(raised.value)
    assert REDIS_CLASS in str(raised.value)


@pytest.mark.parametrize("module", [".", "..", ".relative", "a..b", "has space", "trailing."])
def test_a_module_value_that_is_neither_a_file_nor_a_module_name_names_the_variable(
    module: str,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        factory_for(module, "Anything").get_persistence_manager()
    assert f"TA_PERSISTENCE_MODULE={module!r}" in str(raised.value)
    assert ".py file" in str(raised.value)


@pytest.mark.parametrize(
    ("statement", "error"),
    [("raise KeyboardInterrupt", KeyboardInterrupt), ("raise SystemExit(3)", SystemExit)],
)
def test_an_interrupt_while_importing_a_custom_file_propagates_unchanged(
    tmp_path: Path, statement: str, error: type[BaseException]
) -> None:
    path = tmp_path / "interrupted.py"
    path.write_text(statement + "\n")
    with pytest.raises(error):
        factory_for(str(path), "Anything").get_persistence_manager()
    assert not any("interrupted" in name for name in sys.modules)


def test_an_interrupt_while_importing_a_custom_module_propagates_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "interrupted_module.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        factory_for("interrupted_module", "Anything").get_persistence_manager()


def test_a_module_that_fails_to_import_is_an_import_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "failing_module.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match=r"TA_PERSISTENCE_MODULE='failing_module'.*boom"):
        factory_for("failing_module", "Anything").get_persistence_manager()
