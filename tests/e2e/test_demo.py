"""The main job: ``python -m taskstore_dev.demo`` runs the product and cleans up."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taskstore_dev.envtest import Binaries
from taskstore_dev.envtest.processes import stop_process
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def apiserver_processes(parent: int | None = None) -> set[int]:
    """Pids of the kube-apiservers running on this machine (children of ``parent`` only)."""
    children = [] if parent is None else ["-P", str(parent)]
    found = subprocess.run(
        ["pgrep", "-x", "kube-apiserver", *children], capture_output=True, text=True
    )
    return {int(pid) for pid in found.stdout.split()}


def test_demo_shows_every_store_ready_and_the_agent_env_then_stops_on_ctrl_c(
    envtest_binaries: Binaries, tmp_path: Path
) -> None:
    output = tmp_path / "demo.out"
    with output.open("w") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "taskstore_dev.demo"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def running() -> bool:
            assert demo.poll() is None, output.read_text()
            return "running until Ctrl-C" in output.read_text()

        try:
            wait_until("the demo to run", running, timeout=180)
            demos_own = apiserver_processes(parent=demo.pid)
            assert demos_own, "the demo's control plane is not running"
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=60) == 0, output.read_text()
        finally:
            stop_process(demo, grace=0)
    text = output.read_text()
    for store in ("memory-tasks", "redis-tasks", "external-tasks", "custom-tasks"):
        line = next(line for line in text.splitlines() if line.startswith(store))
        assert " True " in line
        assert "Reconciled" in line
    assert "TA_PERSISTENCE_CLASS = RedisTaskPersistenceManager" in text
    assert "TA_REDIS_HOST = redis-tasks-redis.agents.svc" in text
    assert "TA_REDIS_PWD <- secret redis-tasks-redis-auth, key password" in text
    assert "stopped: operator, kube-controller-manager, kube-apiserver and etcd" in text
    assert not demos_own & apiserver_processes(), "the demo left its kube-apiserver running"
