"""The chart: lint, what `helm template` renders for each scenario, the CRD, the schema."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskstore_dev.generate import GENERATED
from taskstore_dev.paths import CHART_CRD_PATH, CHART_DIR
from taskstore_operator.api.crd import build_crd, render_crd_yaml
from taskstore_operator.topology import PEERING_LABEL

from .conftest import SCENARIOS, Helm, Manifest, container, of_kind, only

VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
CHART = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())


def test_each_ci_scenario_exists() -> None:
    assert set(SCENARIOS) == {"default", "namespaced", "ha"}


@pytest.mark.parametrize("scenario", [None, *SCENARIOS])
def test_helm_lint_is_clean(helm: Helm, scenario: str | None) -> None:
    values = ["--values", str(SCENARIOS[scenario])] if scenario else []
    result = helm.run("lint", "--strict", str(CHART_DIR), *values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout
    assert "0 chart(s) failed" in result.stdout


def test_the_agent_library_image_is_a_value(helm: Helm) -> None:
    image = "registry.example/teal-taskstore:1.2.3"
    operator = container(helm.template("--set", f"agentLibrary.image={image}"))
    assert f"--library-image={image}" in operator["args"]
    digest = "sha256:" + "a" * 64
    operator = container(helm.template("--set", f"image.digest={digest}"))
    assert f"--library-image=ghcr.io/tealagents/taskstore-operator@{digest}" in operator["args"]


def test_the_secret_check_period_is_a_value(helm: Helm) -> None:
    assert "--secret-check-seconds=60" in container(helm.template())["args"]
    operator = container(helm.template("--set", "secretCheckSeconds=15"))
    assert "--secret-check-seconds=15" in operator["args"]


def test_chart_metadata() -> None:
    assert CHART["apiVersion"] == "v2"
    assert CHART["kubeVersion"] == ">=1.29.0-0"
    assert CHART["appVersion"] == "0.1.0"


def test_default_render(helm: Helm) -> None:
    objects = helm.template(values=[SCENARIOS["default"]])
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    binding = only(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "rel-taskstore-operator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-taskstore-operator", "namespace": "ops"}
    ]
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-taskstore-operator"
    assert pod["automountServiceAccountToken"] is True
    operator = container(objects)
    assert operator["image"] == "ghcr.io/tealagents/taskstore-operator:0.1.0"
    assert operator["args"] == [
        "--metrics-port=8080",
        "--health-port=8081",
        # The library injected into agent pods comes from the operator's own image.
        "--library-image=ghcr.io/tealagents/taskstore-operator:0.1.0",
        "--secret-check-seconds=60",
    ]
    env = {item["name"]: item for item in operator["env"]}
    assert env["TASKSTORE_WATCH_NAMESPACES"]["value"] == ""
    # Peering is on with one replica too: a second install over the same namespaces stands by.
    assert env["TASKSTORE_PEERING"]["value"] == "rel-taskstore-operator"
    peering = only(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "rel-taskstore-operator"
    assert peering["metadata"]["labels"][PEERING_LABEL] == "true"
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    service = only(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_restricted_security_context_and_probes(helm: Helm) -> None:
    objects = helm.template()
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    operator = container(objects)
    assert operator["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {port["name"]: port["containerPort"] for port in operator["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert operator["resources"] == VALUES["resources"]
    # The root filesystem is read-only: /tmp is the one writable path.
    assert operator["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp"
    assert "emptyDir" in pod["volumes"][0]


def test_namespaced_render(helm: Helm) -> None:
    objects = helm.template(values=[SCENARIOS["namespaced"]])
    roles = of_kind(objects, "Role")
    bindings = of_kind(objects, "RoleBinding")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "rel-taskstore-operator", "namespace": "ops"}
        ]
    # Cluster-wide: only what kopf's observers and the start-up check read.
    cluster_role = only(objects, "ClusterRole")
    assert cluster_role["metadata"]["name"] == "rel-taskstore-operator-cluster"
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        # The start-up check for a cluster-wide install over the same namespaces.
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": ["list"]},
    ]
    assert (
        only(objects, "ClusterRoleBinding")["roleRef"]["name"] == cluster_role["metadata"]["name"]
    )
    env = {item["name"]: item.get("value") for item in container(objects)["env"]}
    assert env["TASKSTORE_WATCH_NAMESPACES"] == "team-a,team-b"
    assert not of_kind(objects, "PodDisruptionBudget")


def test_ha_render(helm: Helm) -> None:
    objects = helm.template(values=[SCENARIOS["ha"]])
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    budget = only(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    peering = only(objects, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "taskstore-operator"
    env = {item["name"]: item.get("value") for item in container(objects)["env"]}
    assert env["TASKSTORE_PEERING"] == "taskstore-operator"
    rules = only(objects, "ClusterRole")["rules"]
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "resourceNames": ["taskstore-operator"],
        "verbs": ["patch"],
    } in rules
    monitor = only(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    service = only(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_ha_namespaced_render_has_a_peering_per_namespace(helm: Helm) -> None:
    objects = helm.template("--set", "replicas=3", values=[SCENARIOS["namespaced"]])
    peerings = of_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert {p["metadata"]["name"] for p in peerings} == {"rel-taskstore-operator"}
    assert not of_kind(objects, "ClusterKopfPeering")
    for role in of_kind(objects, "Role"):
        assert {
            "apiGroups": ["kopf.dev"],
            "resources": ["kopfpeerings"],
            "resourceNames": ["rel-taskstore-operator"],
            "verbs": ["patch"],
        } in role["rules"]


@pytest.mark.parametrize(
    ("arguments", "pdb", "monitor"),
    [
        ((), False, False),
        (("--set", "replicas=2"), True, False),
        (("--set", "metrics.serviceMonitor.enabled=true"), False, True),
    ],
)
def test_pdb_only_with_replicas_and_monitor_only_when_enabled(
    helm: Helm, arguments: tuple[str, ...], pdb: bool, monitor: bool
) -> None:
    objects = helm.template(*arguments)
    assert bool(of_kind(objects, "PodDisruptionBudget")) is pdb
    assert bool(of_kind(objects, "ServiceMonitor")) is monitor


def test_image_digest_wins_over_the_tag(helm: Helm) -> None:
    digest = "sha256:" + "a" * 64
    tagged = container(helm.template("--set", "image.tag=0.2.0"))
    assert tagged["image"] == "ghcr.io/tealagents/taskstore-operator:0.2.0"
    pinned = container(helm.template("--set", "image.tag=0.2.0", "--set", f"image.digest={digest}"))
    assert pinned["image"] == f"ghcr.io/tealagents/taskstore-operator@{digest}"


def _without_chart_metadata(crd: Manifest) -> Manifest:
    stripped: Manifest = json.loads(json.dumps(crd))
    stripped["metadata"].pop("labels")
    stripped["metadata"].pop("annotations", None)
    return stripped


def test_chart_crd_file_is_the_generated_one_byte_for_byte() -> None:
    assert CHART_CRD_PATH in {generated.path for generated in GENERATED}
    assert CHART_CRD_PATH.read_text() == render_crd_yaml()
    assert CHART_CRD_PATH.is_relative_to(CHART_DIR)


def test_rendered_crd_equals_the_generated_one(helm: Helm) -> None:
    crd = only(helm.template(), "CustomResourceDefinition")
    assert _without_chart_metadata(crd) == build_crd()
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_rendered_crd_text_is_the_generated_text_plus_metadata(helm: Helm) -> None:
    result = helm.run("template", "rel", str(CHART_DIR), "--show-only", "templates/crds.yaml")
    assert result.returncode == 0, result.stderr
    rendered = result.stdout.split("\n", 2)[2]  # drop "---" and "# Source: ..."
    inserted = re.search(r"\nmetadata:\n((?:  (?!name:).*\n)+)  name:", rendered)
    assert inserted is not None
    assert rendered.replace(inserted.group(1), "", 1) == render_crd_yaml()


def test_crd_keep_and_enabled_switches(helm: Helm) -> None:
    unkept = only(helm.template("--set", "crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in unkept["metadata"]
    assert _without_chart_metadata(unkept) == build_crd()
    assert not of_kind(helm.template("--set", "crds.enabled=false"), "CustomResourceDefinition")


def test_kopf_peering_crds_are_helm_crds() -> None:
    """Helm installs crds/ before the templates, so the chart's peering object can be created."""
    crds = list(yaml.safe_load_all((CHART_DIR / "crds" / "kopf-peering.yaml").read_text()))
    assert sorted(crd["metadata"]["name"] for crd in crds) == [
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]
    assert {crd["spec"]["scope"] for crd in crds} == {"Cluster", "Namespaced"}
    # The TaskStore CRD is not among them: Helm would never upgrade it.
    assert sorted(path.name for path in (CHART_DIR / "crds").iterdir()) == ["kopf-peering.yaml"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--set", "replicaz=2"), "additional properties 'replicaz' not allowed"),
        (("--set", "replicas=two"), "at '/replicas': got string, want integer"),
        (("--set", "replicas=0"), "at '/replicas': minimum: got 0, want 1"),
        (("--set", "image.pullpolicy=Always"), "additional properties 'pullpolicy' not allowed"),
        (("--set", "image.pullPolicy=Sometimes"), "value must be one of"),
        (("--set", "crds.enabled=yes"), "at '/crds/enabled': got string, want boolean"),
        (("--set", "watchNamespaces[0]=Team_A"), "at '/watchNamespaces/0'"),
        (("--set", "metrics.port=70000"), "at '/metrics/port': maximum"),
        (("--set", "containerSecurityContext.privilegd=true"), "'privilegd' not allowed"),
        (("--set", "image.digest=latest"), "at '/image/digest'"),
        (("--set", "secretCheckSeconds=0"), "at '/secretCheckSeconds'"),
    ],
)
def test_schema_refuses_bad_values(helm: Helm, arguments: tuple[str, ...], message: str) -> None:
    result = helm.run("template", "rel", str(CHART_DIR), *arguments)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


def _leaf_paths(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Every documented value: leaves, and maps or lists users fill in themselves."""
    paths: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        free_form = key in {"resources", "podSecurityContext", "containerSecurityContext"}
        if isinstance(value, dict) and value and not free_form:
            paths |= _leaf_paths(value, f"{path}.")
        else:
            paths.add(path)
    return paths


def test_every_value_is_documented() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.MULTILINE))
    assert documented == _leaf_paths(VALUES)


def _schema_objects(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append((path, node))
        for key, value in node.items():
            found += _schema_objects(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _schema_objects(value, f"{path}[{index}]")
    return found


# Objects whose inside is Kubernetes' business, checked by the API server when applied.
KUBERNETES_OBJECTS = {
    "$.properties.global",
    "$.properties.affinity.properties.nodeAffinity",
    "$.properties.affinity.properties.podAffinity",
    "$.properties.affinity.properties.podAntiAffinity",
    "$.properties.topologySpreadConstraints.items",
}


def test_schema_is_strict_everywhere() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    for path, node in _schema_objects(schema):
        if path in KUBERNETES_OBJECTS:
            continue
        extra = node.get("additionalProperties")
        # Either closed, or a map whose values are typed (labels, annotations, resources).
        assert extra is False or isinstance(extra, dict), f"{path} is open"
        if extra is False:
            assert "properties" in node, path
    # Every value in values.yaml is known to the schema, with a description.
    assert set(schema["properties"]) - {"global"} == set(VALUES)
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name


def test_helpers_each_have_a_one_line_comment() -> None:
    text = (CHART_DIR / "templates" / "_helpers.tpl").read_text()
    defines = re.findall(r'(?m)^(.*)\n\{\{- define "([^"]+)"', text)
    names = [name for _, name in defines]
    for expected in ("name", "fullname", "chart", "labels", "selectorLabels", "serviceAccountName"):
        assert f"taskstore-operator.{expected}" in names
    for comment, name in defines:
        assert re.fullmatch(r"\{\{/\* .+ \*/\}\}", comment), name


def test_fullname_follows_the_release_name(helm: Helm) -> None:
    named = helm.run("template", "taskstore-operator", str(CHART_DIR))
    assert "name: taskstore-operator\n" in named.stdout
    overridden = helm.template("--set", "fullnameOverride=tso")
    assert only(overridden, "Deployment")["metadata"]["name"] == "tso"


def test_notes_say_how_to_create_a_taskstore_and_wait() -> None:
    notes = (CHART_DIR / "templates" / "NOTES.txt").read_text()
    assert "kind: TaskStore" in notes
    assert "kubectl wait" in notes
    assert "--for=condition=Ready" in notes


def test_chart_paths_exist() -> None:
    for relative in ("Chart.yaml", "values.yaml", "values.schema.json", "templates/NOTES.txt"):
        assert Path(CHART_DIR / relative).is_file(), relative


def test_kubernetes_older_than_1_29_is_refused(helm: Helm) -> None:
    too_old = helm.run("template", "rel", str(CHART_DIR), "--kube-version", "1.28.9")
    assert too_old.returncode != 0
    assert "incompatible with Kubernetes v1.28.9" in too_old.stderr
    oldest = helm.run("template", "rel", str(CHART_DIR), "--kube-version", "1.29.0")
    assert oldest.returncode == 0, oldest.stderr
