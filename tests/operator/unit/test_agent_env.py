"""The injected environment, per backend, exactly as the contract's table says."""

from collections.abc import Callable
from typing import Any

import pytest

from taskstore_operator.api.models import PasswordSecretRef, TaskStore
from taskstore_operator.render.agent_env import (
    agent_env,
    config_hash,
    endpoint,
    injects_library,
    password_secret_ref,
)
from taskstore_operator.render.hashing import secret_fingerprint, stable_hash

Manifest = dict[str, Any]
StoreFactory = Callable[..., TaskStore]

MEMORY_ENV = [
    {
        "name": "TA_PERSISTENCE_MODULE",
        "value": "/opt/teal-taskstore/teal_taskstore_entry.py",
    },
    {"name": "TA_PERSISTENCE_CLASS", "value": "InMemoryPersistenceManager"},
]
REDIS_CLASS_ENV = [
    {
        "name": "TA_PERSISTENCE_MODULE",
        "value": "/opt/teal-taskstore/teal_taskstore_entry.py",
    },
    {"name": "TA_PERSISTENCE_CLASS", "value": "RedisTaskPersistenceManager"},
]


def value(name: str, literal: str) -> Manifest:
    return {"name": name, "value": literal}


def secret(name: str, key: str) -> Manifest:
    return {"name": "TA_REDIS_PWD", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, MEMORY_ENV, id="memory-default"),
        pytest.param({"backend": "memory", "ttlSeconds": 5}, MEMORY_ENV, id="memory-ignores-ttl"),
        pytest.param(
            {"backend": "redis", "redis": {"managed": {}}},
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_HOST", "tasks-redis.agents.svc"),
                value("TA_REDIS_PORT", "6379"),
                value("TA_REDIS_DB", "0"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
                secret("tasks-redis-auth", "password"),
            ],
            id="managed",
        ),
        pytest.param(
            {"backend": "redis", "ttlSeconds": 0, "redis": {"keyPrefix": "team-a:", "managed": {}}},
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_HOST", "tasks-redis.agents.svc"),
                value("TA_REDIS_PORT", "6379"),
                value("TA_REDIS_DB", "0"),
                # The framework's own Redis readers refuse 0: "never" is 2**31 - 1 s.
                value("TA_REDIS_TTL", "2147483647"),
                value("TA_REDIS_SSL", "false"),
                secret("tasks-redis-auth", "password"),
                value("TA_REDIS_KEY_PREFIX", "team-a:"),
            ],
            id="managed-prefix-no-expiry",
        ),
        pytest.param(
            {"backend": "redis", "redis": {"external": {"host": "redis.example.internal"}}},
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_HOST", "redis.example.internal"),
                value("TA_REDIS_PORT", "6379"),
                value("TA_REDIS_DB", "0"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
            ],
            id="external-no-password",
        ),
        pytest.param(
            {
                "backend": "redis",
                "ttlSeconds": 60,
                "redis": {
                    "keyPrefix": "p:",
                    "external": {
                        "host": "10.0.0.7",
                        "port": 6380,
                        "db": 4,
                        "tls": True,
                        "username": "agents",
                        "passwordSecretRef": {"name": "redis-auth", "key": "secret"},
                    },
                },
            },
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_HOST", "10.0.0.7"),
                value("TA_REDIS_PORT", "6380"),
                value("TA_REDIS_DB", "4"),
                value("TA_REDIS_TTL", "60"),
                value("TA_REDIS_SSL", "true"),
                secret("redis-auth", "secret"),
                value("TA_REDIS_USERNAME", "agents"),
                value("TA_REDIS_KEY_PREFIX", "p:"),
            ],
            id="external-everything",
        ),
        pytest.param(
            {
                "backend": "redis",
                "redis": {
                    "external": {
                        "mode": "sentinel",
                        "sentinels": ["s0.example:26379", "[fd00::1]:26380"],
                        "masterName": "orders",
                        "sentinelUsername": "watcher",
                        "sentinelPasswordSecretRef": {"name": "sentinel-auth"},
                        "passwordSecretRef": {"name": "redis-auth"},
                        "db": 2,
                    }
                },
            },
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_MODE", "sentinel"),
                value("TA_REDIS_SENTINELS", "s0.example:26379,[fd00::1]:26380"),
                value("TA_REDIS_SENTINEL_MASTER", "orders"),
                {
                    "name": "TA_REDIS_SENTINEL_PWD",
                    "valueFrom": {"secretKeyRef": {"name": "sentinel-auth", "key": "password"}},
                },
                value("TA_REDIS_SENTINEL_USERNAME", "watcher"),
                value("TA_REDIS_DB", "2"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
                secret("redis-auth", "password"),
            ],
            id="external-sentinel",
        ),
        pytest.param(
            {"backend": "redis", "redis": {"external": {"mode": "sentinel", "sentinels": ["s:1"]}}},
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_MODE", "sentinel"),
                value("TA_REDIS_SENTINELS", "s:1"),
                value("TA_REDIS_SENTINEL_MASTER", "mymaster"),
                value("TA_REDIS_DB", "0"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
            ],
            id="external-sentinel-defaults",
        ),
        pytest.param(
            {"backend": "redis", "redis": {"external": {"mode": "cluster", "host": "seed"}}},
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_MODE", "cluster"),
                value("TA_REDIS_HOST", "seed"),
                value("TA_REDIS_PORT", "6379"),
                value("TA_REDIS_DB", "0"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
            ],
            id="external-cluster",
        ),
        pytest.param(
            {
                "backend": "redis",
                "redis": {"external": {"host": "h", "passwordSecretRef": {"name": "auth"}}},
            },
            [
                *REDIS_CLASS_ENV,
                value("TA_REDIS_HOST", "h"),
                value("TA_REDIS_PORT", "6379"),
                value("TA_REDIS_DB", "0"),
                value("TA_REDIS_TTL", "3600"),
                value("TA_REDIS_SSL", "false"),
                secret("auth", "password"),
            ],
            id="external-default-secret-key",
        ),
        pytest.param(
            {"backend": "custom", "custom": {"module": "/app/my_store.py", "className": "Mine"}},
            [
                value("TA_PERSISTENCE_MODULE", "/app/my_store.py"),
                value("TA_PERSISTENCE_CLASS", "Mine"),
            ],
            id="custom",
        ),
        pytest.param(
            {
                "backend": "custom",
                "custom": {
                    "module": "stores.s3",
                    "className": "S3Store",
                    "env": [
                        {"name": "BUCKET", "value": "tasks"},
                        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}},
                    ],
                },
            },
            [
                value("TA_PERSISTENCE_MODULE", "stores.s3"),
                value("TA_PERSISTENCE_CLASS", "S3Store"),
                value("BUCKET", "tasks"),
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}},
            ],
            id="custom-env",
        ),
    ],
)
def test_agent_env(make_store: StoreFactory, spec: Manifest, expected: list[Manifest]) -> None:
    assert agent_env(make_store(spec)) == expected


def test_the_password_is_never_a_literal(
    make_store: StoreFactory, any_backend_spec: Manifest
) -> None:
    for variable in agent_env(make_store(any_backend_spec)):
        if variable["name"] == "TA_REDIS_PWD":
            assert "value" not in variable
            assert set(variable["valueFrom"]) == {"secretKeyRef"}


def test_every_value_is_a_string(make_store: StoreFactory, any_backend_spec: Manifest) -> None:
    for variable in agent_env(make_store(any_backend_spec)):
        assert isinstance(variable.get("value", ""), str)


def test_an_inconsistent_store_is_refused_rather_than_guessed() -> None:
    # model_validate alone skips the cross-field rules that parse_taskstore applies.
    store = TaskStore.model_validate(
        {
            "metadata": {"name": "t", "namespace": "n", "uid": "u", "generation": 1},
            "spec": {"backend": "custom"},
        }
    )
    with pytest.raises(ValueError, match="backend custom has no settings"):
        agent_env(store)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, ""),
        ({"backend": "redis", "redis": {"managed": {}}}, "tasks-redis.agents.svc:6379"),
        ({"backend": "redis", "redis": {"external": {"host": "r", "port": 7000}}}, "r:7000"),
        ({"backend": "custom", "custom": {"module": "a", "className": "B"}}, ""),
    ],
)
def test_endpoint(make_store: StoreFactory, spec: Manifest, expected: str) -> None:
    assert endpoint(make_store(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, None),
        (
            {"backend": "redis", "redis": {"managed": {}}},
            PasswordSecretRef(name="tasks-redis-auth"),
        ),
        ({"backend": "redis", "redis": {"external": {"host": "h"}}}, None),
        (
            {
                "backend": "redis",
                "redis": {
                    "external": {"host": "h", "passwordSecretRef": {"name": "a", "key": "k"}}
                },
            },
            PasswordSecretRef(name="a", key="k"),
        ),
        ({"backend": "custom", "custom": {"module": "a", "className": "B"}}, None),
    ],
)
def test_password_secret_ref(
    make_store: StoreFactory, spec: Manifest, expected: PasswordSecretRef | None
) -> None:
    assert password_secret_ref(make_store(spec)) == expected


def test_config_hash_is_short_stable_and_order_sensitive() -> None:
    env = [value("A", "1"), value("B", "2")]
    assert config_hash(env, "fp") == config_hash([dict(v) for v in env], "fp")
    assert len(config_hash(env, "fp")) == 16
    assert config_hash(env, "fp") != config_hash(list(reversed(env)), "fp")


@pytest.mark.parametrize(
    ("env", "fingerprint"),
    [
        ([value("A", "1"), value("B", "3")], "fp"),
        ([value("A", "1")], "fp"),
        ([value("A", "1"), value("B", "2")], "other"),
        ([value("A", "1"), value("B", "2")], None),
    ],
)
def test_config_hash_changes_with_env_and_password(
    env: list[Manifest], fingerprint: str | None
) -> None:
    assert config_hash(env, fingerprint) != config_hash([value("A", "1"), value("B", "2")], "fp")


def test_secret_fingerprint_is_keyed_and_reveals_nothing() -> None:
    encoded = "c2VjcmV0"  # base64 of "secret"
    fingerprint = secret_fingerprint("uid-1", encoded)
    assert fingerprint == secret_fingerprint("uid-1", encoded)
    assert fingerprint != secret_fingerprint("uid-2", encoded)
    assert fingerprint != secret_fingerprint("uid-1", "b3RoZXI=")
    assert "secret" not in fingerprint
    assert encoded not in fingerprint


def test_the_config_hash_of_a_store_never_contains_its_password(make_store: StoreFactory) -> None:
    password = "c2VjcmV0LXBhc3N3b3Jk"
    env = agent_env(make_store({"backend": "redis", "redis": {"managed": {}}}))
    digest = config_hash(env, secret_fingerprint("uid", password))
    assert password not in digest
    assert digest != config_hash(env, None)


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


def test_the_library_image_is_in_the_config_hash_when_injected() -> None:
    env = [value("A", "1")]
    assert config_hash(env, None, "image:1") != config_hash(env, None, "image:2")
    assert config_hash(env, None, "image:1") != config_hash(env, None)
    # Without a library (custom), the recipe is the one of earlier versions.
    assert config_hash(env, "fp") == stable_hash({"env": env, "passwordFingerprint": "fp"})


@pytest.mark.parametrize(
    ("spec", "injected"),
    [
        ({}, True),
        ({"backend": "redis", "redis": {"managed": {}}}, True),
        ({"backend": "redis", "redis": {"external": {"host": "h"}}}, True),
        ({"backend": "custom", "custom": {"module": "/app/s.py", "className": "S"}}, False),
    ],
)
def test_memory_and_redis_get_the_library(
    make_store: StoreFactory, spec: Manifest, injected: bool
) -> None:
    assert injects_library(make_store(spec)) is injected
