"""The operator injects exactly the module paths, classes and variables the library reads."""

import pytest

import teal_taskstore
from taskstore_operator.api import contract
from taskstore_operator.api.validation import parse_taskstore
from taskstore_operator.render.agent_env import agent_env
from teal_taskstore import AppConfig, PersistenceFactory, TaskPersistenceManager
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
    # The container's environment, a Secret reference resolved as the kubelet would.
    env = {
        variable["name"]: variable.get("value", "from-a-secret") for variable in agent_env(store)
    }
    assert env[contract.ENV_PERSISTENCE_MODULE] == ENTRY_FILE_PATH
    assert env[contract.ENV_PERSISTENCE_CLASS] == class_name
    backend = getattr(teal_taskstore, class_name)
    assert issubclass(backend, TaskPersistenceManager)
    # An agent using our own factory builds our class from the same environment.
    assert type(PersistenceFactory(AppConfig(env)).get_persistence_manager()) is backend


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


def test_a_store_that_never_expires_is_read_as_a_68_year_expiry() -> None:
    store = parse_taskstore(
        {
            "metadata": {"name": "t", "namespace": "n", "uid": "u", "generation": 1},
            "spec": {"backend": "redis", "ttlSeconds": 0, "redis": {"managed": {}}},
        }
    )
    env = {variable["name"]: variable.get("value", "pw") for variable in agent_env(store)}
    assert RedisSettings.from_config(AppConfig(env)).ttl_seconds == 2**31 - 1
