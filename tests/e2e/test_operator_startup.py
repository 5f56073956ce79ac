"""What the operator says at start-up about its configuration."""

from pathlib import Path

import pytest

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.operator_process import running_operator
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def test_an_unknown_watched_namespace_is_reported_at_start_up(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    arguments = [f"--namespace={namespace}", "--namespace=no-such-namespace"]
    with running_operator(control_plane.kubeconfig, log, *arguments) as operator:
        wait_until(
            "the operator to report the unknown namespace",
            lambda: "watched namespace 'no-such-namespace' does not exist" in log.read_text(),
        )
        assert operator.poll() is None, "the operator keeps serving the namespaces that exist"
    assert f"watched namespace '{namespace}'" not in log.read_text()
