"""HA as the chart runs it: two replicas share a kopf peering and exactly one works."""

from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
import yaml

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_dev.paths import CHART_DIR, DEPLOY_CRD_PATH

pytestmark = pytest.mark.e2e

PEERINGS = "/apis/kopf.dev/v1/clusterkopfpeerings"
# What the operator logs when it writes a TaskStore's status (runtime/reconciler.py).
WROTE_STATUS = "write status: TaskStore"
# kopf's peering transitions. A replica starts paused and logs RESUMING when no peer
# outranks it; one that starts behind a higher peer stays paused without a word.
RESUMING = "Resuming operations after the pause"
PAUSING = "Pausing operations in favour of"


def is_active(log: Path) -> bool:
    """Whether the replica's last peering transition let it work."""
    text = log.read_text()
    return text.rfind(RESUMING) > text.rfind(PAUSING)


def is_served(control_plane: ControlPlane, collection: str) -> bool:
    return control_plane.request("GET", collection)[0] == 200


def test_two_replicas_with_one_peering_have_exactly_one_active(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    for crd in yaml.safe_load_all((CHART_DIR / "crds" / "kopf-peering.yaml").read_text()):
        control_plane.install_crd(crd)
    control_plane.install_crd(yaml.safe_load(DEPLOY_CRD_PATH.read_text()))
    # Established is not yet servable: a fresh CRD's storage answers 429 for a moment, and a
    # kopf peering watch started then can stay unprocessed. The chart's CRDs exist long
    # before its pods start; wait until both collections list.
    for collection in (PEERINGS, "/apis/tealagents.io/v1alpha1/taskstores"):
        wait_until(f"{collection} to be served", partial(is_served, control_plane, collection))
    peering = f"ha-{namespace}"[:63]
    control_plane.request_json(
        "POST",
        PEERINGS,
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

        def both_registered() -> bool:
            status = control_plane.request_json("GET", f"{PEERINGS}/{peering}").get("status")
            return set(status or {}) == {"replica-0", "replica-1"}

        wait_until("both replicas to register in the peering", both_registered, timeout=60)
        wait_until(
            "exactly one replica to be active",
            lambda: sum(is_active(log) for log in logs) == 1,
            timeout=60,
        )
        [active] = [log.name for log in logs if is_active(log)]
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
        # Read before the replicas stop: the paused one resumes once the other is gone.
        # Both replicas are cluster-wide: other tests' TaskStores may be in their logs too.
        ours = f"{WROTE_STATUS} {namespace}/tasks"
        writers = [log.name for log in logs if ours in log.read_text()]
    assert writers == [active]
