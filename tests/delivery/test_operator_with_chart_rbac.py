"""The operator with the chart's ServiceAccount token only: proof that the RBAC is sufficient.

The chart is installed with helm (its pods never start: no kubelet), and the operator runs
as a local process whose kubeconfig holds a token of the chart's ServiceAccount, with the
API server's RBAC authorizer on. A full scenario (a TaskStore of each backend, opted-in
Deployments, Ready, deletion with claims) must pass without one Forbidden answer.
"""

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from support.cluster import TIMEOUT
from support.samples import (
    CUSTOM,
    MEMORY,
    Manifest,
    agent_deployment,
    external_with_password,
    managed_with_storage,
    password_secret,
    redis_volume_claim,
    taskstore,
)
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import READY_STATEFULSET_STATUS
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until

from .conftest import Helm
from .test_install import Release

pytestmark = pytest.mark.e2e

STORES: dict[str, Manifest] = {
    "mem": MEMORY,
    "red": managed_with_storage("Delete"),
    "ext": external_with_password("ext-auth"),
    "cus": CUSTOM,
}


@pytest.fixture(params=["cluster-wide", "namespaced"])
def chart_operator(
    request: pytest.FixtureRequest,
    helm: Helm,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
) -> Iterator[tuple[OperatorProcess, str]]:
    """The chart installed into ``namespace``, the operator running with its token, and the
    ServiceAccount's user name."""
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
    operator = OperatorProcess(
        kubeconfig,
        tmp_path / "operator.log",
        environment={"TASKSTORE_WATCH_NAMESPACES": watched},
        serve=True,  # as the chart runs it: metrics and liveness served
    )
    operator.start()
    try:
        yield operator, f"system:serviceaccount:{namespace}:{release.fullname}"
    finally:
        operator.stop()
        release.uninstall()
        print(operator.log()[-20000:])  # shown by pytest when the test fails


def _apply(plane: ControlPlane, namespace: str, manifest: dict[str, Any]) -> None:
    result = plane.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(manifest))
    assert result.returncode == 0, result.stderr


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
    chart_operator: tuple[OperatorProcess, str], control_plane: ControlPlane, namespace: str
) -> None:
    plane = control_plane
    operator, account = chart_operator
    _apply(plane, namespace, password_secret("ext-auth", "not-a-real-one"))
    for name, spec in STORES.items():
        _apply(plane, namespace, agent_deployment(f"agent-{name}", name))
        _apply(plane, namespace, taskstore(name, spec))

    # No kubelet: the managed Redis becomes ready when its StatefulSet's status says so.
    wait_until(
        "the managed Redis StatefulSet",
        lambda: plane.kubectl("get", "statefulset", "red-redis", "-n", namespace).returncode == 0,
        timeout=TIMEOUT,
    )
    ready = {"status": READY_STATEFULSET_STATUS}
    patched = plane.kubectl(
        "patch", "statefulset", "red-redis", "-n", namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps(ready),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    statefulset = plane.kubectl("get", "statefulset", "red-redis", "-n", namespace, "-o", "json")
    _apply(plane, namespace, redis_volume_claim("red", json.loads(statefulset.stdout)))

    waited = plane.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={int(TIMEOUT)}s", "-n", namespace,
        *(f"taskstore/{name}" for name in STORES),
    )  # fmt: skip
    assert waited.returncode == 0, waited.stderr + operator.log()[-5000:]
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
    assert deleted.returncode == 0, deleted.stderr + operator.log()[-5000:]
    for name in STORES:
        agent = f"agent-{name}"
        wait_until(
            f"{agent} stripped",
            partial(_has_no_env, plane, namespace, agent),
            timeout=TIMEOUT,
        )

    # deletionPolicy: Delete: the claim goes with the StatefulSet (garbage collection; no
    # pvc-protection controller runs here, so it stays Terminating).
    def claim_deleted() -> bool:
        claim_now = plane.kubectl("get", "pvc", "data-red-redis-0", "-n", namespace, "-o", "json")
        assert claim_now.returncode == 0, claim_now.stderr
        return bool(json.loads(claim_now.stdout)["metadata"].get("deletionTimestamp"))

    wait_until("the claim deleted", claim_deleted, timeout=90)
    plane.kubectl(
        "patch", "pvc", "data-red-redis-0", "-n", namespace, "--type=merge",
        "-p", '{"metadata": {"finalizers": null}}',
    )  # fmt: skip
    assert forbidden_lines(operator.log(), namespace) == []

    # Secrets are read by name only: listing or watching them is refused everywhere, in
    # a namespace without stores as in the stores' own.
    for where in (namespace, "kube-system", "default"):
        for verb in ("list", "watch"):
            can = plane.kubectl("auth", "can-i", verb, "secrets", "-n", where, "--as", account)
            assert can.stdout.strip() == "no", (verb, where, can.stdout, can.stderr)
