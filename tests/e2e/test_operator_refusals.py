"""Invalid TaskStores: the API server refuses what the schema expresses, the operator the
rest, and it creates nothing for a store it refuses."""

import pytest
from kubernetes.client.exceptions import ApiException

from support.cluster import TIMEOUT, Kube
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"backend": "redis"}, "redis is required when backend is redis"),
        # Beyond a 32-bit int, which Redis and the library refuse in the agents.
        ({"ttlSeconds": 2**31}, "spec.ttlSeconds"),
        (
            {"backend": "redis", "redis": {"external": {"host": "h", "db": 2**31}}},
            "spec.redis.external.db",
        ),
    ],
)
def test_the_server_refuses_what_the_schema_expresses(
    k8s: Kube, namespace: str, spec: dict[str, object], named: str
) -> None:
    with pytest.raises(ApiException) as refused:
        k8s.create_store(namespace, "tasks", spec)
    assert refused.value.status == 422
    assert named in str(refused.value.body)


def test_the_operator_refuses_the_rest_and_creates_nothing(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    spec = {"backend": "redis", "redis": {"managed": {"storage": {"size": "0"}}}}
    k8s.create_store(namespace, "tasks", spec)

    wait_until(
        "Ready=False InvalidSpec",
        lambda: k8s.ready(namespace, "tasks", "False", "InvalidSpec"),
        timeout=TIMEOUT,
    )
    assert "spec.redis.managed.storage.size" in k8s.condition(namespace, "tasks")["message"]
    assert not k8s.exists(k8s.core.read_namespaced_secret, "tasks-redis-auth", namespace)
    assert not k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace)
    assert k8s.env(namespace, "planner") == {}
    wait_until(
        "an InvalidSpec Event",
        lambda: any(e["reason"] == "InvalidSpec" for e in k8s.events(namespace)),
    )
