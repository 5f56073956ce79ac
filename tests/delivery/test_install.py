"""Installing on the local control plane: `helm install` (never --wait: no pod runs), the
plain manifests with `kubectl apply`, and the samples; and uninstalling, which leaves no
TaskStore or namespace stuck in deletion."""

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.cluster import TIMEOUT
from support.samples import MEMORY, agent_deployment, managed_with_storage, taskstore
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.pytest_plugin import InstallCrd, wait_until
from taskstore_dev.paths import CHART_DIR, MANIFEST_PATH, REPO_ROOT
from taskstore_operator.api.crd import CRD_NAME, build_crd

from .conftest import Helm

pytestmark = pytest.mark.e2e


class Release:
    """One helm release on the control plane, uninstalled by the fixture."""

    def __init__(self, helm: Helm, plane: ControlPlane, namespace: str) -> None:
        self.helm = helm
        self.plane = plane
        self.namespace = namespace
        self.name = f"tso-{secrets.token_hex(3)}"
        self.fullname = f"{self.name}-taskstore-operator"
        self.installed = False

    def install(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """`helm install` into the namespace, adopting the TaskStore CRD if another test made it."""
        self._adopt_crd()
        self.installed = True
        return self.helm.run(
            "install",
            self.name,
            str(CHART_DIR),
            "--namespace",
            self.namespace,
            *arguments,
            kubeconfig=self.plane.kubeconfig,
        )

    def uninstall(self) -> subprocess.CompletedProcess[str]:
        """`helm uninstall`, which waits for nothing but the deletion requests."""
        self.installed = False
        return self.helm.run(
            "uninstall", self.name, "--namespace", self.namespace, kubeconfig=self.plane.kubeconfig
        )

    def _adopt_crd(self) -> None:
        # The session's other tests create the CRD directly; Helm adopts an existing object
        # only when it carries the release's ownership metadata.
        if self.plane.kubectl("get", "crd", CRD_NAME).returncode != 0:
            return
        labelled = self.plane.kubectl(
            "label", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm", "--overwrite"
        )
        annotated = self.plane.kubectl(
            "annotate",
            "crd",
            CRD_NAME,
            f"meta.helm.sh/release-name={self.name}",
            f"meta.helm.sh/release-namespace={self.namespace}",
            "--overwrite",
        )
        assert labelled.returncode == annotated.returncode == 0, labelled.stderr + annotated.stderr


@pytest.fixture
def release(helm: Helm, control_plane: ControlPlane, namespace: str) -> Iterator[Release]:
    """A release name for the test, uninstalled afterwards if it was installed."""
    made = Release(helm, control_plane, namespace)
    try:
        yield made
    finally:
        if made.installed:
            made.uninstall()


def get(plane: ControlPlane, *arguments: str) -> dict[str, Any]:
    """`kubectl get -o json`, checked."""
    result = plane.kubectl("get", *arguments, "-o", "json")
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def can_i(plane: ControlPlane, account: str, *arguments: str) -> bool:
    """`kubectl auth can-i` as a ServiceAccount."""
    result = plane.kubectl("auth", "can-i", *arguments, f"--as={account}")
    return result.stdout.strip() == "yes"


def test_helm_install_creates_the_crd_and_the_operator_objects(
    release: Release, control_plane: ControlPlane, namespace: str
) -> None:
    result = release.install()
    assert result.returncode == 0, result.stderr
    assert "kubectl wait" in result.stdout
    assert "--for=condition=Ready taskstore/tasks" in result.stdout

    crd = get(control_plane, "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["spec"]["versions"] == build_crd()["spec"]["versions"]
    for peering_crd in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        get(control_plane, "crd", peering_crd)
    for kind in ("serviceaccount", "deployment", "service"):
        name = release.fullname + ("-metrics" if kind == "service" else "")
        get(control_plane, "-n", namespace, kind, name)
    deployment = get(control_plane, "-n", namespace, "deployment", release.fullname)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == release.fullname
    get(control_plane, "clusterrole", release.fullname)
    get(control_plane, "clusterrolebinding", release.fullname)

    account = f"system:serviceaccount:{namespace}:{release.fullname}"
    assert can_i(control_plane, account, "patch", "deployments.apps", "-n", "default")
    assert can_i(control_plane, account, "watch", "taskstores.tealagents.io", "-A")
    assert can_i(
        control_plane, account, "patch", "taskstores.tealagents.io", "--subresource=status"
    )
    assert can_i(control_plane, account, "create", "secrets", "-n", "default")
    assert not can_i(control_plane, account, "update", "secrets", "-n", "default")
    assert not can_i(control_plane, account, "create", "deployments.apps", "-n", "default")
    assert not can_i(control_plane, account, "delete", "deployments.apps", "-n", "default")
    assert not can_i(control_plane, account, "list", "namespaces")
    assert not can_i(control_plane, account, "get", "nodes")
    # Peering is on with one replica: its own object, and the start-up check's reads.
    get(control_plane, "clusterkopfpeering", release.fullname)
    assert can_i(control_plane, account, "list", "kopfpeerings.kopf.dev", "-A")
    assert can_i(control_plane, account, "create", "clusterkopfpeerings.kopf.dev")

    uninstalled = release.uninstall()
    assert uninstalled.returncode == 0, uninstalled.stderr
    # crds.keep: the CRD, and with it every TaskStore, survives the uninstall.
    assert control_plane.kubectl("get", "crd", CRD_NAME).returncode == 0
    assert control_plane.kubectl("get", "clusterrole", release.fullname).returncode != 0


def test_helm_install_namespaced_ha(
    release: Release, control_plane: ControlPlane, namespace: str
) -> None:
    result = release.install(
        "--set",
        f"watchNamespaces[0]={namespace}",
        "--set",
        "replicas=2",
        "--set",
        "crds.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    get(control_plane, "-n", namespace, "role", release.fullname)
    get(control_plane, "-n", namespace, "rolebinding", release.fullname)
    get(control_plane, "-n", namespace, "poddisruptionbudget", release.fullname)
    # The peering CRDs come from crds/, installed before the templates: the object exists.
    peering = get(control_plane, "-n", namespace, "kopfpeering", release.fullname)
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert control_plane.kubectl("get", "clusterrole", release.fullname).returncode != 0

    account = f"system:serviceaccount:{namespace}:{release.fullname}"
    assert can_i(control_plane, account, "patch", "deployments.apps", "-n", namespace)
    assert not can_i(control_plane, account, "patch", "deployments.apps", "-n", "default")
    assert can_i(control_plane, account, "list", "namespaces")
    assert can_i(control_plane, account, "list", "clusterkopfpeerings.kopf.dev")
    assert not can_i(control_plane, account, "list", "kopfpeerings.kopf.dev", "-n", "default")
    assert can_i(control_plane, account, "watch", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can_i(control_plane, account, "get", "secrets", "-n", "default")
    assert can_i(
        control_plane,
        account,
        "patch",
        f"kopfpeerings.kopf.dev/{release.fullname}",
        "-n",
        namespace,
    )
    assert not can_i(
        control_plane, account, "patch", "kopfpeerings.kopf.dev/other", "-n", namespace
    )


@pytest.mark.parametrize("long_name", ["release", "fullnameOverride"])
def test_the_longest_names_install(
    release: Release, control_plane: ControlPlane, namespace: str, long_name: str
) -> None:
    """A 53-character release name (Helm's longest) or a 63-character fullnameOverride."""
    arguments = ["--set", "crds.enabled=false", "--set", "metrics.serviceMonitor.enabled=false"]
    if long_name == "release":
        release.name = release.name + "-" + "r" * (53 - len(release.name) - 1)
        fullname = (release.name + "-taskstore-operator")[:63].rstrip("-")
    else:
        fullname = "f" * 63
        arguments += ["--set", f"fullnameOverride={fullname}"]
    result = release.install(*arguments)
    assert result.returncode == 0, result.stderr
    get(control_plane, "-n", namespace, "deployment", fullname)
    service = fullname[:55].rstrip("-") + "-metrics"
    assert len(service) <= 63
    get(control_plane, "-n", namespace, "service", service)


def test_unknown_watch_namespace_fails_the_install(release: Release) -> None:
    missing = f"missing-{secrets.token_hex(3)}"
    result = release.install(
        "--set", f"watchNamespaces[0]={missing}", "--set", "crds.enabled=false"
    )
    assert result.returncode != 0
    assert f'namespaces "{missing}" not found' in result.stderr


def test_bad_values_fail_the_install(release: Release) -> None:
    result = release.install("--set", "replicas=two")
    release.installed = False  # nothing was created
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert "at '/replicas': got string, want integer" in result.stderr


def run_stores(plane: ControlPlane, namespace: str, stores: dict[str, Any], log: Path) -> None:
    """Run the operator until each of ``stores`` (name: spec), with an agent opting in, has a
    status. It runs as a local process: no kubelet runs the pod the install made."""
    with running_operator(plane.kubeconfig, log, serve=True) as operator:
        for name, spec in stores.items():
            for manifest in (agent_deployment(f"agent-{name}", name), taskstore(name, spec)):
                applied = plane.kubectl(
                    "apply", "-n", namespace, "-f", "-", input_text=json.dumps(manifest)
                )
                assert applied.returncode == 0, applied.stderr

        def reconciled() -> bool:
            return all(
                (_kubectl_json(plane, "get", "taskstore", name, "-n", namespace) or {}).get(
                    "status"
                )
                for name in stores
            )

        wait_until("the stores reconciled", reconciled, timeout=TIMEOUT)
        wait_until("the operator idle", operator.idle, timeout=TIMEOUT)


def test_plain_manifests_apply_and_delete_leaving_nothing_stuck(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    """`kubectl delete -f` of the manifests takes the CRD and every TaskStore with it."""
    plane = control_plane
    manifests = str(MANIFEST_PATH)
    stores = f"plain-{secrets.token_hex(3)}"
    try:
        applied = plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", manifests)
        assert applied.returncode == 0, applied.stderr
        for kind in ("serviceaccount", "deployment", "service"):
            name = "taskstore-operator" + ("-metrics" if kind == "service" else "")
            get(plane, "-n", "taskstore-system", kind, name)
        get(plane, "clusterrolebinding", "taskstore-operator")
        plane.request_json("POST", "/api/v1/namespaces", {"metadata": {"name": stores}})
        run_stores(plane, stores, {"mem": MEMORY}, tmp_path / "operator.log")

        deleted = plane.kubectl("delete", "-f", manifests, f"--timeout={int(TIMEOUT)}s")
        assert deleted.returncode == 0, deleted.stderr
        assert _kubectl_json(plane, "get", "crd", CRD_NAME) is None
        emptied = plane.kubectl("delete", "namespace", stores, f"--timeout={int(TIMEOUT)}s")
        assert emptied.returncode == 0, emptied.stderr
    finally:
        plane.kubectl("delete", "-f", manifests, "--ignore-not-found", "--wait=false")
        plane.request("DELETE", f"/api/v1/namespaces/{stores}")
    for namespace in (stores, "taskstore-system"):

        def gone(namespace: str = namespace) -> bool:
            return _kubectl_json(plane, "get", "namespace", namespace) is None

        wait_until(f"namespace {namespace} gone", gone, timeout=90)


def test_samples_are_accepted_by_the_api_server(
    install_crd: InstallCrd, control_plane: ControlPlane, namespace: str
) -> None:
    install_crd(build_crd())
    applied = control_plane.kubectl(
        "apply", "-n", namespace, "-f", str(REPO_ROOT / "deploy" / "samples")
    )
    assert applied.returncode == 0, applied.stderr
    stores = get(control_plane, "-n", namespace, "taskstores")["items"]
    assert sorted(store["metadata"]["name"] for store in stores) == [
        "cluster-tasks",
        "custom-tasks",
        "external-tasks",
        "memory-tasks",
        "redis-tasks",
        "sentinel-tasks",
    ]
    get(control_plane, "-n", namespace, "deployment", "planner")
    get(control_plane, "-n", namespace, "secret", "external-redis-auth")


def _kubectl_json(plane: ControlPlane, *arguments: str) -> dict[str, object] | None:
    result = plane.kubectl(*arguments, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_after_helm_uninstall_stores_and_their_namespace_are_deleted(
    release: Release, control_plane: ControlPlane, tmp_path: Path
) -> None:
    plane = control_plane
    installed = release.install()
    assert installed.returncode == 0, installed.stderr
    stores = f"uninstall-{secrets.token_hex(3)}"
    plane.request_json(
        "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": stores}},
    )  # fmt: skip
    try:
        stores_run = {"mem": MEMORY, "red": managed_with_storage("Delete")}
        run_stores(plane, stores, stores_run, tmp_path / "operator.log")
        uninstalled = release.uninstall()
        assert uninstalled.returncode == 0, uninstalled.stderr

        deleted = plane.kubectl(
            "delete", "taskstores", "--all", "-n", stores, f"--timeout={int(TIMEOUT)}s"
        )
        assert deleted.returncode == 0, deleted.stderr
    finally:
        plane.request("DELETE", f"/api/v1/namespaces/{stores}")
    wait_until(
        "the namespace gone",
        lambda: _kubectl_json(plane, "get", "namespace", stores) is None,
        timeout=90,
    )
