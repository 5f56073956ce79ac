"""Specs that could never run are refused before anything is created for them.

The API server refuses them with the generated CRD (an image pattern, a CEL rule on the
resource names). A store saved before the CRD carried those rules is reported by the
operator as ``InvalidSpec``, and nothing is created for it either.
"""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_dev.paths import DEPLOY_CRD_PATH

pytestmark = pytest.mark.e2e

CRD: Final = yaml.safe_load(DEPLOY_CRD_PATH.read_text())
Manifest = dict[str, Any]

STORES: Final = "/apis/tealagents.io/v1alpha1/namespaces/{namespace}/taskstores"
# What a managed Redis store creates, in the order the operator would create it.
CREATED: Final = (
    "/api/v1/namespaces/{namespace}/secrets/tasks-redis-auth",
    "/api/v1/namespaces/{namespace}/configmaps/tasks-redis-config",
    "/api/v1/namespaces/{namespace}/services/tasks-redis",
    "/apis/apps/v1/namespaces/{namespace}/statefulsets/tasks-redis",
    "/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/tasks-redis",
)

BAD_SPECS: Final[dict[str, tuple[Manifest, str, str]]] = {
    "bogus-resource": (
        {"resources": {"requests": {"bogus": "1"}}},
        "spec.redis.managed.resources.requests",
        "resource names must be one of: cpu, memory, ephemeral-storage",
    ),
    "spaced-image": (
        {"image": " redis:7.2 "},
        "spec.redis.managed.image",
        "should match",
    ),
}


def store(managed: Manifest) -> Manifest:
    return {
        "apiVersion": "tealagents.io/v1alpha1",
        "kind": "TaskStore",
        "metadata": {"name": "tasks"},
        "spec": {"backend": "redis", "redis": {"managed": managed}},
    }


def crd_before_the_rules() -> Manifest:
    """The CRD as it was before the image pattern and the resource-name rules."""
    old: Manifest = copy.deepcopy(CRD)
    spec = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    managed = spec["properties"]["redis"]["properties"]["managed"]["properties"]
    managed["image"].pop("pattern", None)
    managed["resources"].pop("x-kubernetes-validations", None)
    for kind in ("requests", "limits"):
        managed["resources"]["properties"][kind].pop("maxProperties", None)
    return old


def created(control_plane: ControlPlane, namespace: str) -> list[str]:
    """The managed Redis objects of store ``tasks`` that exist."""
    return [
        path.format(namespace=namespace)
        for path in CREATED
        if control_plane.request("GET", path.format(namespace=namespace))[0] != 404
    ]


def ready_condition(control_plane: ControlPlane, namespace: str) -> Manifest:
    found = control_plane.request_json("GET", STORES.format(namespace=namespace) + "/tasks")
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


@pytest.fixture
def current_crd(control_plane: ControlPlane) -> Iterator[None]:
    """The generated CRD, installed again afterwards whatever the test changed."""
    control_plane.install_crd(CRD)
    try:
        yield
    finally:
        control_plane.install_crd(CRD)


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_the_server_refuses_the_spec_and_nothing_is_created(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, current_crd: None, case: str
) -> None:
    managed, field, message = BAD_SPECS[case]
    with running_operator(
        control_plane.kubeconfig, tmp_path / "operator.log", f"--namespace={namespace}"
    ):
        status, body = control_plane.request(
            "POST", STORES.format(namespace=namespace), store(managed)
        )
        assert status == 422, body[:500]
        causes = json.loads(body)["details"]["causes"]
        assert any(c["field"] == field and message in c["message"] for c in causes), causes
        # Nothing to reconcile was stored: no store, and none of its objects.
        stores = control_plane.request_json("GET", STORES.format(namespace=namespace))
        assert stores["items"] == []
        assert created(control_plane, namespace) == []


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_stored_spec_older_than_the_rules_is_invalid_spec_and_nothing_is_created(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, current_crd: None, case: str
) -> None:
    managed, field, _ = BAD_SPECS[case]
    control_plane.install_crd(crd_before_the_rules())
    control_plane.request_json("POST", STORES.format(namespace=namespace), store(managed))
    log = tmp_path / "operator.log"
    with running_operator(control_plane.kubeconfig, log, f"--namespace={namespace}"):
        wait_until(
            "Ready=False InvalidSpec",
            lambda: ready_condition(control_plane, namespace).get("reason") == "InvalidSpec",
            timeout=60,
        )
        condition = ready_condition(control_plane, namespace)
        assert condition["status"] == "False"
        assert field in condition["message"], condition
        assert created(control_plane, namespace) == []
