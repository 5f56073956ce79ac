"""Which agents the operator configures: a label removed takes the environment away, and a
variable set by hand is a conflict the operator reports and leaves alone."""

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import DEFAULTS, EXTERNAL
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_operator.api.contract import CONFIG_HASH_ANNOTATION, TASKSTORE_LABEL

pytestmark = pytest.mark.e2e


def test_removing_the_label_removes_the_variables(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner", env=[{"name": "OWN", "value": "kept"}])
    k8s.create_store(namespace, "tasks", DEFAULTS)
    wait_until("env", lambda: len(k8s.env(namespace, "planner")) == 3, timeout=TIMEOUT)

    k8s.apps.patch_namespaced_deployment(
        "planner", namespace, {"metadata": {"labels": {TASKSTORE_LABEL: None}}}
    )

    wait_until("env removed", lambda: k8s.env(namespace, "planner") == {"OWN": "kept"})
    meta = k8s.template_meta(namespace, "planner")
    assert TASKSTORE_LABEL not in meta["labels"]
    assert CONFIG_HASH_ANNOTATION not in (meta.get("annotations") or {})
    wait_until(
        "no agents on status",
        lambda: (k8s.store(namespace, "tasks") or {})["status"]["agents"]["injected"] == 0,
    )


def test_a_hand_set_variable_is_a_conflict(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(
        namespace, "by-hand", env=[{"name": "TA_REDIS_HOST", "value": "mine.example"}]
    )
    k8s.create_deployment(namespace, "clean")
    k8s.create_store(namespace, "tasks", EXTERNAL)

    wait_until(
        "Ready=False AgentsConflict",
        lambda: k8s.ready(namespace, "tasks", "False", "AgentsConflict"),
        timeout=TIMEOUT,
    )
    status = (k8s.store(namespace, "tasks") or {})["status"]
    assert status["agents"]["conflicts"] == ["by-hand"]
    assert k8s.env(namespace, "by-hand") == {"TA_REDIS_HOST": "mine.example"}
    wait_until("the clean one configured", lambda: "TA_REDIS_HOST" in k8s.env(namespace, "clean"))
