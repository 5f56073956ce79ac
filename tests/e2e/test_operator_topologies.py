"""Two installs over one namespace: the one that starts second says so and stands by.

A cluster-wide and a namespaced operator, each with its own peering object as the chart
makes them, are run against the control plane. Before the fix both worked and every
status write and Event of a store in the shared namespace happened twice.
"""

from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_dev.paths import CHART_DIR, DEPLOY_CRD_PATH
from taskstore_operator.topology import PEERING_LABEL

pytestmark = pytest.mark.e2e

CLUSTER_PEERINGS: Final = "/apis/kopf.dev/v1/clusterkopfpeerings"
STORES: Final = "/apis/tealagents.io/v1alpha1/namespaces/{namespace}/taskstores"
# What the operator logs when it writes a TaskStore's status (handlers/reconciler.py).
WROTE_STATUS: Final = "write status: TaskStore"
STANDING_BY: Final = "Standing by until it stops"
STARTING: Final = "any more: starting"
TIMEOUT: Final = 60.0

Manifest = dict[str, Any]


def namespaced_peerings(namespace: str) -> str:
    return f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings"


def is_served(control_plane: ControlPlane, collection: str) -> bool:
    return control_plane.request("GET", collection)[0] == 200


def peering_object(kind: str, name: str) -> Manifest:
    """A peering object labelled as the chart labels them."""
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": {PEERING_LABEL: "true"}},
    }


@pytest.fixture
def peerings(control_plane: ControlPlane, namespace: str) -> Iterator[tuple[str, str]]:
    """A ClusterKopfPeering (cluster-wide install) and a KopfPeering in the namespace."""
    for crd in yaml.safe_load_all((CHART_DIR / "crds" / "kopf-peering.yaml").read_text()):
        control_plane.install_crd(crd)
    control_plane.install_crd(yaml.safe_load(DEPLOY_CRD_PATH.read_text()))
    # A fresh CRD answers 429 for a moment after it is Established (see test_operator_ha).
    for collection in (
        CLUSTER_PEERINGS,
        namespaced_peerings(namespace),
        STORES.format(namespace=namespace),
    ):
        wait_until(f"{collection} to be served", partial(is_served, control_plane, collection))
    cluster_name = f"cw-{namespace}"[:63]
    control_plane.request_json(
        "POST", CLUSTER_PEERINGS, peering_object("ClusterKopfPeering", cluster_name)
    )
    control_plane.request_json(
        "POST", namespaced_peerings(namespace), peering_object("KopfPeering", "team-ops")
    )
    try:
        yield cluster_name, "team-ops"
    finally:
        # A labelled peering with a live record would make later operators stand by.
        control_plane.request("DELETE", f"{CLUSTER_PEERINGS}/{cluster_name}")


def registered(control_plane: ControlPlane, path: str, identity: str) -> bool:
    status = control_plane.request_json("GET", path).get("status") or {}
    return identity in status


def create_store(control_plane: ControlPlane, namespace: str, name: str) -> None:
    store = {
        "apiVersion": "tealagents.io/v1alpha1",
        "kind": "TaskStore",
        "metadata": {"name": name},
        "spec": {"backend": "memory"},
    }
    control_plane.request_json("POST", STORES.format(namespace=namespace), store)


def ready(control_plane: ControlPlane, namespace: str, name: str) -> bool:
    found = control_plane.request_json("GET", f"{STORES.format(namespace=namespace)}/{name}")
    conditions = (found.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_a_namespaced_install_stands_by_while_a_cluster_wide_one_serves_its_namespace(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, peerings: tuple[str, str]
) -> None:
    cluster_name, team_name = peerings
    cluster_log, team_log = tmp_path / "cluster-wide.log", tmp_path / "namespaced.log"
    with ExitStack() as operators:
        cluster_wide = operators.enter_context(
            running_operator(
                control_plane.kubeconfig,
                cluster_log,
                environment={"TASKSTORE_PEERING": cluster_name, "POD_ID": "cluster-wide"},
            )
        )
        wait_until(
            "the cluster-wide operator to register in its peering",
            lambda: registered(control_plane, f"{CLUSTER_PEERINGS}/{cluster_name}", "cluster-wide"),
            timeout=TIMEOUT,
        )
        operators.enter_context(
            running_operator(
                control_plane.kubeconfig,
                team_log,
                f"--namespace={namespace}",
                environment={"TASKSTORE_PEERING": team_name, "POD_ID": "namespaced"},
            )
        )
        team_path = f"{namespaced_peerings(namespace)}/{team_name}"
        wait_until(
            "the namespaced operator to stand by or to join its peering",
            lambda: (
                STANDING_BY in team_log.read_text()
                or registered(control_plane, team_path, "namespaced")
            ),
            timeout=TIMEOUT,
        )
        create_store(control_plane, namespace, "first")
        wait_until(
            "first Ready", partial(ready, control_plane, namespace, "first"), timeout=TIMEOUT
        )
        wait_until(
            "the cluster-wide operator's status write",
            lambda: f"{WROTE_STATUS} {namespace}/first" in cluster_log.read_text(),
        )
        # Before the fix, both operators wrote the store's status (and every Event).
        assert WROTE_STATUS not in team_log.read_text()
        standby = team_log.read_text()
        assert f"another TaskStore operator already serves {namespace}: cluster-wide" in standby
        assert f"ClusterKopfPeering {cluster_name}" in standby
        assert not registered(control_plane, team_path, "namespaced")

        # The cluster-wide operator goes: the namespaced one takes over its namespace.
        cluster_wide.stop()
        wait_until(
            "the namespaced operator to start",
            lambda: STARTING in team_log.read_text(),
            timeout=TIMEOUT,
        )
        create_store(control_plane, namespace, "second")
        wait_until(
            "second Ready", partial(ready, control_plane, namespace, "second"), timeout=TIMEOUT
        )
        assert f"{WROTE_STATUS} {namespace}/second" in team_log.read_text()


def test_a_cluster_wide_install_stands_by_while_a_namespaced_one_serves(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, peerings: tuple[str, str]
) -> None:
    cluster_name, team_name = peerings
    cluster_log, team_log = tmp_path / "cluster-wide.log", tmp_path / "namespaced.log"
    with running_operator(
        control_plane.kubeconfig,
        team_log,
        f"--namespace={namespace}",
        environment={"TASKSTORE_PEERING": team_name, "POD_ID": "namespaced"},
    ):
        path = f"{namespaced_peerings(namespace)}/{team_name}"
        wait_until(
            "the namespaced operator to register in its peering",
            lambda: registered(control_plane, path, "namespaced"),
            timeout=TIMEOUT,
        )
        with running_operator(
            control_plane.kubeconfig,
            cluster_log,
            environment={"TASKSTORE_PEERING": cluster_name, "POD_ID": "cluster-wide"},
        ):
            cluster_path = f"{CLUSTER_PEERINGS}/{cluster_name}"
            wait_until(
                "the cluster-wide operator to stand by or to join its peering",
                lambda: (
                    STANDING_BY in cluster_log.read_text()
                    or registered(control_plane, cluster_path, "cluster-wide")
                ),
                timeout=TIMEOUT,
            )
            create_store(control_plane, namespace, "tasks")
            wait_until("Ready", partial(ready, control_plane, namespace, "tasks"), timeout=TIMEOUT)
            wait_until(
                "the namespaced operator's status write",
                lambda: f"{WROTE_STATUS} {namespace}/tasks" in team_log.read_text(),
            )
            assert WROTE_STATUS not in cluster_log.read_text()
            assert not registered(
                control_plane, f"{CLUSTER_PEERINGS}/{cluster_name}", "cluster-wide"
            )


def test_a_missing_peering_object_is_created_labelled_and_joined(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, peerings: tuple[str, str]
) -> None:
    """The plain manifests hold no peering object: the operator creates its own."""
    name = f"new-{namespace}"[:63]
    path = f"{namespaced_peerings(namespace)}/{name}"
    assert control_plane.request("GET", path)[0] == 404
    with running_operator(
        control_plane.kubeconfig,
        tmp_path / "operator.log",
        f"--namespace={namespace}",
        environment={"TASKSTORE_PEERING": name, "POD_ID": "alone"},
    ):
        wait_until(
            "the operator to join the peering it created",
            lambda: (
                control_plane.request("GET", path)[0] == 200
                and registered(control_plane, path, "alone")
            ),
            timeout=TIMEOUT,
        )
        created = control_plane.request_json("GET", path)
        assert created["metadata"]["labels"] == {PEERING_LABEL: "true"}
        create_store(control_plane, namespace, "tasks")
        wait_until("Ready", partial(ready, control_plane, namespace, "tasks"), timeout=TIMEOUT)
