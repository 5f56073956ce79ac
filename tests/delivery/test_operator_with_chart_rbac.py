"""The operator with the chart's ServiceAccount token only: proof that the RBAC is sufficient.

The chart is installed with helm (its pods never start: no kubelet), and the operator runs
as a local process whose kubeconfig holds a token of the chart's ServiceAccount, with the
API server's RBAC authorizer on. A full scenario (a TaskStore of each backend, opted-in
Deployments, Ready, deletion with claims) must pass without one Forbidden answer.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_operator.api.contract import TASKSTORE_LABEL

from .conftest import Helm
from .test_install import Release

pytestmark = pytest.mark.e2e

TIMEOUT = 30.0
STORES: dict[str, dict[str, Any]] = {
    "mem": {"backend": "memory"},
    "red": {
        "backend": "redis",
        "redis": {"managed": {"storage": {"size": "1Gi"}, "deletionPolicy": "Delete"}},
    },
    "ext": {
        "backend": "redis",
        "redis": {
            "external": {
                "host": "redis.example.internal",
                "passwordSecretRef": {"name": "ext-auth", "key": "password"},
            }
        },
    },
    "cus": {"backend": "custom", "custom": {"module": "my_company.stores", "className": "Store"}},
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310  # our own loopback
            return bool(reply.status == 200)
    except OSError:
        return False


class Operator:
    """``python -m taskstore_operator`` as the chart's Deployment runs it, outside a pod."""

    def __init__(self, kubeconfig: Path, log_path: Path, watch_namespaces: str) -> None:
        self.log_path = log_path
        health = _free_port()
        command = [
            sys.executable,
            "-m",
            "taskstore_operator",
            f"--metrics-port={_free_port()}",
            f"--health-port={health}",
        ]
        environment = os.environ | {
            "KUBECONFIG": str(kubeconfig),
            "TASKSTORE_WATCH_NAMESPACES": watch_namespaces,
        }
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(
            "the operator's /healthz",
            lambda: _healthy(f"http://127.0.0.1:{health}/healthz"),
            timeout=TIMEOUT,
        )

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(params=["cluster-wide", "namespaced"])
def chart_operator(
    request: pytest.FixtureRequest,
    helm: Helm,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Operator]:
    """The chart installed into ``namespace`` and the operator running with its token."""
    release = Release(helm, control_plane, namespace)
    watched = namespace if request.param == "namespaced" else ""
    arguments = ["--set", f"watchNamespaces[0]={watched}"] if watched else []
    installed = release.install(*arguments)
    assert installed.returncode == 0, installed.stderr
    wait_until(
        "the TaskStore CRD served",
        lambda: control_plane.kubectl("get", "taskstores", "-n", namespace).returncode == 0,
    )
    kubeconfig = control_plane.service_account_kubeconfig(namespace, release.fullname)
    operator = Operator(kubeconfig, tmp_path / "operator.log", watched)
    try:
        yield operator
    finally:
        operator.stop()
        release.uninstall()
        print(operator.log()[-20000:])  # shown by pytest when the test fails


def _apply(plane: ControlPlane, namespace: str, manifest: dict[str, Any]) -> None:
    result = plane.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(manifest))
    assert result.returncode == 0, result.stderr


def _deployment(name: str, store: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {TASKSTORE_LABEL: store}},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "agent", "image": "registry.invalid/agent:1"}]},
            },
        },
    }


def _env(plane: ControlPlane, namespace: str, deployment: str) -> dict[str, Any]:
    result = plane.kubectl("get", "deployment", deployment, "-n", namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    container = json.loads(result.stdout)["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item for item in container.get("env") or []}


def _has_env(plane: ControlPlane, namespace: str, deployment: str, variable: str) -> bool:
    return variable in _env(plane, namespace, deployment)


def _has_no_env(plane: ControlPlane, namespace: str, deployment: str) -> bool:
    return _env(plane, namespace, deployment) == {}


def forbidden_lines(log: str, namespace: str) -> list[str]:
    """Refusals in the operator's log that concern its own work: cluster-wide requests, or
    requests in ``namespace``. (Other tests' namespaces may be terminating, and the API
    server refuses writes there with 403 as well; that is not about RBAC.)"""
    return [
        line
        for line in log.splitlines()
        if ("Forbidden" in line or " 403" in line or "Not enough permissions" in line)
        and (f"/namespaces/{namespace}/" in line or "/namespaces/" not in line)
    ]


def test_full_scenario_with_the_chart_service_account(
    chart_operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    plane = control_plane
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ext-auth"},
        "stringData": {"password": "not-a-real-one"},
    }
    _apply(plane, namespace, secret)
    for name, spec in STORES.items():
        _apply(plane, namespace, _deployment(f"agent-{name}", name))
        store = {
            "apiVersion": "tealagents.io/v1alpha1",
            "kind": "TaskStore",
            "metadata": {"name": name},
            "spec": spec,
        }
        _apply(plane, namespace, store)

    # No kubelet: the managed Redis becomes ready when its StatefulSet's status says so.
    wait_until(
        "the managed Redis StatefulSet",
        lambda: plane.kubectl("get", "statefulset", "red-redis", "-n", namespace).returncode == 0,
        timeout=TIMEOUT,
    )
    ready = {"status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1}}
    patched = plane.kubectl(
        "patch", "statefulset", "red-redis", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(ready),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data-red-redis-0",
            "labels": {
                "app.kubernetes.io/name": "redis",
                "app.kubernetes.io/instance": "red",
                "app.kubernetes.io/managed-by": "taskstore-operator",
                "app.kubernetes.io/part-of": "teal-agents",
            },
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    _apply(plane, namespace, claim)

    waited = plane.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={int(TIMEOUT)}s", "-n", namespace,
        *(f"taskstore/{name}" for name in STORES),
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr + chart_operator.log()[-5000:]
    for name in STORES:
        agent = f"agent-{name}"
        wait_until(
            f"{agent} configured",
            partial(_has_env, plane, namespace, agent, "TA_PERSISTENCE_MODULE"),
            timeout=TIMEOUT,
        )
    assert _env(plane, namespace, "agent-ext")["TA_REDIS_PWD"]["valueFrom"] == {
        "secretKeyRef": {"name": "ext-auth", "key": "password"}
    }
    assert _env(plane, namespace, "agent-red")["TA_REDIS_HOST"]["value"] == (
        f"red-redis.{namespace}.svc"
    )

    deleted = plane.kubectl(
        "delete", "taskstores", "--all", "-n", namespace, f"--timeout={int(TIMEOUT)}s"
    )
    assert deleted.returncode == 0, deleted.stderr + chart_operator.log()[-5000:]
    for name in STORES:
        agent = f"agent-{name}"
        wait_until(
            f"{agent} stripped",
            partial(_has_no_env, plane, namespace, agent),
            timeout=TIMEOUT,
        )
    # deletionPolicy: Delete, and no StatefulSet controller: the operator deleted the claim
    # (no pvc-protection controller runs here either, so it stays Terminating).
    claim_now = plane.kubectl("get", "pvc", "data-red-redis-0", "-n", namespace, "-o", "json")
    assert claim_now.returncode == 0, claim_now.stderr
    assert json.loads(claim_now.stdout)["metadata"].get("deletionTimestamp")
    plane.kubectl(
        "patch", "pvc", "data-red-redis-0", "-n", namespace, "--type=merge",
        "-p", '{"metadata": {"finalizers": null}}',
    )  # fmt: skip
    assert forbidden_lines(chart_operator.log(), namespace) == []
