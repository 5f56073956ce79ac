"""Each backend end to end: the environment injected into opted-in agents, the TaskStore's
status, the managed Redis' objects and its password, and a change of backend."""

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.cluster import TIMEOUT, Kube
from support.samples import CUSTOM, DEFAULTS, EXTERNAL, MANAGED, Manifest
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_operator.api.contract import CONFIG_HASH_ANNOTATION, TASKSTORE_LABEL
from teal_taskstore.framework import ENTRY_FILE_PATH

pytestmark = pytest.mark.e2e


def assert_no_operator_annotations(deployment: Manifest) -> None:
    """Nothing of the operator or kopf on the Deployment but the pod template's config hash."""
    annotations = deployment["metadata"].get("annotations") or {}
    assert not [key for key in annotations if "tealagents.io" in key or "kopf" in key]
    template = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert [key for key in template if "tealagents.io" in key or "kopf" in key] == [
        CONFIG_HASH_ANNOTATION
    ]
    assert not deployment["metadata"].get("finalizers")


@pytest.mark.parametrize(
    ("spec", "expected_env", "endpoint"),
    [
        (
            DEFAULTS,
            {
                "TA_PERSISTENCE_MODULE": ENTRY_FILE_PATH,
                "TA_PERSISTENCE_CLASS": "InMemoryPersistenceManager",
            },
            "",
        ),
        (
            EXTERNAL,
            {
                "TA_PERSISTENCE_MODULE": ENTRY_FILE_PATH,
                "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
                "TA_REDIS_HOST": "redis.example.internal",
                "TA_REDIS_PORT": "6380",
                "TA_REDIS_DB": "2",
                "TA_REDIS_TTL": "60",
                "TA_REDIS_SSL": "true",
                "TA_REDIS_KEY_PREFIX": "team-a",
            },
            "redis.example.internal:6380",
        ),
        (
            CUSTOM,
            {
                "TA_PERSISTENCE_MODULE": "my_company.stores",
                "TA_PERSISTENCE_CLASS": "Store",
                "STORE_URL": "http://store",
            },
            "",
        ),
    ],
    ids=["memory", "external", "custom"],
)
def test_backend_env_label_hash_and_status(
    k8s: Kube,
    control_plane: ControlPlane,
    namespace: str,
    spec: Manifest,
    expected_env: dict[str, str],
    endpoint: str,
) -> None:
    k8s.create_deployment(namespace, "planner", containers=("agent", "sidecar"))
    k8s.create_deployment(namespace, "writer")
    k8s.create_deployment(namespace, "bystander", store=None)
    k8s.create_store(namespace, "tasks", spec)

    waited = control_plane.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={int(TIMEOUT)}s",
        "-n", namespace, "taskstore/tasks",
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    wait_until("both agents configured", lambda: bool(k8s.config_hash(namespace, "writer")))

    for name, container in (("planner", "agent"), ("planner", "sidecar"), ("writer", "agent")):
        assert k8s.env(namespace, name, container) == expected_env
        assert k8s.template_meta(namespace, name)["labels"][TASKSTORE_LABEL] == "tasks"
        assert_no_operator_annotations(k8s.deployment(namespace, name))
    assert k8s.config_hash(namespace, "planner") == k8s.config_hash(namespace, "writer")
    assert k8s.env(namespace, "bystander") == {}
    store = k8s.store(namespace, "tasks")
    assert store is not None
    status = store["status"]
    assert status["agents"] == {"injected": 2, "names": ["planner", "writer"], "conflicts": []}
    assert status["endpoint"] == endpoint
    assert status["observedGeneration"] == store["metadata"]["generation"]
    # No finalizer: an uninstalled operator leaves nothing stuck.
    assert not store["metadata"].get("finalizers")
    assert not [k for k in store["metadata"].get("annotations") or {} if "kopf" in k]


def test_managed_redis_waits_for_a_ready_replica(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", MANAGED)

    wait_until(
        "Ready=False Provisioning",
        lambda: k8s.ready(namespace, "tasks", "False", "Provisioning"),
        timeout=TIMEOUT,
    )
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
    )
    assert k8s.env(namespace, "planner") == {}
    assert k8s.condition(namespace, "tasks", "AgentsConfigured")["reason"] == "WaitingForRedis"
    store = k8s.store(namespace, "tasks")
    assert store is not None
    for read, name in (
        (k8s.core.read_namespaced_secret, "tasks-redis-auth"),
        (k8s.core.read_namespaced_config_map, "tasks-redis-config"),
        (k8s.core.read_namespaced_service, "tasks-redis"),
        (client.NetworkingV1Api(k8s.api).read_namespaced_network_policy, "tasks-redis"),
    ):
        owners = k8s.plain(read(name, namespace))["metadata"]["ownerReferences"]
        assert [o["uid"] for o in owners] == [store["metadata"]["uid"]]

    k8s.set_redis_ready(namespace, "tasks")

    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    env = k8s.env(namespace, "planner")
    assert env["TA_REDIS_HOST"] == f"tasks-redis.{namespace}.svc"
    assert env["TA_REDIS_PWD"] == {"secretKeyRef": {"name": "tasks-redis-auth", "key": "password"}}
    assert k8s.condition(namespace, "tasks", "RedisAvailable")["reason"] == "RedisReady"
    status = (k8s.store(namespace, "tasks") or {})["status"]
    assert status["secretName"] == "tasks-redis-auth"
    assert status["endpoint"] == f"tasks-redis.{namespace}.svc:6379"

    # Deleting the password Secret: a new one, and a new config hash that rolls the agents.
    before = k8s.config_hash(namespace, "planner")
    old_uid = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))["metadata"][
        "uid"
    ]
    k8s.core.delete_namespaced_secret("tasks-redis-auth", namespace)

    def recreated() -> bool:
        try:
            secret = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))
        except ApiException:
            return False
        return bool(secret["metadata"]["uid"] != old_uid)

    wait_until("a new password Secret", recreated, timeout=TIMEOUT)
    wait_until(
        "a new config hash",
        lambda: k8s.config_hash(namespace, "planner") != before,
        timeout=TIMEOUT,
    )


def test_backend_change_replaces_the_variables(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", EXTERNAL)
    wait_until(
        "redis env", lambda: "TA_REDIS_HOST" in k8s.env(namespace, "planner"), timeout=TIMEOUT
    )

    k8s.patch_store(namespace, "tasks", {"backend": "memory", "redis": None, "ttlSeconds": None})

    wait_until(
        "memory env only",
        lambda: (
            set(k8s.env(namespace, "planner")) == {"TA_PERSISTENCE_MODULE", "TA_PERSISTENCE_CLASS"}
        ),
        timeout=TIMEOUT,
    )
    assert k8s.env(namespace, "planner")["TA_PERSISTENCE_CLASS"] == "InMemoryPersistenceManager"


def test_a_deleted_password_secret_is_replaced_in_one_reconcile(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", MANAGED)
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
        timeout=TIMEOUT,
    )
    k8s.set_redis_ready(namespace, "tasks")
    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    version = (k8s.store(namespace, "tasks") or {})["metadata"]["resourceVersion"]
    earlier_events = {event["metadata"]["name"] for event in k8s.events(namespace)}
    before = k8s.config_hash(namespace, "planner")
    old_uid = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))["metadata"][
        "uid"
    ]

    k8s.core.delete_namespaced_secret("tasks-redis-auth", namespace)

    def recreated() -> bool:
        try:
            secret = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))
        except ApiException:
            return False
        return bool(secret["metadata"]["uid"] != old_uid)

    wait_until("a new password Secret", recreated, timeout=TIMEOUT)
    wait_until(
        "a new config hash",
        lambda: k8s.config_hash(namespace, "planner") != before,
        timeout=TIMEOUT,
    )
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)
    # One observation, one plan: the status did not change, so the TaskStore was not
    # written at all (no Provisioning in between), and no Warning was raised.
    store = k8s.store(namespace, "tasks") or {}
    assert store["metadata"]["resourceVersion"] == version
    assert k8s.ready(namespace, "tasks", "True", "Reconciled")
    warnings = [
        (event["reason"], event["message"])
        for event in k8s.events(namespace)
        if event["type"] == "Warning" and event["metadata"]["name"] not in earlier_events
    ]
    assert warnings == []


LIBRARY = "teal-taskstore-library"
LIBRARY_MOUNT = {"name": LIBRARY, "mountPath": "/opt/teal-taskstore", "readOnly": True}
# What the restricted Pod Security Standard asks of every container.
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.mark.parametrize(
    ("spec", "library", "variables"),
    [
        (DEFAULTS, True, {"TA_PERSISTENCE_MODULE", "TA_PERSISTENCE_CLASS"}),
        (MANAGED, True, {"TA_REDIS_HOST", "TA_REDIS_PWD"}),
        (EXTERNAL, True, {"TA_REDIS_HOST", "TA_REDIS_SSL", "TA_REDIS_KEY_PREFIX"}),
        (CUSTOM, False, {"TA_PERSISTENCE_MODULE", "STORE_URL"}),
    ],
    ids=["memory", "managed", "external", "custom"],
)
def test_the_library_is_injected_under_the_restricted_standard_and_leaves_with_the_label(
    k8s: Kube, namespace: str, spec: Manifest, library: bool, variables: set[str]
) -> None:
    # Pods that break the restricted standard are refused in this namespace.
    k8s.core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    container = {"image": "registry.invalid/agent:1", "securityContext": RESTRICTED}
    k8s.create(
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "planner",
                "labels": {TASKSTORE_LABEL: "tasks"},
                "annotations": {"tealagents.io/containers": "agent"},
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "planner"}},
                "template": {
                    "metadata": {"labels": {"app": "planner"}},
                    "spec": {
                        "initContainers": [{"name": "migrate", **container}],
                        "containers": [
                            {"name": "agent", **container},
                            {"name": "sidecar", **container},
                        ],
                    },
                },
            },
        },
    )
    k8s.create_store(namespace, "tasks", spec)
    if spec is MANAGED:
        wait_until(
            "the StatefulSet",
            lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
            timeout=TIMEOUT,
        )
        k8s.set_redis_ready(namespace, "tasks")
    wait_until(
        "the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")), timeout=TIMEOUT
    )

    pod = k8s.deployment(namespace, "planner")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    inits = {c["name"]: c for c in pod["initContainers"]}
    assert variables <= set(k8s.env(namespace, "planner"))
    assert k8s.env(namespace, "planner", "sidecar") == {}
    assert "env" not in inits["migrate"]
    assert not containers["sidecar"].get("volumeMounts")
    if library:
        assert pod["volumes"] == [{"name": LIBRARY, "emptyDir": {"sizeLimit": "64Mi"}}]
        assert list(inits) == ["migrate", LIBRARY]
        ours = inits[LIBRARY]
        assert ours["command"] == [
            "python",
            "-m",
            "teal_taskstore",
            "copy-library",
            "/opt/teal-taskstore",
        ]
        assert ours["volumeMounts"] == [{"name": LIBRARY, "mountPath": "/opt/teal-taskstore"}]
        assert ours["securityContext"] == {**RESTRICTED, "readOnlyRootFilesystem": True}
        assert ours["resources"]["limits"] and ours["resources"]["requests"]
        assert containers["agent"]["volumeMounts"] == [LIBRARY_MOUNT]
        # The API server admitted a Pod of the injected template in a restricted namespace.
        wait_until(
            "a Pod with the library's init container",
            lambda: any(
                LIBRARY in [c["name"] for c in p["spec"].get("initContainers") or []]
                for p in (k8s.plain(item) for item in k8s.core.list_namespaced_pod(namespace).items)
            ),
            timeout=TIMEOUT,
        )
    else:
        assert not pod.get("volumes")
        assert list(inits) == ["migrate"]
        assert not containers["agent"].get("volumeMounts")

    k8s.apps.patch_namespaced_deployment(
        "planner", namespace, {"metadata": {"labels": {TASKSTORE_LABEL: None}}}
    )

    wait_until(
        "the injection removed", lambda: not k8s.config_hash(namespace, "planner"), timeout=TIMEOUT
    )
    pod = k8s.deployment(namespace, "planner")["spec"]["template"]["spec"]
    assert not pod.get("volumes")
    assert [c["name"] for c in pod["initContainers"]] == ["migrate"]
    for found in pod["containers"]:
        assert not found.get("env")
        assert not found.get("volumeMounts")
    assert TASKSTORE_LABEL not in k8s.template_meta(namespace, "planner")["labels"]
