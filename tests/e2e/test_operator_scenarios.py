"""The operator end to end: a real API server, the CRD from deploy/, the operator as a process.

One operator process serves the whole module (it watches every namespace; each test has
its own). No kubelet runs, so a managed Redis is made "ready" by setting its
StatefulSet's status, as envtest users do.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import RequestKind, requests_between
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e

CRD_PATH = Path(__file__).parents[2] / "deploy" / "crds" / "taskstores.tealagents.io.yaml"
GROUP, VERSION, PLURAL = "tealagents.io", "v1alpha1", "taskstores"
LABEL = "tealagents.io/taskstore"
HASH = "tealagents.io/config-hash"
TIMEOUT = 30.0

Manifest = dict[str, Any]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OperatorProcess:
    """``python -m taskstore_operator`` against the control plane, logging to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def start(self, *flags: str) -> None:
        self.metrics_port, health_port = free_port(), free_port()
        command = [
            sys.executable,
            "-m",
            "taskstore_operator",
            f"--metrics-port={self.metrics_port}",
            f"--health-port={health_port}",
            *flags,
        ]
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                command,
                env=os.environ | {"KUBECONFIG": str(self.kubeconfig)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(
            "the operator's /healthz",
            lambda: _http_ok(f"http://127.0.0.1:{health_port}/healthz"),
            timeout=TIMEOUT,
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """The operator's own metrics: name, labels, value."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as reply:
            text = reply.read().decode()
        return [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def metrics(self) -> dict[str, float]:
        """The operator's own metrics, summed over labels."""
        totals: dict[str, float] = {}
        for name, _, value in self.samples():
            totals[name] = totals.get(name, 0.0) + value
        return totals

    def idle(self) -> bool:
        return self.metrics().get("taskstore_operator_queue_depth", 1.0) == 0.0

    def log(self) -> str:
        return self.log_path.read_text()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def crd(control_plane: ControlPlane) -> None:
    """The TaskStore CRD from deploy/, created once per session and Established.

    Not envtest's install_crd: its Established check fails on a fresh CRD whose
    ``status.conditions`` is still null, and its replace-on-409 can race the status update.
    """
    manifest = yaml.safe_load(CRD_PATH.read_text())
    collection = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    status, body = control_plane.request("POST", collection, manifest)
    assert status in (201, 409), body[:500]

    def established() -> bool:
        found = control_plane.request_json("GET", f"{collection}/{manifest['metadata']['name']}")
        conditions = (found.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    wait_until("the TaskStore CRD Established", established)


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        control_plane.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(process.log()[-20000:])  # shown by pytest when a test fails


@pytest.fixture
def k8s(kube_api: client.ApiClient, control_plane: ControlPlane, operator: OperatorProcess) -> Kube:
    return Kube(kube_api, control_plane)


class Kube:
    """The test's view of the cluster, as plain dicts."""

    def __init__(self, api: client.ApiClient, control_plane: ControlPlane) -> None:
        self.api = api
        self.control_plane = control_plane
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def plain(self, obj: Any) -> Manifest:
        result: Manifest = self.api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return result

    def create_store(self, namespace: str, name: str, spec: Manifest) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TaskStore",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def patch_store(self, namespace: str, name: str, spec: Manifest) -> None:
        """A JSON merge patch of the spec (None removes a field)."""
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
        )

    def store(self, namespace: str, name: str) -> Manifest | None:
        try:
            found = cast(
                Manifest,
                self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name),
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def condition(self, namespace: str, name: str, type_: str = "Ready") -> Manifest:
        store = self.store(namespace, name) or {}
        conditions = (store.get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def ready(self, namespace: str, name: str, status: str = "True", reason: str = "") -> bool:
        condition = self.condition(namespace, name)
        return condition.get("status") == status and (
            not reason or condition.get("reason") == reason
        )

    def create_deployment(
        self,
        namespace: str,
        name: str,
        store: str | None = "tasks",
        containers: tuple[str, ...] = ("agent",),
        env: list[Manifest] | None = None,
    ) -> None:
        labels = {"app": name}
        metadata: Manifest = {"name": name, "labels": {LABEL: store} if store else {}}
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": c, "image": "registry.invalid/agent:1", "env": env or []}
                            for c in containers
                        ]
                    },
                },
            },
        }
        self.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", body)

    def create(self, path: str, body: Manifest) -> None:
        """POST an object given as a dict."""
        self.control_plane.request_json("POST", path, body)

    def deployment(self, namespace: str, name: str) -> Manifest:
        return self.plain(self.apps.read_namespaced_deployment(name, namespace))

    def env(self, namespace: str, name: str, container: str = "agent") -> dict[str, Any]:
        containers = self.deployment(namespace, name)["spec"]["template"]["spec"]["containers"]
        found = next(c for c in containers if c["name"] == container)
        return {v["name"]: v.get("value", v.get("valueFrom")) for v in found.get("env") or []}

    def template_meta(self, namespace: str, name: str) -> Manifest:
        meta: Manifest = self.deployment(namespace, name)["spec"]["template"]["metadata"]
        return meta

    def config_hash(self, namespace: str, name: str) -> str | None:
        return (self.template_meta(namespace, name).get("annotations") or {}).get(HASH)

    def exists(self, read: Callable[..., Any], *args: Any) -> bool:
        try:
            read(*args)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def set_redis_ready(self, namespace: str, store: str) -> None:
        status = {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1}
        self.apps.patch_namespaced_stateful_set_status(
            f"{store}-redis", namespace, {"status": status}
        )

    def events(self, namespace: str) -> list[Manifest]:
        return [self.plain(e) for e in self.core.list_namespaced_event(namespace).items]


MANAGED = {"backend": "redis", "redis": {"managed": {}}}
EXTERNAL = {
    "backend": "redis",
    "ttlSeconds": 60,
    "redis": {
        "keyPrefix": "team-a",
        "external": {"host": "redis.example.internal", "port": 6380, "db": 2, "tls": True},
    },
}
CUSTOM = {
    "backend": "custom",
    "custom": {
        "module": "my_company.stores",
        "className": "Store",
        "env": [{"name": "STORE_URL", "value": "http://store"}],
    },
}


def assert_no_operator_annotations(deployment: Manifest) -> None:
    """Nothing of the operator or kopf on the Deployment but the pod template's config hash."""
    annotations = deployment["metadata"].get("annotations") or {}
    assert not [key for key in annotations if "tealagents.io" in key or "kopf" in key]
    template = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert [key for key in template if "tealagents.io" in key or "kopf" in key] == [HASH]
    assert not deployment["metadata"].get("finalizers")


# -- each backend ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected_env", "endpoint"),
    [
        (
            {},
            {
                "TA_PERSISTENCE_MODULE": "teal_taskstore.persistence.in_memory_persistence_manager",
                "TA_PERSISTENCE_CLASS": "InMemoryPersistenceManager",
            },
            "",
        ),
        (
            EXTERNAL,
            {
                "TA_PERSISTENCE_MODULE": "teal_taskstore.persistence.redis_persistence_manager",
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
        assert k8s.template_meta(namespace, name)["labels"][LABEL] == "tasks"
        assert_no_operator_annotations(k8s.deployment(namespace, name))
    assert k8s.config_hash(namespace, "planner") == k8s.config_hash(namespace, "writer")
    assert k8s.env(namespace, "bystander") == {}
    store = k8s.store(namespace, "tasks")
    assert store is not None
    status = store["status"]
    assert status["agents"] == {"injected": 2, "names": ["planner", "writer"], "conflicts": []}
    assert status["endpoint"] == endpoint
    assert status["observedGeneration"] == store["metadata"]["generation"]
    assert store["metadata"]["finalizers"] == ["tealagents.io/finalizer"]
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


# -- changes -----------------------------------------------------------------------------------


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


def test_removing_the_label_removes_the_variables(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner", env=[{"name": "OWN", "value": "kept"}])
    k8s.create_store(namespace, "tasks", {})
    wait_until("env", lambda: len(k8s.env(namespace, "planner")) == 3, timeout=TIMEOUT)

    k8s.apps.patch_namespaced_deployment(
        "planner", namespace, {"metadata": {"labels": {LABEL: None}}}
    )

    wait_until("env removed", lambda: k8s.env(namespace, "planner") == {"OWN": "kept"})
    meta = k8s.template_meta(namespace, "planner")
    assert LABEL not in meta["labels"]
    assert HASH not in (meta.get("annotations") or {})
    wait_until(
        "no agents on status",
        lambda: (k8s.store(namespace, "tasks") or {})["status"]["agents"]["injected"] == 0,
    )


# -- what the operator must not do -------------------------------------------------------------


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


def test_a_deployment_in_another_namespace_gets_nothing(
    k8s: Kube, control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    other = f"{namespace[:50]}-other"
    control_plane.request_json(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}},
    )
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
        control_plane.request("DELETE", f"/api/v1/namespaces/{other}")


# -- refusal -----------------------------------------------------------------------------------


def test_the_server_refuses_what_the_schema_expresses(k8s: Kube, namespace: str) -> None:
    with pytest.raises(ApiException) as refused:
        k8s.create_store(namespace, "tasks", {"backend": "redis"})
    assert refused.value.status == 422


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


def test_a_missing_external_secret_recovers_by_itself(k8s: Kube, namespace: str) -> None:
    spec = {
        "backend": "redis",
        "redis": {"external": {"host": "redis.example", "passwordSecretRef": {"name": "auth"}}},
    }
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", spec)
    wait_until(
        "Ready=False SecretNotFound",
        lambda: k8s.ready(namespace, "tasks", "False", "SecretNotFound"),
        timeout=TIMEOUT,
    )
    assert k8s.env(namespace, "planner") == {}

    secret = {
        "metadata": {"name": "auth"},
        "data": {"password": base64.b64encode(b"s3cret-external").decode()},
    }
    k8s.create(f"/api/v1/namespaces/{namespace}/secrets", secret)

    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("env", lambda: "TA_REDIS_PWD" in k8s.env(namespace, "planner"))


def test_metrics(k8s: Kube, operator: OperatorProcess, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", {})
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


# -- restarts ----------------------------------------------------------------------------------


def writes_between(
    before: dict[RequestKind, float], after: dict[RequestKind, float]
) -> dict[RequestKind, float]:
    """Write requests served between two readings of the API server's own counters."""
    return {kind: n for kind, n in requests_between(before, after).items() if kind.is_write}


def no_namespace_terminating(k8s: Kube) -> bool:
    return all(
        (ns.status and ns.status.phase) != "Terminating" for ns in k8s.core.list_namespace().items
    )


def test_a_label_removed_while_the_operator_is_down_is_stripped_after_a_restart(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    # Reconciles list Deployments by the opt-in label; one that lost it is known from the
    # Deployment watch, here from its first listing at start.
    k8s.create_deployment(namespace, "planner", env=[{"name": "OWN", "value": "kept"}])
    k8s.create_store(namespace, "tasks", {})
    wait_until("env", lambda: len(k8s.env(namespace, "planner")) == 3, timeout=TIMEOUT)
    operator.stop()
    try:
        k8s.apps.patch_namespaced_deployment(
            "planner", namespace, {"metadata": {"labels": {LABEL: None}}}
        )
    finally:
        operator.start()

    wait_until(
        "env removed",
        lambda: k8s.env(namespace, "planner") == {"OWN": "kept"},
        timeout=TIMEOUT,
    )
    assert LABEL not in k8s.template_meta(namespace, "planner")["labels"]


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
    k8s.create_store(namespace, "second", {})
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
    wait_until("other namespaces gone", lambda: no_namespace_terminating(k8s), timeout=120)
    readings = [control_plane.request_totals()]

    def settled() -> bool:
        readings.append(control_plane.request_totals())
        return not writes_between(readings[-2], readings[-1]) and operator.idle()

    wait_until("no more writes", settled, timeout=60)

    operator.stop()
    before = control_plane.request_totals()
    operator.start()
    listed = cast(Manifest, k8s.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL))
    stores = len(listed["items"])
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


def test_namespace_flags_scope_the_operator(
    k8s: Kube, control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    unwatched = f"{namespace[:50]}-unwatched"
    control_plane.request_json(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": unwatched}},
    )
    operator.stop()
    operator.start(f"--namespace={namespace}")
    try:
        for where in (namespace, unwatched):
            k8s.create_deployment(where, "planner")
            k8s.create_store(where, "tasks", {})
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
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, unwatched, PLURAL, "tasks")
    wait_until("the store deleted", lambda: k8s.store(unwatched, "tasks") is None, timeout=TIMEOUT)
    control_plane.request("DELETE", f"/api/v1/namespaces/{unwatched}")


# -- deletion (late in the module: the garbage collector picks up a new CRD only at its
# next discovery sync, every 30 s, and meanwhile the other scenarios run) ------------------


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
def test_deleting_the_store(k8s: Kube, namespace: str, policy: str) -> None:
    spec = {
        "backend": "redis",
        "redis": {"managed": {"storage": {"size": "1Gi"}, "deletionPolicy": policy}},
    }
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", spec)
    wait_until(
        "the StatefulSet",
        lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, "tasks-redis", namespace),
        timeout=TIMEOUT,
    )
    k8s.set_redis_ready(namespace, "tasks")
    wait_until("env", lambda: "TA_REDIS_HOST" in k8s.env(namespace, "planner"), timeout=TIMEOUT)
    # What the StatefulSet controller would create from the volume claim template.
    labels = {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": "tasks",
        "app.kubernetes.io/managed-by": "taskstore-operator",
        "app.kubernetes.io/part-of": "teal-agents",
    }
    claim = {
        "metadata": {"name": "data-tasks-redis-0", "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    k8s.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", claim)

    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "tasks")

    wait_until("the TaskStore gone", lambda: k8s.store(namespace, "tasks") is None, timeout=TIMEOUT)
    assert k8s.env(namespace, "planner") == {}
    assert LABEL not in k8s.template_meta(namespace, "planner")["labels"]
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
    claim_now = k8s.plain(
        k8s.core.read_namespaced_persistent_volume_claim("data-tasks-redis-0", namespace)
    )
    # No pvc-protection controller runs locally: a deleted claim stays Terminating, and its
    # finalizer must go by hand, or the namespace could never be deleted.
    assert bool(claim_now["metadata"].get("deletionTimestamp")) == (policy == "Delete")
    k8s.core.patch_namespaced_persistent_volume_claim(
        "data-tasks-redis-0", namespace, {"metadata": {"finalizers": None}}
    )


def test_no_secret_value_in_the_operator_log(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create_store(namespace, "tasks", MANAGED)
    wait_until(
        "the password Secret",
        lambda: k8s.exists(k8s.core.read_namespaced_secret, "tasks-redis-auth", namespace),
        timeout=TIMEOUT,
    )
    secret = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))
    encoded = secret["data"]["password"]
    log = operator.log()
    assert encoded not in log
    assert base64.b64decode(encoded).decode() not in log
    assert "s3cret-external" not in log
    assert json.dumps(secret["data"]) not in log
