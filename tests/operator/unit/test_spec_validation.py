"""parse_taskstore: every refusal names the field and says why; valid stores pass untouched."""

from collections.abc import Callable
from typing import Any

import pytest

from taskstore_operator.api.models import TaskStore
from taskstore_operator.api.rules import FieldError
from taskstore_operator.api.validation import InvalidSpecError, parse_taskstore

Manifest = dict[str, Any]


def refusals(manifest: Manifest) -> list[FieldError]:
    with pytest.raises(InvalidSpecError) as raised:
        parse_taskstore(manifest)
    return list(raised.value.errors)


def test_every_backend_parses(
    make_manifest: Callable[..., Manifest], any_backend_spec: Manifest
) -> None:
    store = parse_taskstore(make_manifest(any_backend_spec))
    assert store.metadata.name == "tasks"
    assert store.metadata.namespace == "agents"


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        ({"backend": "redis"}, "spec.redis", "redis is required when backend is redis"),
        (
            {"redis": {"managed": {}}},
            "spec.redis",
            "redis is allowed only when backend is redis",
        ),
        (
            {
                "backend": "custom",
                "redis": {"managed": {}},
                "custom": {"module": "a", "className": "B"},
            },
            "spec.redis",
            "redis is allowed only when backend is redis",
        ),
        ({"backend": "custom"}, "spec.custom", "custom is required when backend is custom"),
        (
            {"custom": {"module": "a", "className": "B"}},
            "spec.custom",
            "custom is allowed only when backend is custom",
        ),
        (
            {"backend": "redis", "redis": {}},
            "spec.redis",
            "exactly one of managed or external must be set",
        ),
        (
            {"backend": "redis", "redis": {"managed": {}, "external": {"host": "h"}}},
            "spec.redis",
            "exactly one of managed or external must be set",
        ),
        (
            {"backend": "redis", "redis": {"external": {}}},
            "spec.redis.external.host",
            "host is required unless mode is sentinel",
        ),
        (
            {"backend": "redis", "redis": {"external": {"mode": "sentinel"}}},
            "spec.redis.external.sentinels",
            "mode sentinel needs sentinels",
        ),
        (
            {"backend": "redis", "redis": {"external": {"mode": "sentinel", "sentinels": []}}},
            "spec.redis.external.sentinels",
            "mode sentinel needs sentinels",
        ),
        (
            {
                "backend": "redis",
                "redis": {"external": {"mode": "sentinel", "sentinels": ["s:1"], "host": "r"}},
            },
            "spec.redis.external.host",
            "host is not used with mode sentinel",
        ),
        (
            {"backend": "redis", "redis": {"external": {"mode": "cluster", "host": "r", "db": 1}}},
            "spec.redis.external.db",
            "db must be 0 with mode cluster",
        ),
        (
            {"backend": "redis", "redis": {"external": {"host": "r", "masterName": "m"}}},
            "spec.redis.external",
            "are used only with mode sentinel",
        ),
        (
            {
                "backend": "custom",
                "custom": {
                    "module": "a",
                    "className": "B",
                    "env": [{"name": "TA_PERSISTENCE_MODULE", "value": "x"}],
                },
            },
            "spec.custom.env",
            "env must not set TA_PERSISTENCE_MODULE or TA_PERSISTENCE_CLASS",
        ),
        (
            {
                "backend": "custom",
                "custom": {
                    "module": "a",
                    "className": "B",
                    "env": [{"name": "OK"}, {"name": "A", "value": "1", "valueFrom": {}}],
                },
            },
            "spec.custom.env[1]",
            "value and valueFrom are mutually exclusive",
        ),
        (
            {
                "backend": "custom",
                "custom": {
                    "module": "a",
                    "className": "B",
                    "env": [{"name": "A", "valueFrom": {}}],
                },
            },
            "spec.custom.env[0].valueFrom",
            "exactly one of secretKeyRef",
        ),
        (
            {
                "backend": "custom",
                "custom": {
                    "module": "a",
                    "className": "B",
                    "env": [
                        {
                            "name": "A",
                            "valueFrom": {
                                "fieldRef": {"fieldPath": "metadata.name"},
                                "configMapKeyRef": {"name": "c", "key": "k"},
                            },
                        }
                    ],
                },
            },
            "spec.custom.env[0].valueFrom",
            "exactly one of secretKeyRef",
        ),
    ],
)
def test_cross_field_rules(
    make_manifest: Callable[..., Manifest], spec: Manifest, field: str, message: str
) -> None:
    errors = refusals(make_manifest(spec))
    assert any(e.field == field and message in e.message for e in errors), errors


@pytest.mark.parametrize(
    ("resources", "storage", "field", "message"),
    [
        (
            {"requests": {"memory": "512Mi"}, "limits": {"memory": "256Mi"}},
            None,
            "spec.redis.managed.resources.requests.memory",
            "request 512Mi is greater than the limit 256Mi",
        ),
        (
            {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}},
            None,
            "spec.redis.managed.resources.requests.cpu",
            "greater than the limit",
        ),
        (
            {"limits": {"memory": "-1Gi"}},
            None,
            "spec.redis.managed.resources.limits.memory",
            "must not be negative",
        ),
        ({}, {"size": "0"}, "spec.redis.managed.storage.size", "must be greater than zero"),
        ({}, {"size": "-1Gi"}, "spec.redis.managed.storage.size", "must be greater than zero"),
    ],
)
def test_quantity_rules_only_the_operator_checks(
    make_manifest: Callable[..., Manifest],
    resources: Manifest,
    storage: Manifest | None,
    field: str,
    message: str,
) -> None:
    managed: Manifest = {"resources": resources}
    if storage is not None:
        managed["storage"] = storage
    errors = refusals(make_manifest({"backend": "redis", "redis": {"managed": managed}}))
    assert any(e.field == field and message in e.message for e in errors), errors


def test_equal_request_and_limit_are_fine(make_store: Callable[..., TaskStore]) -> None:
    resources = {"requests": {"memory": "1Gi"}, "limits": {"memory": "1024Mi"}}
    make_store({"backend": "redis", "redis": {"managed": {"resources": resources}}})


@pytest.mark.parametrize(
    ("name", "spec", "accepted"),
    [
        ("a" * 63, {}, True),
        ("a" * 64, {}, False),
        ("tasks.v1", {}, True),
        ("a" * 46, {"backend": "redis", "redis": {"managed": {}}}, True),
        ("a" * 47, {"backend": "redis", "redis": {"managed": {}}}, False),
        ("1tasks", {"backend": "redis", "redis": {"managed": {}}}, False),
        ("tasks.v1", {"backend": "redis", "redis": {"managed": {}}}, False),
        ("a" * 63, {"backend": "redis", "redis": {"external": {"host": "h"}}}, True),
    ],
)
def test_names_must_fit_labels_and_service_names(
    make_manifest: Callable[..., Manifest], name: str, spec: Manifest, accepted: bool
) -> None:
    manifest = make_manifest(spec, name)
    if accepted:
        parse_taskstore(manifest)
    else:
        assert [e.field for e in refusals(manifest)] == ["metadata.name"]


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"backend": "custom", "custom": {"module": "a b", "className": "C"}},
            "spec.custom.module",
            "must be a dotted module path (my_company.stores) or the path of a .py file",
        ),
        (
            {"backend": "redis", "redis": {"keyPrefix": "a b", "managed": {}}},
            "spec.redis.keyPrefix",
            "must be letters, digits, ':', '_', '.' and '-'",
        ),
        (
            {"backend": "redis", "redis": {"external": {"host": "h", "port": 0}}},
            "spec.redis.external.port",
            "Input should be greater than or equal to 1",
        ),
        (
            {
                "backend": "custom",
                "custom": {"module": "a", "className": "C", "env": [{"name": "9"}]},
            },
            "spec.custom.env[0].name",
            "must be an environment variable name",
        ),
    ],
)
def test_schema_errors_name_the_field_in_plain_words(
    make_manifest: Callable[..., Manifest], spec: Manifest, field: str, message: str
) -> None:
    errors = refusals(make_manifest(spec))
    assert any(e.field == field and e.message.startswith(message) for e in errors), errors


def test_every_problem_is_reported_at_once(make_manifest: Callable[..., Manifest]) -> None:
    spec = {
        "backend": "redis",
        "redis": {
            "managed": {
                "resources": {"requests": {"memory": "2Gi"}},
                "storage": {"size": "0"},
            }
        },
    }
    errors = refusals(make_manifest(spec, "9-lives"))
    assert {e.field for e in errors} == {
        "metadata.name",
        "spec.redis.managed.storage.size",
        "spec.redis.managed.resources.requests.memory",
    }


def test_the_error_message_lists_fields_and_never_echoes_values(
    make_manifest: Callable[..., Manifest],
) -> None:
    spec = {
        "backend": "custom",
        "custom": {"module": "a", "className": "C", "env": [{"name": "TOKEN", "value": 12345}]},
    }
    with pytest.raises(InvalidSpecError) as raised:
        parse_taskstore(make_manifest(spec))
    assert str(raised.value) == "spec.custom.env[0].value: Input should be a valid string"
    assert "12345" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_missing_metadata_is_reported(make_manifest: Callable[..., Manifest]) -> None:
    manifest = make_manifest({})
    del manifest["metadata"]["uid"]
    assert [str(e) for e in refusals(manifest)] == ["metadata.uid: Field required"]


@pytest.mark.parametrize(
    "image",
    [
        "redis:7.2",
        "redis",
        "library/redis:7.2.4-alpine",
        "registry.example:5000/team/redis:7.2",
        "Registry.Example/redis",
        "localhost/redis@sha256:" + "a" * 64,
        "redis:7.2@sha256:" + "0" * 64,
        "[::1]:5000/redis:7",
        "my_registry/re__dis--x.y:V_1.0",
    ],
)
def test_image_references_that_runtimes_pull_are_accepted(
    make_manifest: Callable[..., Manifest], image: str
) -> None:
    spec = {"backend": "redis", "redis": {"managed": {"image": image}}}
    assert parse_taskstore(make_manifest(spec)).spec.redis is not None


@pytest.mark.parametrize(
    "image",
    [
        " redis:7.2 ",
        "redis:7.2 ",
        "\tredis",
        "redis:7.2\n",
        "redis 7.2",
        "Redis:7.2",
        "redis::7.2",
        "redis:",
        "redis:-7",
        "redis@sha256:abc",
        "/redis",
        "redis/",
        "redis:" + "x" * 129,
    ],
)
def test_an_image_no_pod_can_be_made_from_is_refused(
    make_manifest: Callable[..., Manifest], image: str
) -> None:
    spec = {"backend": "redis", "redis": {"managed": {"image": image}}}
    errors = refusals(make_manifest(spec))
    assert [e.field for e in errors] == ["spec.redis.managed.image"]
    assert errors[0].message.startswith("must be an image reference such as redis:7.2")


@pytest.mark.parametrize("kind", ["requests", "limits"])
@pytest.mark.parametrize("resource", ["bogus", "CPU", "nvidia.com/gpu", "hugepages-2Mi", "pods"])
def test_resources_a_redis_container_cannot_use_are_refused(
    make_manifest: Callable[..., Manifest], kind: str, resource: str
) -> None:
    resources = {kind: {resource: "1"}}
    spec = {"backend": "redis", "redis": {"managed": {"resources": resources}}}
    errors = refusals(make_manifest(spec))
    assert [str(e) for e in errors] == [
        f"spec.redis.managed.resources.{kind}: "
        "resource names must be one of: cpu, memory, ephemeral-storage"
    ]


def test_every_resource_a_redis_container_uses_is_accepted(
    make_store: Callable[..., TaskStore],
) -> None:
    amounts = {"cpu": "1", "memory": "64Mi", "ephemeral-storage": "1Gi"}
    store = make_store(
        {"backend": "redis", "redis": {"managed": {"resources": {"requests": amounts}}}}
    )
    assert store.spec.redis is not None and store.spec.redis.managed is not None
    assert store.spec.redis.managed.resources.requests == amounts
