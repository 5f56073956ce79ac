"""Settings and backend selection: every bad setting names its variable, and nothing leaks."""

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
from teal_taskstore.persistence.redis_persistence_manager import RedisSettings

REDIS_MODULE = "teal_taskstore.persistence.redis_persistence_manager"
PASSWORD = "hunter2-do-not-show"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TA_REDIS_PORT", "abc", "an integer 1..65535"),
        ("TA_REDIS_PORT", "0", "an integer 1..65535"),
        ("TA_REDIS_PORT", "70000", "an integer 1..65535"),
        ("TA_REDIS_DB", "-1", "an integer 0..2147483647"),
        ("TA_REDIS_DB", "2147483648", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "-5", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "1h", "an integer 0..2147483647"),
        ("TA_REDIS_TTL", "99999999999999999", "an integer 0..2147483647"),
        ("TA_REDIS_SSL_CA_CERTS", "/no/such/ca.pem", "an existing file"),
        ("TA_REDIS_SSL", "maybe", "true/false/1/0/yes/no"),
        ("TA_REDIS_SSL", "on", "true/false/1/0/yes/no"),
        ("TA_REDIS_CONNECT_TIMEOUT", "0", "seconds > 0"),
        ("TA_REDIS_COMMAND_TIMEOUT", "soon", "seconds > 0"),
        ("TA_REDIS_RETRIES", "-1", "an integer >= 0"),
        ("TA_REDIS_MAX_CONNECTIONS", "0", "an integer >= 1"),
    ],
)
def test_a_bad_setting_fails_at_construction_naming_the_variable(
    variable: str, value: str, expected: str
) -> None:
    config = AppConfig(
        {
            "TA_PERSISTENCE_MODULE": REDIS_MODULE,
            "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
            "TA_REDIS_PWD": PASSWORD,
            variable: value,
        }
    )
    with pytest.raises(ConfigurationError) as raised:
        PersistenceFactory(config).get_persistence_manager()
    message = str(raised.value)
    assert variable in message
    assert expected in message
    assert repr(value) in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("Yes", True)],
        *[("false", False), ("False", False), ("0", False), ("NO", False)],
    ],
)
def test_ssl_flag_is_parsed_as_written(value: str, expected: bool) -> None:
    assert RedisSettings.from_config(AppConfig({"TA_REDIS_SSL": value})).ssl is expected


def test_defaults_and_every_variable_are_read(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("a CA bundle")
    assert RedisSettings.from_config(AppConfig({})) == RedisSettings()
    settings = RedisSettings.from_config(
        AppConfig(
            {
                "TA_REDIS_HOST": "redis.example",
                "TA_REDIS_PORT": "6380",
                "TA_REDIS_DB": "2",
                "TA_REDIS_TTL": "0",
                "TA_REDIS_SSL": "yes",
                "TA_REDIS_SSL_CA_CERTS": str(ca_file),
                "TA_REDIS_USERNAME": "agent",
                "TA_REDIS_PWD": PASSWORD,
                "TA_REDIS_KEY_PREFIX": "team:",
                "TA_REDIS_CONNECT_TIMEOUT": "0.5",
                "TA_REDIS_COMMAND_TIMEOUT": "3",
                "TA_REDIS_RETRIES": "0",
                "TA_REDIS_MAX_CONNECTIONS": "8",
            }
        )
    )
    assert settings == RedisSettings(
        host="redis.example",
        port=6380,
        db=2,
        ttl_seconds=0,
        ssl=True,
        ssl_ca_certs=str(ca_file),
        username="agent",
        password=PASSWORD,
        key_prefix="team:",
        connect_timeout=0.5,
        command_timeout=3.0,
        retries=0,
        max_connections=8,
    )
    assert PASSWORD not in repr(settings)


def test_app_config_snapshots_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TA_REDIS_HOST", "from-env")
    monkeypatch.setenv("TA_REDIS_PWD", PASSWORD)
    config = AppConfig()
    monkeypatch.setenv("TA_REDIS_HOST", "changed")
    assert config.get("TA_REDIS_HOST") == "from-env"
    assert config.get("TA_MISSING", "default") == "default"
    assert PASSWORD not in repr(config)
    assert "TA_REDIS_PWD" in repr(config)


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
