"""The operator's reach: a TaskStore configures agents of its own namespace only, and
``--namespace`` flags limit the operator to the namespaces they name."""

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import DEFAULTS, EXTERNAL
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def test_a_deployment_in_another_namespace_gets_nothing(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    other = f"{namespace[:50]}-other"
    k8s.create_namespace(other)
    try:
        k8s.create_deployment(other, "intruder")
        k8s.create_deployment(namespace, "planner")
        k8s.create_store(namespace, "tasks", EXTERNAL)
        wait_until(
            "own agent configured",
            lambda: bool(k8s.config_hash(namespace, "planner")),
            timeout=TIMEOUT,
        )
        wait_until("the operator idle", operator.idle)
        assert k8s.env(other, "intruder") == {}
        warned = [e for e in k8s.events(other) if e["reason"] == "TaskStoreNotFound"]
        assert [e["involvedObject"]["name"] for e in warned] == ["intruder"]
    finally:
        k8s.delete_namespace(other)


def test_namespace_flags_scope_the_operator(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    unwatched = f"{namespace[:50]}-unwatched"
    k8s.create_namespace(unwatched)
    operator.stop()
    operator.start(f"--namespace={namespace}")
    try:
        for where in (namespace, unwatched):
            k8s.create_deployment(where, "planner")
            k8s.create_store(where, "tasks", DEFAULTS)
        wait_until(
            "the watched store Ready", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT
        )
        wait_until("the operator idle", operator.idle)
        assert k8s.condition(unwatched, "tasks") == {}
        assert k8s.env(unwatched, "planner") == {}
    finally:
        operator.stop()
        operator.start()
    wait_until("the unwatched store Ready", lambda: k8s.ready(unwatched, "tasks"), timeout=TIMEOUT)
    k8s.delete_store(unwatched, "tasks")
    wait_until("the store deleted", lambda: k8s.store(unwatched, "tasks") is None, timeout=TIMEOUT)
    k8s.delete_namespace(unwatched)
