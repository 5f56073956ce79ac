"""Deleting a TaskStore: the agents are stripped, the owned objects garbage-collected, and
the managed Redis' volume claims deleted or kept as its deletionPolicy says (through the
StatefulSet's retention policy, without a finalizer on the TaskStore). Leaving the managed
backend treats the claims the same way."""

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import managed_with_storage, redis_volume_claim
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_operator.api.contract import TASKSTORE_LABEL

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_deleting_the_store(k8s: Kube, namespace: str, policy: str) -> None:
    managed_store_with_a_claim(k8s, namespace, policy)

    k8s.delete_store(namespace, "tasks")

    wait_until("the TaskStore gone", lambda: k8s.store(namespace, "tasks") is None, timeout=TIMEOUT)
    # Stripped once the TaskStore is gone (no finalizer holds it for the operator).
    wait_until("env removed", lambda: k8s.env(namespace, "planner") == {}, timeout=TIMEOUT)
    assert TASKSTORE_LABEL not in k8s.template_meta(namespace, "planner")["labels"]
    owned = (
        (k8s.apps.read_namespaced_stateful_set, "tasks-redis"),
        (k8s.core.read_namespaced_secret, "tasks-redis-auth"),
        (k8s.core.read_namespaced_config_map, "tasks-redis-config"),
        (k8s.core.read_namespaced_service, "tasks-redis"),
    )

    def collected() -> bool:
        return not any(k8s.exists(read, name, namespace) for read, name in owned)

    # The garbage collector learns of a new CRD at its next discovery sync (every 30 s).
    wait_until("the owned objects garbage-collected", collected, timeout=90)

    claim_went_as_the_policy_says(k8s, namespace, policy)


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_leaving_the_managed_backend(k8s: Kube, namespace: str, policy: str) -> None:
    managed_store_with_a_claim(k8s, namespace, policy)

    k8s.patch_store(namespace, "tasks", {"backend": "memory", "redis": None})

    wait_until(
        "the StatefulSet deleted",
        lambda: not k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
        timeout=TIMEOUT,
    )
    assert "TA_REDIS_HOST" not in k8s.env(namespace, "planner")
    claim_went_as_the_policy_says(k8s, namespace, policy)


def managed_store_with_a_claim(k8s: Kube, namespace: str, policy: str) -> None:
    """Store ``tasks`` on a managed Redis with storage under ``policy``, agent ``planner``
    configured, and the StatefulSet's volume claim made as its controller would."""
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", managed_with_storage(policy))
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
        timeout=TIMEOUT,
    )
    k8s.set_redis_ready(namespace, "tasks")
    wait_until("env", lambda: "TA_REDIS_HOST" in k8s.env(namespace, "planner"), timeout=TIMEOUT)
    statefulset = k8s.plain(k8s.apps.read_namespaced_stateful_set("tasks-redis", namespace))
    claim = redis_volume_claim("tasks", statefulset)
    k8s.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", claim)


def claim_went_as_the_policy_says(k8s: Kube, namespace: str, policy: str) -> None:
    """Under Delete the claim goes with the StatefulSet (garbage collection, no finalizer
    on the TaskStore); under Retain it stays. No pvc-protection controller runs locally: a
    deleted claim stays Terminating, and its finalizer must go by hand, or the namespace
    could never be deleted."""

    def claim_deleted() -> bool:
        claim_now = k8s.plain(
            k8s.core.read_namespaced_persistent_volume_claim("data-tasks-redis-0", namespace)
        )
        return bool(claim_now["metadata"].get("deletionTimestamp"))

    if policy == "Delete":
        wait_until("the claim deleted", claim_deleted, timeout=90)
    else:
        assert not claim_deleted()
    k8s.core.patch_namespaced_persistent_volume_claim(
        "data-tasks-redis-0", namespace, {"metadata": {"finalizers": None}}
    )
