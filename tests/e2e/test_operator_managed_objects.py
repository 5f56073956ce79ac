"""The managed Redis objects are the operator's own, and only those: a same-named object it
did not create is never adopted, changed or deleted; a hand edit of one it created is
reverted (also across a restart), and a converged store then writes nothing; a generated
password Secret whose key was renamed is restored with the same password."""

import base64
from typing import Any

import pytest
from kubernetes import client

from support.cluster import TIMEOUT, Kube
from support.samples import MANAGED
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import RequestKind, requests_between
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def _writes(before: dict[RequestKind, float], after: dict[RequestKind, float]) -> float:
    return sum(n for kind, n in requests_between(before, after).items() if kind.is_write)


def _managed_ready(k8s: Kube, operator: OperatorProcess, namespace: str) -> None:
    k8s.create_store(namespace, "cache", MANAGED)
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "cache-redis", namespace),
        timeout=TIMEOUT,
    )
    k8s.set_redis_ready(namespace, "cache")
    wait_until("Ready=True", lambda: k8s.ready(namespace, "cache"), timeout=TIMEOUT)
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)


def test_objects_it_did_not_create_are_never_adopted_changed_or_deleted(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "cache-redis-config"}, "data": {"mine": "yes"}},
    )
    k8s.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "cache-redis-auth"}, "stringData": {"password": "users-own"}},
    )
    before = {
        name: k8s.plain(read(name, namespace))
        for read, name in (
            (k8s.core.read_namespaced_config_map, "cache-redis-config"),
            (k8s.core.read_namespaced_secret, "cache-redis-auth"),
        )
    }
    k8s.create_deployment(namespace, "planner", "cache")
    k8s.create_store(namespace, "cache", MANAGED)

    wait_until(
        "Ready=False NameInUse",
        lambda: k8s.ready(namespace, "cache", "False", "NameInUse"),
        timeout=TIMEOUT,
    )
    message = k8s.condition(namespace, "cache")["message"]
    assert "ConfigMap cache-redis-config" in message
    assert "Secret cache-redis-auth" in message
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    # Nothing of the user's was touched, and the user's password was not handed to agents.
    for read, name in (
        (k8s.core.read_namespaced_config_map, "cache-redis-config"),
        (k8s.core.read_namespaced_secret, "cache-redis-auth"),
    ):
        now = k8s.plain(read(name, namespace))
        assert now["metadata"]["resourceVersion"] == before[name]["metadata"]["resourceVersion"]
        assert not now["metadata"].get("ownerReferences")
    assert k8s.env(namespace, "planner") == {}

    # Switching to memory deletes none of them.
    k8s.patch_store(namespace, "cache", {"backend": "memory", "redis": None})
    wait_until("Ready=True", lambda: k8s.ready(namespace, "cache"), timeout=TIMEOUT)
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    assert k8s.exists(k8s.core.read_namespaced_config_map, "cache-redis-config", namespace)
    assert k8s.exists(k8s.core.read_namespaced_secret, "cache-redis-auth", namespace)


def _statefulset_container(k8s: Kube, namespace: str) -> dict[str, Any]:
    statefulset = k8s.plain(k8s.apps.read_namespaced_stateful_set("cache-redis", namespace))
    container: dict[str, Any] = statefulset["spec"]["template"]["spec"]["containers"][0]
    return container


def test_hand_edits_are_reverted_also_across_a_restart_and_then_nothing_is_written(
    k8s: Kube, control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    _managed_ready(k8s, operator, namespace)
    networking = client.NetworkingV1Api(k8s.api)
    policy = k8s.plain(networking.read_namespaced_network_policy("cache-redis", namespace))
    config = k8s.plain(k8s.core.read_namespaced_config_map("cache-redis-config", namespace))
    selector = k8s.plain(k8s.core.read_namespaced_service("cache-redis", namespace))["spec"][
        "selector"
    ]
    container = _statefulset_container(k8s, namespace)

    def edit() -> None:
        networking.patch_namespaced_network_policy(
            "cache-redis",
            namespace,
            {"spec": {"ingress": [{"from": [{"namespaceSelector": {}}]}]}},
        )
        k8s.core.patch_namespaced_config_map(
            "cache-redis-config",
            namespace,
            {"data": {"redis.conf": "protected-mode no\n"}},
        )
        k8s.core.patch_namespaced_service(
            "cache-redis", namespace, {"spec": {"selector": {"app.kubernetes.io/name": "evil"}}}
        )
        k8s.apps.patch_namespaced_stateful_set(
            "cache-redis",
            namespace,
            {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": container["name"],
                                    "image": "evil/redis:latest",
                                    "securityContext": {"runAsNonRoot": False},
                                }
                            ]
                        }
                    }
                }
            },
        )

    def restored() -> bool:
        now = _statefulset_container(k8s, namespace)
        return bool(
            k8s.plain(networking.read_namespaced_network_policy("cache-redis", namespace))["spec"]
            == policy["spec"]
            and k8s.plain(k8s.core.read_namespaced_config_map("cache-redis-config", namespace))[
                "data"
            ]
            == config["data"]
            and k8s.plain(k8s.core.read_namespaced_service("cache-redis", namespace))["spec"][
                "selector"
            ]
            == selector
            and now["image"] == container["image"]
            and now["securityContext"] == container["securityContext"]
        )

    edit()
    wait_until("the hand edits reverted", restored, timeout=TIMEOUT)

    # Edited while the operator is down: reverted at start.
    operator.stop()
    try:
        edit()
        assert not restored()
    finally:
        operator.start()
    wait_until("the hand edits reverted after a restart", restored, timeout=TIMEOUT)
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)

    # Converged: a restart writes nothing.
    wait_until("other namespaces gone", k8s.no_namespace_terminating, timeout=120)
    operator.stop()
    before = control_plane.request_totals()
    operator.start()
    wait_until(
        "every TaskStore reconciled",
        lambda: (
            operator.metrics().get("taskstore_operator_reconciles_total", 0)
            >= len(k8s.all_stores())
            and operator.idle()
        ),
        timeout=TIMEOUT,
    )
    assert _writes(before, control_plane.request_totals()) == 0
    assert restored()


def test_a_renamed_password_key_is_restored_with_the_same_password(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create_deployment(namespace, "planner", "cache")
    _managed_ready(k8s, operator, namespace)
    wait_until("the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    secret = k8s.plain(k8s.core.read_namespaced_secret("cache-redis-auth", namespace))
    password = secret["data"]["password"]
    config_hash = k8s.config_hash(namespace, "planner")

    k8s.core.patch_namespaced_secret(
        "cache-redis-auth", namespace, {"data": {"pass": password, "password": None}}
    )

    def restored() -> bool:
        data = k8s.plain(k8s.core.read_namespaced_secret("cache-redis-auth", namespace))["data"]
        return bool(data.get("password") == password)

    wait_until("the password key restored", restored, timeout=TIMEOUT)
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    assert k8s.ready(namespace, "cache", "True", "Reconciled")
    # Same password: the agents are not rolled.
    assert k8s.config_hash(namespace, "planner") == config_hash
    assert base64.b64decode(password).decode() not in operator.log()


def test_a_password_secret_without_a_usable_key_is_reported(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    _managed_ready(k8s, operator, namespace)
    secret = k8s.plain(k8s.core.read_namespaced_secret("cache-redis-auth", namespace))
    password = secret["data"]["password"]
    k8s.core.patch_namespaced_secret(
        "cache-redis-auth",
        namespace,
        {"data": {"a": password, "b": password, "password": None}},
    )
    wait_until(
        "Ready=False PasswordKeyMissing",
        lambda: k8s.ready(namespace, "cache", "False", "PasswordKeyMissing"),
        timeout=TIMEOUT,
    )
    message = k8s.condition(namespace, "cache")["message"]
    assert "Secret cache-redis-auth" in message
    assert "password" in message
