"""The operator end to end: the CRD from deploy/, the operator as a process, the cluster's view.

One operator process serves each test module (it watches every namespace; each test has
its own). No kubelet runs, so a managed Redis is made "ready" by setting its
StatefulSet's status, as envtest users do.
"""

from collections.abc import Iterator

import pytest
import yaml
from kubernetes import client

from support.cluster import Kube
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.paths import DEPLOY_CRD_PATH


@pytest.fixture(scope="session")
def taskstore_crd(control_plane: ControlPlane) -> None:
    """The TaskStore CRD from deploy/, installed once and Established."""
    control_plane.install_crd(yaml.safe_load(DEPLOY_CRD_PATH.read_text()))


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, taskstore_crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator over every namespace, with its metrics served, for one test module."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    # Secrets are read every period, not watched: a short one keeps the tests short.
    process = OperatorProcess(
        control_plane.kubeconfig,
        log_path,
        environment={"TASKSTORE_SECRET_CHECK_SECONDS": "1"},
        serve=True,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(process.log()[-20000:])  # shown by pytest when a test fails


@pytest.fixture
def k8s(kube_api: client.ApiClient, control_plane: ControlPlane, operator: OperatorProcess) -> Kube:
    """The cluster as the test sees it, with the operator running."""
    return Kube(kube_api, control_plane)
