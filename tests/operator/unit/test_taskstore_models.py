"""The TaskStore models: defaults, wire names, and every single-field constraint."""

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from taskstore_operator.api.models import (
    AgentsStatus,
    Backend,
    Condition,
    ConditionStatus,
    DeletionPolicy,
    TaskStore,
    TaskStoreSpec,
    TaskStoreStatus,
)
from taskstore_operator.api.quantity import parse_quantity

Manifest = dict[str, Any]


def test_an_empty_spec_is_the_memory_backend_with_the_default_ttl() -> None:
    spec = TaskStoreSpec.model_validate({})
    assert spec.backend == Backend.MEMORY
    assert spec.ttl_seconds == 3600
    assert spec.redis is None
    assert spec.custom is None


def test_a_taskstore_without_spec_gets_the_default_spec(
    make_manifest: Callable[..., Manifest],
) -> None:
    store = TaskStore.model_validate(make_manifest(None))
    assert store.spec == TaskStoreSpec()


def test_managed_redis_defaults() -> None:
    spec = TaskStoreSpec.model_validate({"backend": "redis", "redis": {"managed": {}}})
    assert spec.redis is not None
    assert spec.redis.key_prefix == ""
    managed = spec.redis.managed
    assert managed is not None
    assert managed.image == "redis:7.2"
    assert managed.storage is None
    assert managed.deletion_policy == DeletionPolicy.RETAIN
    assert managed.resources.requests == {"cpu": "50m", "memory": "64Mi"}
    assert managed.resources.limits == {"memory": "256Mi"}


def test_partial_resources_keep_the_other_default() -> None:
    spec = TaskStoreSpec.model_validate(
        {"backend": "redis", "redis": {"managed": {"resources": {"limits": {"memory": "1Gi"}}}}}
    )
    assert spec.redis is not None
    assert spec.redis.managed is not None
    assert spec.redis.managed.resources.requests == {"cpu": "50m", "memory": "64Mi"}
    assert spec.redis.managed.resources.limits == {"memory": "1Gi"}


def test_storage_defaults_to_one_gibibyte_in_the_default_class() -> None:
    spec = TaskStoreSpec.model_validate({"backend": "redis", "redis": {"managed": {"storage": {}}}})
    assert spec.redis is not None
    assert spec.redis.managed is not None
    storage = spec.redis.managed.storage
    assert storage is not None
    assert storage.size == "1Gi"
    assert storage.storage_class_name is None


def test_external_redis_defaults() -> None:
    spec = TaskStoreSpec.model_validate(
        {
            "backend": "redis",
            "redis": {"external": {"host": "redis", "passwordSecretRef": {"name": "auth"}}},
        }
    )
    assert spec.redis is not None
    external = spec.redis.external
    assert external is not None
    assert (external.port, external.db, external.tls, external.username) == (6379, 0, False, None)
    assert external.password_secret_ref is not None
    assert external.password_secret_ref.key == "password"


def test_custom_env_keeps_value_and_value_from_on_the_wire() -> None:
    env = [
        {"name": "STORE_URL", "value": "https://store"},
        {"name": "EMPTY", "value": ""},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
        {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
    ]
    spec = TaskStoreSpec.model_validate(
        {"backend": "custom", "custom": {"module": "a.b", "className": "C", "env": env}}
    )
    assert spec.custom is not None
    assert [e.model_dump(mode="json", exclude_none=True) for e in spec.custom.env] == env


@pytest.mark.parametrize("cpu", [1, "1", "500m", "0.5"])
def test_quantities_accept_integers_and_strings(cpu: int | str) -> None:
    spec = TaskStoreSpec.model_validate(
        {"backend": "redis", "redis": {"managed": {"resources": {"requests": {"cpu": cpu}}}}}
    )
    assert spec.redis is not None
    assert spec.redis.managed is not None
    assert spec.redis.managed.resources.requests["cpu"] == str(cpu)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"backend": "mongo"}, "backend"),
        ({"ttlSeconds": -1}, "ttlSeconds"),
        ({"ttlSeconds": "soon"}, "ttlSeconds"),
        # Redis keeps expiries and database numbers as 32-bit ints: the library refuses more.
        ({"ttlSeconds": 2**31}, "ttlSeconds"),
        ({"unknown": 1}, "unknown"),
        ({"redis": {"keyPrefix": "has space"}}, "redis.keyPrefix"),
        ({"redis": {"keyPrefix": "x" * 129}}, "redis.keyPrefix"),
        ({"redis": {"managed": {"image": ""}}}, "redis.managed.image"),
        ({"redis": {"managed": {"deletionPolicy": "Orphan"}}}, "redis.managed.deletionPolicy"),
        ({"redis": {"managed": {"storage": {"size": "lots"}}}}, "redis.managed.storage.size"),
        (
            {"redis": {"managed": {"storage": {"storageClassName": ""}}}},
            "redis.managed.storage.storageClassName",
        ),
        (
            {"redis": {"managed": {"resources": {"limits": {"memory": "1 Gi"}}}}},
            "redis.managed.resources.limits.memory",
        ),
        ({"redis": {"external": {"mode": "replicated", "host": "r"}}}, "redis.external.mode"),
        (
            {"redis": {"external": {"mode": "sentinel", "sentinels": ["s0:0"]}}},
            "redis.external.sentinels.0",
        ),
        (
            {"redis": {"external": {"mode": "sentinel", "sentinels": ["s0"]}}},
            "redis.external.sentinels.0",
        ),
        ({"redis": {"external": {"host": ""}}}, "redis.external.host"),
        ({"redis": {"external": {"host": "a b"}}}, "redis.external.host"),
        ({"redis": {"external": {"host": "h", "port": 0}}}, "redis.external.port"),
        ({"redis": {"external": {"host": "h", "port": 65536}}}, "redis.external.port"),
        ({"redis": {"external": {"host": "h", "db": -1}}}, "redis.external.db"),
        ({"redis": {"external": {"host": "h", "db": 2**31}}}, "redis.external.db"),
        ({"redis": {"external": {"host": "h", "tls": "maybe"}}}, "redis.external.tls"),
        ({"redis": {"external": {"host": "h", "username": ""}}}, "redis.external.username"),
        (
            {"redis": {"external": {"host": "h", "passwordSecretRef": {}}}},
            "redis.external.passwordSecretRef.name",
        ),
        (
            {"redis": {"external": {"host": "h", "passwordSecretRef": {"name": "Bad_Name"}}}},
            "redis.external.passwordSecretRef.name",
        ),
        (
            {
                "redis": {
                    "external": {"host": "h", "passwordSecretRef": {"name": "a", "key": "a/b"}}
                }
            },
            "redis.external.passwordSecretRef.key",
        ),
        ({"custom": {"className": "C"}}, "custom.module"),
        ({"custom": {"module": "a.b"}}, "custom.className"),
        ({"custom": {"module": "a..b", "className": "C"}}, "custom.module"),
        ({"custom": {"module": "/app/store.txt", "className": "C"}}, "custom.module"),
        ({"custom": {"module": "a.b", "className": "My-Class"}}, "custom.className"),
        ({"custom": {"module": "a.b", "className": "C", "env": [{}]}}, "custom.env[0].name"),
        (
            {"custom": {"module": "a.b", "className": "C", "env": [{"name": "1ABC"}]}},
            "custom.env[0].name",
        ),
        (
            {"custom": {"module": "a.b", "className": "C", "env": [{"name": "A=B"}]}},
            "custom.env[0].name",
        ),
        (
            {
                "custom": {
                    "module": "a.b",
                    "className": "C",
                    "env": [{"name": f"V{i}", "value": ""} for i in range(65)],
                }
            },
            "custom.env",
        ),
    ],
)
def test_single_field_constraints(spec: Manifest, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TaskStoreSpec.model_validate(spec)
    fields = {".".join(str(part) for part in error["loc"]) for error in raised.value.errors()}
    expected = field.replace("[0]", ".0")
    assert expected in fields


@pytest.mark.parametrize(
    "module",
    [
        "teal_taskstore.persistence.redis_persistence_manager",
        "my_store",
        "/app/my_store.py",
        "custom/my-store.py",
        "./store.py",
    ],
)
def test_module_accepts_dotted_paths_and_python_files(module: str) -> None:
    spec = TaskStoreSpec.model_validate(
        {"backend": "custom", "custom": {"module": module, "className": "Store"}}
    )
    assert spec.custom is not None
    assert spec.custom.module == module


def test_models_are_immutable() -> None:
    spec = TaskStoreSpec()
    with pytest.raises(ValidationError):
        spec.ttl_seconds = 1


def test_status_serialises_with_wire_names_and_rfc3339_times() -> None:
    status = TaskStoreStatus.model_validate(
        {
            "observedGeneration": 3,
            "endpoint": "tasks-redis.agents.svc:6379",
            "secretName": "tasks-redis-auth",
            "agents": {"injected": 1, "names": ["planner"], "conflicts": []},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Reconciled",
                    "observedGeneration": 3,
                    "lastTransitionTime": "2025-01-02T03:04:05Z",
                }
            ],
        }
    )
    assert status.agents == AgentsStatus(injected=1, names=["planner"], conflicts=[])
    assert status.conditions[0].status == ConditionStatus.TRUE
    dumped = status.model_dump(mode="json", exclude_none=True)
    assert dumped["secretName"] == "tasks-redis-auth"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert dumped["conditions"][0]["message"] == ""


@pytest.mark.parametrize(
    "condition",
    [
        {
            "type": "Ready",
            "status": "Yes",
            "reason": "R",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        },
        {
            "type": "Ready",
            "status": "True",
            "reason": "not camel",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        },
        {"type": "Ready", "status": "True", "reason": "R"},
    ],
)
def test_condition_constraints(condition: Manifest) -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(condition)


@pytest.mark.parametrize(
    ("quantity", "value"),
    [
        ("1Gi", Fraction(2**30)),
        ("64Mi", Fraction(64 * 2**20)),
        ("500m", Fraction(1, 2)),
        ("1k", Fraction(1000)),
        ("1M", Fraction(10**6)),
        ("2", Fraction(2)),
        (3, Fraction(3)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1e3", Fraction(1000)),
        ("1E-3", Fraction(1, 1000)),
        ("1E", Fraction(10**18)),
        (".5", Fraction(1, 2)),
        ("-1", Fraction(-1)),
    ],
)
def test_parse_quantity(quantity: str | int, value: Fraction) -> None:
    assert parse_quantity(quantity) == value


@pytest.mark.parametrize("quantity", ["", "Gi", "1GB", "1 Gi", "one", "1.2.3"])
def test_parse_quantity_refuses_malformed_input(quantity: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(quantity)
