"""The main job: ``python -m taskstore_dev.demo`` runs the product and cleans up."""

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taskstore_dev.envtest import Binaries
from taskstore_dev.envtest.processes import stop_process
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def apiserver_processes(parent: int | None = None, name: str = "kube-apiserver") -> set[int]:
    """Pids of the kube-apiservers (or ``name``) on this machine (children of ``parent`` only)."""
    children = [] if parent is None else ["-P", str(parent)]
    found = subprocess.run(["pgrep", "-x", name, *children], capture_output=True, text=True)
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
            # The sandbox's redis-server is stopped once the agent has run.
            assert not apiserver_processes(parent=demo.pid, name="redis-server")
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
    # The library in the pod: init container, volume, read-only mount, module path.
    assert "init container teal-taskstore-library: image " in text
    assert "command python -m teal_taskstore copy-library /opt/teal-taskstore" in text
    assert "container agent mounts it read-only at /opt/teal-taskstore" in text
    assert "module path TA_PERSISTENCE_MODULE = /opt/teal-taskstore/teal_taskstore_entry.py" in text
    # The agent sandbox, once, on a local redis-server standing for the managed Redis.
    sandbox = "$ scripts/agent-sandbox --namespace agents --deployment planner --map "
    assert sandbox + "redis-tasks-redis.agents.svc:6379=127.0.0.1:" in text
    assert "agent-sandbox:   copied " in text  # copy-library's own line, run locally
    assert "agent-sandbox: env TA_REDIS_HOST = 127.0.0.1  (in the pod: redis-tasks-redis" in text
    assert "agent-sandbox: env TA_REDIS_PWD <- secret redis-tasks-redis-auth, key password" in text
    assert "agent: the factory built RedisTaskPersistenceManager" in text
    printed = text.partition("agent: stored and loaded back:\n")[2]
    stored = json.loads(printed[: printed.index("\n}\n") + 2])
    assert (stored["task_id"], stored["status"], len(stored["items"])) == (
        "demo-sandbox-task", "Paused", 2,
    )  # fmt: skip
    held = re.search(r"the local redis-server held (\d+) keys: (.*)", text)
    assert held is not None, text
    assert "taskstore:v1:task:demo-sandbox-task" in held[2].split(", ")
    assert "stopped: operator, kube-controller-manager, kube-apiserver and etcd" in text
    assert not demos_own & apiserver_processes(), "the demo left its kube-apiserver running"
