"""Which agents the operator configures: a label removed takes the environment away, a
variable set by hand is a conflict the operator reports and leaves alone, a value of ours
edited by hand is taken back, a Deployment moves between stores in one rollout, and a
container annotation that names a container the pod lacks is reported."""

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import DEFAULTS, EXTERNAL, MANAGED
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import OperatorProcess
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


def test_a_hand_edited_injected_variable_is_restored_and_blocks_nothing(
    k8s: Kube, control_plane: ControlPlane, namespace: str
) -> None:
    k8s.create_deployment(namespace, "x1")
    k8s.create_deployment(namespace, "x2")
    k8s.create_store(namespace, "tasks", EXTERNAL)

    def hosts(expected: str) -> bool:
        return all(
            k8s.env(namespace, name).get("TA_REDIS_HOST") == expected for name in ("x1", "x2")
        )

    wait_until("both configured", lambda: hosts("redis.example.internal"), timeout=TIMEOUT)

    edited = control_plane.kubectl(
        "set", "env", "-n", namespace, "deploy/x1", "TA_REDIS_HOST=attacker.example"
    )
    assert edited.returncode == 0, edited.stderr

    # The injected variable is the operator's: the hand edit is drift, and is taken back.
    wait_until("x1 restored", lambda: hosts("redis.example.internal"), timeout=TIMEOUT)
    # And a later spec change reaches every Deployment, with the status up to date.
    k8s.patch_store(
        namespace, "tasks", {"redis": {"external": {"host": "redis2.example.internal"}}}
    )
    wait_until("both moved", lambda: hosts("redis2.example.internal"), timeout=TIMEOUT)

    def current() -> bool:
        store = k8s.store(namespace, "tasks") or {}
        status = store.get("status") or {}
        return status.get("observedGeneration") == store["metadata"]["generation"] and k8s.ready(
            namespace, "tasks"
        )

    wait_until("the status of the new generation, Ready", current, timeout=TIMEOUT)


def test_moving_a_deployment_to_another_store_is_one_rollout_once_it_is_usable(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create_store(namespace, "a", DEFAULTS)
    k8s.create_store(namespace, "b", MANAGED)
    k8s.create_deployment(namespace, "planner", store="a")
    wait_until(
        "the agent on a", lambda: bool(k8s.config_hash(namespace, "planner")), timeout=TIMEOUT
    )
    on_a = k8s.env(namespace, "planner")
    generation = k8s.deployment(namespace, "planner")["metadata"]["generation"]
    wait_until(
        "b provisioning",
        lambda: k8s.ready(namespace, "b", "False", "Provisioning"),
        timeout=TIMEOUT,
    )

    k8s.apps.patch_namespaced_deployment(
        "planner", namespace, {"metadata": {"labels": {TASKSTORE_LABEL: "b"}}}
    )

    # b is not usable yet: the agent keeps a.
    wait_until(
        "a's reconcile has seen the move",
        lambda: (k8s.store(namespace, "a") or {})["status"]["agents"]["injected"] == 0,
        timeout=TIMEOUT,
    )
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    assert k8s.env(namespace, "planner") == on_a
    assert k8s.deployment(namespace, "planner")["metadata"]["generation"] == generation

    k8s.set_redis_ready(namespace, "b")

    wait_until(
        "the agent on b",
        lambda: "TA_REDIS_HOST" in k8s.env(namespace, "planner"),
        timeout=TIMEOUT,
    )
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    # Straight from a to b: one change of the pod template, hence one rollout.
    assert k8s.deployment(namespace, "planner")["metadata"]["generation"] == generation + 1
    assert k8s.template_meta(namespace, "planner")["labels"][TASKSTORE_LABEL] == "b"


def test_a_containers_annotation_naming_no_container_is_reported_not_applied(
    k8s: Kube, namespace: str
) -> None:
    k8s.create_deployment(namespace, "planner", containers=("agent", "sidecar"))
    k8s.create_deployment(namespace, "writer")
    k8s.create_store(namespace, "tasks", DEFAULTS)
    wait_until(
        "both configured", lambda: bool(k8s.config_hash(namespace, "writer")), timeout=TIMEOUT
    )
    wait_until("planner configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    injected = k8s.env(namespace, "planner")

    k8s.apps.patch_namespaced_deployment(
        "planner", namespace, {"metadata": {"annotations": {"tealagents.io/containers": "Agent"}}}
    )

    wait_until(
        "planner reported on status",
        lambda: (
            (k8s.store(namespace, "tasks") or {})["status"]["agents"]["conflicts"] == ["planner"]
        ),
        timeout=TIMEOUT,
    )
    # Left as it was: both containers keep the environment.
    assert k8s.env(namespace, "planner") == injected
    assert k8s.env(namespace, "planner", "sidecar") == injected
    assert k8s.ready(namespace, "tasks", "False", "AgentsConflict")
    assert (
        "names containers the pod template lacks: Agent"
        in k8s.condition(namespace, "tasks")["message"]
    )

    def warned() -> bool:
        return any(
            e["reason"] == "ContainersNotFound" and e["involvedObject"]["name"] == "planner"
            for e in k8s.events(namespace)
        )

    wait_until("a ContainersNotFound Event on the Deployment", warned, timeout=TIMEOUT)
