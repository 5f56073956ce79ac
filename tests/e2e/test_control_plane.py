"""Proof that the local control plane is a real Kubernetes API server, not a stub."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from taskstore_dev.envtest import Binaries, ControlPlane, ControlPlaneError, read_pins
from taskstore_dev.envtest import binaries as binaries_module
from taskstore_dev.envtest import controlplane as controlplane_module
from taskstore_dev.envtest import processes as processes_module
from taskstore_dev.envtest.binaries import find_binaries, uses_external_binaries
from taskstore_dev.envtest.processes import stop_process
from taskstore_dev.envtest.pytest_plugin import (
    InstallCrd,
    load_binaries,
    unavailable,
    wait_until,
)

pytestmark = pytest.mark.e2e

GROUP = "e2e.teal-taskstore.test"
VERSION = "v1"
PLURAL = "widgets"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "maxReplicas": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.replicas <= self.maxReplicas",
                                        "message": "replicas must not exceed maxReplicas",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, replicas: int, max_replicas: int) -> dict[str, Any]:
    """A Widget manifest."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "maxReplicas": max_replicas},
    }


def metadata(kind: Any) -> client.V1ObjectMeta:
    """The metadata of an object the server returned (always present)."""
    assert kind.metadata is not None
    meta: client.V1ObjectMeta = kind.metadata
    return meta


def config_map(name: str, **meta: Any) -> client.V1ConfigMap:
    """A ConfigMap with the given metadata fields."""
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, **meta))


def new_client(kubeconfig: Path) -> client.ApiClient:
    """An ApiClient configured the usual way, from a kubeconfig file."""
    api: client.ApiClient = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig)
    )
    return api


def is_gone(read: Any, *args: Any) -> bool:
    """Whether reading the object answers 404."""
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


@pytest.fixture(scope="module")
def widgets(install_crd: InstallCrd, kube_api: client.ApiClient) -> client.CustomObjectsApi:
    """The Widget CRD, installed once; returns the API to use it."""
    install_crd(WIDGET_CRD)
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    """The core/v1 API as admin."""
    return client.CoreV1Api(kube_api)


def test_server_reports_its_real_version(kube_api: client.ApiClient) -> None:
    version = client.VersionApi(kube_api).get_code()
    assert re.fullmatch(r"v1\.\d+\.\d+", version.git_version)
    if not uses_external_binaries():
        assert version.git_version == read_pins().kubernetes == "v1.36.3"


def test_reinstalling_a_crd_retries_a_replacement_that_lost_a_race(
    widgets: client.CustomObjectsApi, control_plane: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write between the GET and the PUT of a reinstall (409 Conflict) is retried, not fatal."""
    real_request = control_plane.request
    conflicts: list[str] = []

    def first_put_conflicts(method: str, path: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        if method == "PUT" and not conflicts:
            conflicts.append(path)  # as if the server had updated the CRD's status meanwhile
            return 409, b'{"reason": "Conflict"}'
        return real_request(method, path, *args, **kwargs)

    monkeypatch.setattr(control_plane, "request", first_put_conflicts)
    control_plane.install_crd(WIDGET_CRD)
    assert conflicts == [
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{WIDGET_CRD['metadata']['name']}"
    ]


def test_cel_rule_rejects_a_bad_object(widgets: client.CustomObjectsApi, namespace: str) -> None:
    widgets.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, widget("ok", 1, 3))

    with pytest.raises(ApiException) as rejected:
        widgets.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, widget("too-many", 5, 3)
        )

    assert rejected.value.status == 422
    assert "replicas must not exceed maxReplicas" in str(rejected.value.body)


def test_server_side_apply_reports_a_conflict_between_field_managers(
    widgets: client.CustomObjectsApi, namespace: str
) -> None:
    def apply(manager: str, replicas: int, *, force: bool = False) -> Any:
        return widgets.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "shared",
            widget("shared", replicas, 10),
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )

    apply("alice", 1)
    with pytest.raises(ApiException) as conflict:
        apply("bob", 2)

    assert conflict.value.status == 409
    [cause] = json.loads(str(conflict.value.body))["details"]["causes"]
    assert cause == {
        "reason": "FieldManagerConflict",
        "message": 'conflict with "alice"',
        "field": ".spec.replicas",
    }
    assert apply("bob", 2, force=True)["spec"]["replicas"] == 2


def test_finalizer_holds_deletion_until_removed(core: client.CoreV1Api, namespace: str) -> None:
    finalizer = f"{GROUP}/hold"
    core.create_namespaced_config_map(namespace, config_map("held", finalizers=[finalizer]))

    core.delete_namespaced_config_map("held", namespace)

    held = metadata(core.read_namespaced_config_map("held", namespace))
    assert held.deletion_timestamp is not None
    assert held.finalizers == [finalizer]
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    wait_until(
        "the ConfigMap to go once its finalizer is removed",
        lambda: is_gone(core.read_namespaced_config_map, "held", namespace),
    )


def test_garbage_collector_deletes_a_child_with_an_owner_reference(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str
) -> None:
    if not control_plane.has_controller_manager:
        unavailable("garbage collection needs kube-controller-manager, which was not found")
    parent = metadata(core.create_namespaced_config_map(namespace, config_map("parent")))
    owner = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="parent", uid=str(parent.uid)
    )
    core.create_namespaced_config_map(namespace, config_map("child", owner_references=[owner]))

    core.delete_namespaced_config_map("parent", namespace, propagation_policy="Background")

    wait_until(
        "the garbage collector to delete the child",
        lambda: is_gone(core.read_namespaced_config_map, "child", namespace),
        timeout=60,
    )


def test_deployment_controller_creates_a_replica_set(
    control_plane: ControlPlane, kube_api: client.ApiClient, namespace: str
) -> None:
    if not control_plane.has_controller_manager:
        unavailable("the deployment controller needs kube-controller-manager, which was not found")
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="registry.invalid/web:1")]
                ),
            ),
        ),
    )
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment)

    wait_until(
        "a ReplicaSet owned by the Deployment",
        lambda: any(
            owner.kind == "Deployment" and owner.name == "web"
            for replica_set in apps.list_namespaced_replica_set(namespace).items
            for owner in metadata(replica_set).owner_references or []
        ),
    )


def test_service_account_needs_a_role_binding(
    control_plane: ControlPlane, core: client.CoreV1Api, kube_api: client.ApiClient, namespace: str
) -> None:
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "reader")
    as_reader = client.CoreV1Api(new_client(kubeconfig))

    with pytest.raises(ApiException) as refused:
        as_reader.list_namespaced_config_map(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in str(refused.value.body)

    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="read-configmaps"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-reads-configmaps"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=namespace)
            ],
        ),
    )

    def allowed() -> bool:
        try:
            as_reader.list_namespaced_config_map(namespace)
        except ApiException as error:
            if error.status == 403:
                return False
            raise
        return True

    wait_until("the RoleBinding to take effect", allowed)


def test_kubeconfig_works_with_kubectl(control_plane: ControlPlane, namespace: str) -> None:
    whoami = control_plane.kubectl("auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == "admin"
    assert "system:masters" in user["groups"]

    created = control_plane.kubectl(
        "create", "configmap", "from-kubectl", "-n", namespace, "--from-literal=key=value"
    )
    assert created.returncode == 0, created.stderr
    shown = control_plane.kubectl("get", "configmap", "from-kubectl", "-n", namespace, "-o", "json")
    assert json.loads(shown.stdout)["data"] == {"key": "value"}


# kopf logs in through the Python client when it is installed, else with its own parser.
@pytest.mark.parametrize("login", ["login_via_client", "login_with_kubeconfig"])
def test_kubeconfig_works_with_kopf(
    control_plane: ControlPlane, core: client.CoreV1Api, namespace: str, tmp_path: Path, login: str
) -> None:
    operator = tmp_path / "operator.py"
    operator.write_text(
        "import kopf\n\n"
        "@kopf.on.login()\n"
        "def login(**kwargs):\n"
        f"    return kopf.{login}(**kwargs)\n\n"
        "@kopf.on.create('configmaps', labels={'e2e': 'kopf'})\n"
        "def mark(patch, **_):\n"
        "    patch.metadata.annotations['e2e/seen-by'] = 'kopf'\n"
    )
    # A subprocess, as the operator runs for real: the Python client reads KUBECONFIG
    # once, when it is imported, so an in-process runner would not see a new one.
    command = [
        sys.executable,
        "-m",
        "kopf",
        "run",
        "--standalone",
        f"--namespace={namespace}",
        str(operator),
    ]
    log_path = tmp_path / "kopf.log"
    with log_path.open("w") as log:
        kopf_process = subprocess.Popen(
            command,
            env=os.environ | {"KUBECONFIG": str(control_plane.kubeconfig)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        core.create_namespaced_config_map(namespace, config_map("watched", labels={"e2e": "kopf"}))

        def handled() -> bool:
            annotations = metadata(
                core.read_namespaced_config_map("watched", namespace)
            ).annotations
            return (annotations or {}).get("e2e/seen-by") == "kopf"

        wait_until("kopf to handle the ConfigMap", handled)
    finally:
        stop_process(kopf_process)
        print(log_path.read_text())  # shown by pytest only when the test fails


def test_helm_has_its_pinned_version_and_checks_kube_version(
    envtest_binaries: Binaries, control_plane: ControlPlane, tmp_path: Path
) -> None:
    if envtest_binaries.helm is None:
        unavailable("helm was not found among the control-plane binaries")
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        'apiVersion: v2\nname: tiny\nversion: 0.1.0\nkubeVersion: ">=1.30.0-0"\n'
    )
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tiny\n"
        "data:\n  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    # Keep helm's cache and config out of the home directory.
    env = os.environ | {
        name: str(tmp_path / name.lower())
        for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
    }

    def helm(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(envtest_binaries.helm), *arguments]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, timeout=60
        )

    version = helm("version", "--template", "{{ .Version }}")
    assert version.stdout == read_pins().helm == "v3.21.4"

    offline = helm("template", "tiny", str(chart))
    assert offline.returncode == 0, offline.stderr
    assert 'kubeVersion: "v1.36.0"' in offline.stdout

    too_old = helm("template", "tiny", str(chart), "--kube-version", "1.29.0")
    assert too_old.returncode != 0
    assert "incompatible with Kubernetes v1.29.0" in too_old.stderr

    live = helm(
        "template", "tiny", str(chart), "--validate", f"--kubeconfig={control_plane.kubeconfig}"
    )
    assert live.returncode == 0, live.stderr
    assert f'kubeVersion: "{read_pins().kubernetes}"' in live.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that something else is listening on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_busy_ports_are_retried_and_stop_leaves_nothing_behind(
    envtest_binaries: Binaries, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pick = processes_module.pick_free_ports
    handed_out_busy: list[int] = []

    def pick_busy_port_first(count: int) -> list[int]:
        """The first pick for etcd (2 ports) and for the API server (1 port) is taken."""
        ports = real_pick(count)
        if count not in handed_out_busy:
            handed_out_busy.append(count)
            ports[0] = busy_port
        return ports

    monkeypatch.setattr(controlplane_module, "pick_free_ports", pick_busy_port_first)
    plane = ControlPlane(envtest_binaries)
    plane.start()
    try:
        assert sorted(handed_out_busy) == [1, 2]
        assert plane.kubectl("get", "namespaces").returncode == 0
        process_ids = plane.process_ids
        work_dir = plane.work_dir
        assert len(process_ids) == (3 if plane.has_controller_manager else 2)
    finally:
        plane.stop()

    assert plane.process_ids == []
    assert not work_dir.exists()
    for process_id in process_ids:
        with pytest.raises(ProcessLookupError):
            os.kill(process_id, 0)
    assert not processes_mentioning(str(work_dir))


def test_start_fails_at_once_with_the_log_when_the_apiserver_exits(
    envtest_binaries: Binaries,
) -> None:
    plane = ControlPlane(
        envtest_binaries, extra_apiserver_args=["--no-such-flag"], start_timeout=60
    )
    started = time.monotonic()

    with pytest.raises(ControlPlaneError) as failure:
        plane.start()

    assert time.monotonic() - started < 30
    assert "kube-apiserver exited" in str(failure.value)
    assert "unknown flag: --no-such-flag" in str(failure.value)
    assert plane.process_ids == []


@pytest.fixture
def without_go_or_assets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment with no Go toolchain, no envtest assets and an empty cache."""
    path = tmp_path / "path"
    path.mkdir()
    openssl = shutil.which("openssl")
    assert openssl is not None
    (path / "openssl").symlink_to(openssl)  # the control plane makes its certificates with it
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setattr(binaries_module, "DEFAULT_GO_LOCATIONS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in (
        "KUBEBUILDER_ASSETS",
        *(
            f"TEST_ASSET_{n}"
            for n in ("KUBE_APISERVER", "ETCD", "KUBECTL", "KUBE_CONTROLLER_MANAGER", "HELM")
        ),
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("without_go_or_assets")
@pytest.mark.parametrize(
    ("ci", "outcome"), [("", pytest.skip.Exception), ("true", pytest.fail.Exception)]
)
def test_without_go_e2e_skips_in_one_line_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)

    with pytest.raises(outcome) as raised:
        load_binaries(progress=print)

    message = str(raised.value)
    assert "install Go" in message
    assert "KUBEBUILDER_ASSETS" in message
    assert "\n" not in message


@pytest.mark.usefixtures("without_go_or_assets")
def test_envtest_binaries_are_used_without_building(
    envtest_binaries: Binaries, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name, path in (
        ("kube-apiserver", envtest_binaries.kube_apiserver),
        ("etcd", envtest_binaries.etcd),
        ("kubectl", envtest_binaries.kubectl),
    ):
        (assets / name).symlink_to(path)
    explicit_etcd = tmp_path / "etcd-elsewhere"
    explicit_etcd.symlink_to(envtest_binaries.etcd)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    monkeypatch.setenv("TEST_ASSET_ETCD", str(explicit_etcd))

    found = find_binaries(build=False)

    assert found.kube_apiserver == assets / "kube-apiserver"
    assert found.etcd == explicit_etcd
    assert found.kube_controller_manager is None
    # Without kube-controller-manager it runs like controller-runtime's envtest.
    with ControlPlane(found) as plane:
        assert not plane.has_controller_manager
        assert plane.kubectl("get", "namespaces").returncode == 0


def test_a_failed_build_names_the_module_version_and_go_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = env ]; then echo go1.26.8; exit 0; fi\n'
        "echo 'cmd/kube-apiserver/app/server.go:1:1: something broke' >&2\n"
        "exit 1\n"
    )
    fake_go.chmod(0o755)
    monkeypatch.setattr(binaries_module, "find_go", lambda: fake_go)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    with pytest.raises(binaries_module.BuildError) as failure:
        binaries_module.build_binaries(progress=lambda line: None)

    message = str(failure.value)
    assert f"kube-apiserver from k8s.io/kubernetes {read_pins().kubernetes} failed" in message
    assert "something broke" in message
    # Neither a finished-looking bin dir nor the staging dir is left behind.
    assert [path.name for path in (tmp_path / "cache/teal-taskstore/bin").iterdir()] == [
        ".build.lock"
    ]


def processes_mentioning(text: str) -> list[int]:
    """Pids of running processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command_line = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in command_line:
                found.append(int(entry.name))
    return found
