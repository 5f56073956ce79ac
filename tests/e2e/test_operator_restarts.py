"""The operator stopped, killed and restarted: it catches up with what changed meanwhile,
converges after a kill, and a restart of a converged operator writes nothing (counted by
the API server's own apiserver_request_total)."""

import signal

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import DEFAULTS, MANAGED
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import RequestKind, requests_between
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_operator.api.contract import TASKSTORE_LABEL

pytestmark = pytest.mark.e2e


def writes_between(
    before: dict[RequestKind, float], after: dict[RequestKind, float]
) -> dict[RequestKind, float]:
    """Write requests served between two readings of the API server's own counters."""
    return {kind: n for kind, n in requests_between(before, after).items() if kind.is_write}


def test_a_label_removed_while_the_operator_is_down_is_stripped_after_a_restart(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    # Reconciles list Deployments by the opt-in label; one that lost it is known from the
    # Deployment watch, here from its first listing at start.
    k8s.create_deployment(namespace, "planner", env=[{"name": "OWN", "value": "kept"}])
    k8s.create_store(namespace, "tasks", DEFAULTS)
    wait_until("env", lambda: len(k8s.env(namespace, "planner")) == 3, timeout=TIMEOUT)
    operator.stop()
    try:
        k8s.apps.patch_namespaced_deployment(
            "planner", namespace, {"metadata": {"labels": {TASKSTORE_LABEL: None}}}
        )
    finally:
        operator.start()

    wait_until(
        "env removed",
        lambda: k8s.env(namespace, "planner") == {"OWN": "kept"},
        timeout=TIMEOUT,
    )
    assert TASKSTORE_LABEL not in k8s.template_meta(namespace, "planner")["labels"]


def test_killed_mid_way_converges_and_a_restart_writes_nothing(
    k8s: Kube, control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    for index in range(3):
        k8s.create_deployment(namespace, f"agent-{index}")
    k8s.create_store(namespace, "tasks", MANAGED)
    wait_until(
        "the password Secret",
        lambda: k8s.exists(k8s.core.read_namespaced_secret, "tasks-redis-auth", namespace),
        timeout=TIMEOUT,
    )
    operator.stop(signal.SIGKILL)
    k8s.create_store(namespace, "second", DEFAULTS)
    operator.start()
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
        timeout=TIMEOUT,
    )
    k8s.set_redis_ready(namespace, "tasks")
    wait_until(
        "Ready",
        lambda: k8s.ready(namespace, "tasks") and k8s.ready(namespace, "second"),
        timeout=TIMEOUT,
    )
    wait_until(
        "all agents", lambda: all(k8s.config_hash(namespace, f"agent-{i}") for i in range(3))
    )
    wait_until("the operator idle", operator.idle)
    # Other tests' namespaces may still be going (the namespace controller deletes their
    # objects); measure once the API server is quiet.
    wait_until("other namespaces gone", lambda: k8s.no_namespace_terminating(), timeout=120)
    readings = [control_plane.request_totals()]

    def settled() -> bool:
        readings.append(control_plane.request_totals())
        return not writes_between(readings[-2], readings[-1]) and operator.idle()

    wait_until("no more writes", settled, timeout=60)

    operator.stop()
    before = control_plane.request_totals()
    operator.start()
    stores = len(k8s.all_stores())
    wait_until(
        "every TaskStore reconciled",
        lambda: (
            operator.metrics().get("taskstore_operator_reconciles_total", 0) >= stores
            and operator.idle()
        ),
        timeout=TIMEOUT,
    )
    after = control_plane.request_totals()

    assert writes_between(before, after) == {}
    assert operator.metrics().get("taskstore_operator_writes_total", 0) == 0
