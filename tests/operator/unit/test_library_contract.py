"""The operator injects exactly the module paths, classes and variables the library reads."""

import importlib

import pytest

from taskstore_operator.api import contract
from teal_taskstore import AppConfig, PersistenceFactory, TaskPersistenceManager
from teal_taskstore.persistence.redis_persistence_manager import RedisSettings


@pytest.mark.parametrize(
    ("module", "class_name"),
    [
        (contract.IN_MEMORY_MODULE, contract.IN_MEMORY_CLASS),
        (contract.REDIS_MODULE, contract.REDIS_CLASS),
    ],
)
def test_injected_backends_are_library_classes_the_factory_builds(
    module: str, class_name: str
) -> None:
    backend = getattr(importlib.import_module(module), class_name)
    assert issubclass(backend, TaskPersistenceManager)
    config = AppConfig(
        {contract.ENV_PERSISTENCE_MODULE: module, contract.ENV_PERSISTENCE_CLASS: class_name}
    )
    assert type(PersistenceFactory(config).get_persistence_manager()) is backend


def test_every_injected_redis_variable_is_read_by_the_library() -> None:
    injected = {
        contract.ENV_REDIS_HOST: "redis.agents.svc",
        contract.ENV_REDIS_PORT: "6380",
        contract.ENV_REDIS_DB: "3",
        contract.ENV_REDIS_TTL: "0",
        contract.ENV_REDIS_SSL: "true",
        contract.ENV_REDIS_PASSWORD: "from-a-secret",
        contract.ENV_REDIS_USERNAME: "agent",
        contract.ENV_REDIS_KEY_PREFIX: "team:",
    }
    settings = RedisSettings.from_config(AppConfig(injected))
    assert (settings.host, settings.port, settings.db, settings.ttl_seconds) == (
        "redis.agents.svc",
        6380,
        3,
        0,
    )
    assert settings.ssl is True
    assert (settings.password, settings.username, settings.key_prefix) == (
        "from-a-secret",
        "agent",
        "team:",
    )
