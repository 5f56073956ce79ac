"""The operator's own Prometheus metrics, read from its /metrics endpoint."""

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import DEFAULTS
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def test_metrics(k8s: Kube, operator: OperatorProcess, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", DEFAULTS)
    wait_until("Ready", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)

    def injected() -> float | None:
        return next(
            (
                value
                for name, labels, value in operator.samples()
                if name == "taskstore_operator_injected_agents"
                and labels == {"namespace": namespace, "taskstore": "tasks"}
            ),
            None,
        )

    wait_until("the injected agents gauge", lambda: injected() == 1.0)
    metrics = operator.metrics()
    assert metrics["taskstore_operator_reconcile_duration_seconds_count"] > 0
    assert metrics["taskstore_operator_reconciles_total"] > 0
