"""The operator injects exactly the module paths, classes and variables the library reads."""

import pytest

import teal_taskstore
from taskstore_operator.api import contract
from taskstore_operator.api.validation import parse_taskstore
from taskstore_operator.render.agent_env import agent_env
from teal_taskstore import AppConfig, TaskPersistenceManager
from teal_taskstore.framework import ENTRY_FILE_PATH, IN_MEMORY_CLASS, REDIS_CLASS
from teal_taskstore.persistence.redis_persistence_manager import RedisSettings


@pytest.mark.parametrize(
    ("spec", "class_name"),
    [
        ({"backend": "memory"}, IN_MEMORY_CLASS),
        ({"backend": "redis", "redis": {"managed": {}}}, REDIS_CLASS),
        ({"backend": "redis", "redis": {"external": {"host": "h"}}}, REDIS_CLASS),
    ],
)
def test_memory_and_redis_agents_load_the_library_entry_file(
    spec: dict[str, object], class_name: str
) -> None:
    store = parse_taskstore(
        {"metadata": {"name": "t", "namespace": "n", "uid": "u", "generation": 1}, "spec": spec}
    )
    env = {variable["name"]: variable.get("value") for variable in agent_env(store)}
    assert env[contract.ENV_PERSISTENCE_MODULE] == ENTRY_FILE_PATH
    assert env[contract.ENV_PERSISTENCE_CLASS] == class_name
    assert issubclass(getattr(teal_taskstore, class_name), TaskPersistenceManager)


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
