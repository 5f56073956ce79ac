"""HA as the chart runs it: two replicas share a kopf peering and exactly one works."""

import re
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from taskstore_operator.envtest import ControlPlane
from taskstore_operator.envtest.binaries import REPO_ROOT
from taskstore_operator.envtest.processes import running_operator
from taskstore_operator.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e

CHART = REPO_ROOT / "charts" / "taskstore-operator"
CRD = REPO_ROOT / "deploy" / "crds" / "taskstores.tealagents.io.yaml"
PAUSING = re.compile(r"Pausing operations in favour of")


def test_two_replicas_with_one_peering_have_exactly_one_active(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    for crd in yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text()):
        control_plane.install_crd(crd)
    control_plane.install_crd(yaml.safe_load(CRD.read_text()))
    peering = f"ha-{namespace}"[:63]
    control_plane.request_json(
        "POST",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    logs = [tmp_path / "replica-0.log", tmp_path / "replica-1.log"]
    with ExitStack() as replicas:
        for number, log in enumerate(logs):
            replicas.enter_context(
                running_operator(
                    control_plane.kubeconfig,
                    log,
                    environment={"TASKSTORE_PEERING": peering, "POD_ID": f"replica-{number}"},
                )
            )
        wait_until(
            "one replica to pause for the other",
            lambda: sum(bool(PAUSING.search(log.read_text())) for log in logs) == 1,
            timeout=60,
        )
        store = {
            "apiVersion": "tealagents.io/v1alpha1",
            "kind": "TaskStore",
            "metadata": {"name": "tasks"},
            "spec": {"backend": "memory"},
        }
        path = f"/apis/tealagents.io/v1alpha1/namespaces/{namespace}/taskstores"
        control_plane.request_json("POST", path, store)

        def ready() -> bool:
            status = control_plane.request_json("GET", f"{path}/tasks").get("status") or {}
            return any(
                c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
            )

        wait_until("the TaskStore to be Ready", ready, timeout=60)
        paused = [log for log in logs if PAUSING.search(log.read_text())]
        assert len(paused) == 1, "exactly one replica must stay paused while the other works"
