"""The managed Redis manifests: names, ownership, hardening, storage, and no password in sight."""

import base64
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from taskstore_operator.api.models import TaskStore
from taskstore_operator.render import redis
from taskstore_operator.render.redis import (
    generate_password,
    managed_redis,
    maxmemory_bytes,
    redis_host,
    render_redis_config,
    render_redis_configmap,
    render_redis_networkpolicy,
    render_redis_secret,
    render_redis_service,
    render_redis_statefulset,
)

Manifest = dict[str, Any]
StoreFactory = Callable[..., TaskStore]
PASSWORD = SecretStr("correct-horse-battery-staple")
FINGERPRINT = "f" * 64


def managed(**settings: Any) -> Manifest:
    return {"backend": "redis", "redis": {"managed": settings}}


def all_objects(store: TaskStore) -> list[Manifest]:
    return [
        render_redis_secret(store, PASSWORD),
        render_redis_configmap(store),
        render_redis_service(store),
        render_redis_statefulset(store, FINGERPRINT),
        render_redis_networkpolicy(store),
    ]


def container(statefulset: Manifest) -> Manifest:
    (redis_container,) = statefulset["spec"]["template"]["spec"]["containers"]
    result: Manifest = redis_container
    return result


@pytest.fixture
def store(make_store: StoreFactory) -> TaskStore:
    return make_store(managed())


def test_names_follow_the_contract(store: TaskStore) -> None:
    assert [(o["kind"], o["metadata"]["name"]) for o in all_objects(store)] == [
        ("Secret", "tasks-redis-auth"),
        ("ConfigMap", "tasks-redis-config"),
        ("Service", "tasks-redis"),
        ("StatefulSet", "tasks-redis"),
        ("NetworkPolicy", "tasks-redis"),
    ]
    assert redis_host(store) == "tasks-redis.agents.svc"


def test_every_object_is_owned_labelled_and_namespaced(store: TaskStore) -> None:
    for manifest in all_objects(store):
        metadata = manifest["metadata"]
        assert metadata["namespace"] == "agents"
        assert metadata["labels"] == {
            "app.kubernetes.io/name": "redis",
            "app.kubernetes.io/instance": "tasks",
            "app.kubernetes.io/managed-by": "taskstore-operator",
            "app.kubernetes.io/part-of": "teal-agents",
        }
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "tealagents.io/v1alpha1",
                "kind": "TaskStore",
                "name": "tasks",
                "uid": "uid-1234",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_the_secret_holds_the_password_under_password(store: TaskStore) -> None:
    secret = render_redis_secret(store, PASSWORD)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD.get_secret_value()
    assert "annotations" not in secret["metadata"]


def test_the_password_never_shows_in_reprs() -> None:
    password = generate_password()
    assert password.get_secret_value() not in repr(password)
    assert password.get_secret_value() not in str(password)


def test_generated_passwords_are_long_random_and_config_safe() -> None:
    passwords = {generate_password().get_secret_value() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) >= 43
        assert password.replace("-", "").replace("_", "").isalnum()


def test_no_object_but_the_secret_carries_the_password(store: TaskStore) -> None:
    text = repr(all_objects(store)[1:])
    assert PASSWORD.get_secret_value() not in text
    encoded = base64.b64encode(PASSWORD.get_secret_value().encode()).decode()
    assert encoded not in text


def test_the_service_exposes_6379_to_the_redis_pod(store: TaskStore) -> None:
    spec = render_redis_service(store)["spec"]
    assert spec["selector"] == {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": "tasks",
    }
    assert spec["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}
    ]


def test_the_networkpolicy_admits_only_this_stores_agents_on_6379(store: TaskStore) -> None:
    spec = render_redis_networkpolicy(store)["spec"]
    assert spec["podSelector"]["matchLabels"] == render_redis_service(store)["spec"]["selector"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"tealagents.io/taskstore": "tasks"}}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }
    ]


@pytest.mark.parametrize(
    ("settings", "expected_lines", "absent_lines"),
    [
        ({}, ["appendonly no", 'save ""', "maxmemory 187904819"], ["appendonly yes"]),
        ({"storage": {}}, ["appendonly yes"], ["appendonly no", 'save ""']),
        (
            {"resources": {"limits": {"memory": "1Gi"}}},
            [f"maxmemory {int(2**30 * 0.7)}"],
            [],
        ),
        ({"resources": {"limits": {}}}, [], ["maxmemory 187904819"]),
    ],
)
def test_redis_config(
    make_store: StoreFactory,
    settings: Manifest,
    expected_lines: list[str],
    absent_lines: list[str],
) -> None:
    lines = render_redis_config(make_store(managed(**settings))).splitlines()
    assert "maxmemory-policy noeviction" in lines
    assert "port 6379" in lines
    for line in expected_lines:
        assert line in lines
    for line in absent_lines:
        assert line not in lines
    if settings.get("resources", {}).get("limits") == {}:
        assert not any(line.startswith("maxmemory ") for line in lines)


def test_maxmemory_is_seventy_percent_of_the_limit(make_store: StoreFactory) -> None:
    store = make_store(managed(resources={"requests": {}, "limits": {"memory": "1000"}}))
    assert maxmemory_bytes(managed_redis(store)) == 700


def test_the_configmap_carries_redis_conf(store: TaskStore) -> None:
    assert render_redis_configmap(store)["data"] == {"redis.conf": render_redis_config(store)}


def test_the_pod_is_locked_down(store: TaskStore) -> None:
    pod = render_redis_statefulset(store, FINGERPRINT)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["fsGroup"] == 999
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(render_redis_statefulset(store, FINGERPRINT))["securityContext"]
    assert context == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 999,
        "runAsGroup": 999,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_the_password_comes_from_the_secret_and_is_required(store: TaskStore) -> None:
    redis_container = container(render_redis_statefulset(store, FINGERPRINT))
    assert redis_container["env"] == [
        {
            "name": "REDISCLI_AUTH",
            "valueFrom": {"secretKeyRef": {"name": "tasks-redis-auth", "key": "password"}},
        }
    ]
    command = " ".join(redis_container["command"])
    assert "--requirepass" in command
    assert '"${REDISCLI_AUTH:?' in command  # an empty password stops the start


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe"])
def test_probes_authenticate_without_the_password_on_a_command_line(
    store: TaskStore, probe: str
) -> None:
    settings = container(render_redis_statefulset(store, FINGERPRINT))[probe]
    command = settings["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    assert "redis-cli" in command[2]
    assert " -a " not in command[2]
    assert "--pass" not in command[2]
    assert "PONG" in command[2]
    assert settings["timeoutSeconds"] > 0


def test_only_liveness_tolerates_loading(store: TaskStore) -> None:
    redis_container = container(render_redis_statefulset(store, FINGERPRINT))
    assert "LOADING" in redis_container["livenessProbe"]["exec"]["command"][2]
    assert "LOADING" not in redis_container["readinessProbe"]["exec"]["command"][2]


def test_resources_are_passed_through(make_store: StoreFactory) -> None:
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    store = make_store(managed(resources=resources))
    assert container(render_redis_statefulset(store, FINGERPRINT))["resources"] == resources


def test_empty_resource_maps_are_left_out(make_store: StoreFactory) -> None:
    store = make_store(managed(resources={"requests": {}, "limits": {}}))
    assert container(render_redis_statefulset(store, FINGERPRINT))["resources"] == {}


def test_without_storage_data_is_an_emptydir(store: TaskStore) -> None:
    spec = render_redis_statefulset(store, FINGERPRINT)["spec"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert volumes["tmp"]["emptyDir"]["medium"] == "Memory"
    assert volumes["config"] == {"name": "config", "configMap": {"name": "tasks-redis-config"}}
    assert "volumeClaimTemplates" not in spec
    assert "persistentVolumeClaimRetentionPolicy" not in spec


@pytest.mark.parametrize(
    ("storage", "policy", "claim_spec"),
    [
        (
            {"size": "5Gi"},
            "Retain",
            {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}},
        ),
        (
            {"size": "5Gi", "storageClassName": "fast"},
            "Delete",
            {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
                "storageClassName": "fast",
            },
        ),
    ],
)
def test_with_storage_data_is_a_claim_kept_or_deleted_by_policy(
    make_store: StoreFactory, storage: Manifest, policy: str, claim_spec: Manifest
) -> None:
    store = make_store(managed(storage=storage, deletionPolicy=policy))
    spec = render_redis_statefulset(store, FINGERPRINT)["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"] == claim_spec
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": policy,
        "whenScaled": "Retain",
    }
    volumes = [v["name"] for v in spec["template"]["spec"]["volumes"]]
    assert "data" not in volumes


def test_mounts(store: TaskStore) -> None:
    mounts = container(render_redis_statefulset(store, FINGERPRINT))["volumeMounts"]
    assert {m["mountPath"]: m["name"] for m in mounts} == {
        "/data": "data",
        "/etc/redis": "config",
        "/tmp": "tmp",
    }


def test_the_statefulset_selects_its_pod(store: TaskStore) -> None:
    spec = render_redis_statefulset(store, FINGERPRINT)["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == "tasks-redis"
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert "tealagents.io/taskstore" not in labels


@pytest.mark.parametrize(
    "change",
    [
        {"image": "redis:7.4"},
        {"resources": {"limits": {"memory": "1Gi"}}},
    ],
)
def test_spec_hash_follows_every_change(make_store: StoreFactory, change: Manifest) -> None:
    before = render_redis_statefulset(make_store(managed()), FINGERPRINT)
    after = render_redis_statefulset(make_store(managed(**change)), FINGERPRINT)
    key = "tealagents.io/spec-hash"
    assert before["metadata"]["annotations"][key] != after["metadata"]["annotations"][key]


def test_spec_hash_is_stable(make_store: StoreFactory) -> None:
    first = render_redis_statefulset(make_store(managed()), FINGERPRINT)
    assert first == render_redis_statefulset(make_store(managed()), FINGERPRINT)
    assert len(first["metadata"]["annotations"]["tealagents.io/spec-hash"]) == 16


def test_a_new_password_restarts_redis(store: TaskStore) -> None:
    key = "tealagents.io/config-hash"
    before = render_redis_statefulset(store, FINGERPRINT)["spec"]["template"]
    after = render_redis_statefulset(store, "0" * 64)["spec"]["template"]
    assert before["metadata"]["annotations"][key] != after["metadata"]["annotations"][key]


@pytest.mark.parametrize(
    "render",
    [
        render_redis_configmap,
        render_redis_service,
        render_redis_networkpolicy,
        lambda store: render_redis_statefulset(store, FINGERPRINT),
    ],
)
def test_every_derived_object_carries_a_spec_hash(
    store: TaskStore, render: Callable[[TaskStore], Manifest]
) -> None:
    assert set(render(store)["metadata"]["annotations"]) == {"tealagents.io/spec-hash"}


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"backend": "redis", "redis": {"external": {"host": "h"}}},
        {"backend": "custom", "custom": {"module": "a", "className": "B"}},
    ],
)
def test_rendering_needs_a_managed_redis(make_store: StoreFactory, spec: Manifest) -> None:
    with pytest.raises(ValueError, match="has no managed Redis"):
        render_redis_statefulset(make_store(spec), FINGERPRINT)


def test_the_start_command_is_a_single_shell_line() -> None:
    assert "\n" not in redis.START_COMMAND
    assert redis.START_COMMAND.count("exec ") == 1
