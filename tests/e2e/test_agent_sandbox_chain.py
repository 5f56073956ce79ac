"""The whole chain, for each backend: a labelled Deployment, the operator's injection, and
``scripts/agent-sandbox`` running a Python 3.12 agent process on it, as the kubelet would
(the init container's copy-library into a local directory, Secret references resolved),
against a real ``redis-server``; the stand-in Teal Agents framework loads the injected
entry file through its own factory and stores, pauses, resumes and reads a task."""

import asyncio
import base64
import contextlib
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support.cluster import TIMEOUT, Kube
from support.framework import STANDIN
from support.python_rows import row_python
from support.redis_server import RedisServer
from support.samples import MANAGED, MEMORY, external_with_password, password_secret
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.pytest_plugin import wait_until
from teal_taskstore import AppConfig, RedisTaskPersistenceManager
from teal_taskstore.framework import IN_MEMORY_CLASS, LIBRARY_VOLUME, REDIS_CLASS

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "scripts" / "agent-sandbox"
CHAIN_AGENT = ROOT / "tests" / "support" / "chain_agent.py"
EXTERNAL_HOST = "redis.external.test"
STORE = "tasks"
AGENT = "planner"


@pytest.fixture(scope="module")
def python312(request: pytest.FixtureRequest) -> Path:
    """``.venvs/py3.12`` of scripts/test-pythons (semantic-kernel, the framework's pins).

    Built here when missing (a fresh machine: ``make test`` runs pytest first), with the
    build's progress shown live.
    """
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        return row_python("py3.12")


@pytest.fixture
def local_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


def require_password(server: RedisServer, password: str) -> None:
    """Make the running server ask for ``password`` (never on its command line)."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    client.config_set("requirepass", password)
    client.close()


def injected(k8s: Kube, namespace: str) -> bool:
    spec = k8s.deployment(namespace, AGENT)["spec"]["template"]["spec"]
    names = [init["name"] for init in spec.get("initContainers") or []]
    return names == [LIBRARY_VOLUME] and "TA_PERSISTENCE_MODULE" in k8s.env(namespace, AGENT)


def run_sandbox(
    control_plane: ControlPlane, namespace: str, python: Path, *maps: str
) -> subprocess.CompletedProcess[str]:
    flags = [f"--map={mapping}" for mapping in maps]
    command = [
        str(SANDBOX), "--kubeconfig", str(control_plane.kubeconfig),
        "--namespace", namespace, "--deployment", AGENT, *flags,
        "--", "env", f"PYTHONPATH={STANDIN}:{ROOT / 'tests'}", str(python), str(CHAIN_AGENT),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("backend", ["memory", "managed", "external"])
def test_the_sandbox_runs_a_framework_agent_on_the_injected_store(
    k8s: Kube,
    control_plane: ControlPlane,
    namespace: str,
    python312: Path,
    local_redis: RedisServer,
    backend: str,
) -> None:
    password = ""
    maps: list[str] = []
    if backend == "external":
        password = secrets.token_urlsafe(18)
        k8s.create(f"/api/v1/namespaces/{namespace}/secrets", password_secret("ext", password))
        spec = external_with_password("ext", host=EXTERNAL_HOST)
        maps.append(f"{EXTERNAL_HOST}:6379=127.0.0.1:{local_redis.port}")
    elif backend == "managed":
        spec = MANAGED
        maps.append(f"{STORE}-redis.{namespace}.svc:6379=127.0.0.1:{local_redis.port}")
    else:
        spec = MEMORY
    k8s.create_deployment(namespace, AGENT, store=STORE)
    k8s.create_store(namespace, STORE, spec)
    if backend == "managed":
        wait_until(
            "the managed Redis StatefulSet",
            lambda: k8s.exists(k8s.apps.read_namespaced_stateful_set, f"{STORE}-redis", namespace),
            timeout=TIMEOUT,
        )
        k8s.set_redis_ready(namespace, STORE)
        secret = k8s.plain(k8s.core.read_namespaced_secret(f"{STORE}-redis-auth", namespace))
        password = base64.b64decode(secret["data"]["password"]).decode()
    wait_until("the library injected", lambda: injected(k8s, namespace), timeout=TIMEOUT)
    if password:
        require_password(local_redis, password)

    result = run_sandbox(control_plane, namespace, python312, *maps)
    print(result.stderr, result.stdout)  # shown by pytest when the test fails

    assert result.returncode == 0, result.stderr
    agent = json.loads(result.stdout.strip().splitlines()[-1])
    assert agent["python"].startswith("3.12.")
    assert agent["store"] == (IN_MEMORY_CLASS if backend == "memory" else REDIS_CLASS)
    # Loaded by the framework's file loader from the init container's copy, not the venv's.
    volume = Path(agent["entry_file"]).parent
    assert Path(agent["module"]) == volume / "teal_taskstore_entry.py"
    assert Path(agent["library"]).is_relative_to(volume / "teal_taskstore")
    assert LIBRARY_VOLUME in volume.parts
    assert agent["status"] == "Completed"
    assert agent["tool_runs"] == ["book_flight"]
    assert agent["history_messages"] == 5
    assert f"init container {LIBRARY_VOLUME}: " in result.stderr
    if password:
        assert password not in result.stderr + result.stdout
        assert "env TA_REDIS_PWD <- secret " in result.stderr
        client = redis.Redis(host="127.0.0.1", port=local_redis.port, password=password)
        assert client.dbsize() > 0
        client.close()
        assert stored_status(local_redis, password, agent["task_id"]) == "Completed"
    else:
        unauthenticated = redis.Redis(host="127.0.0.1", port=local_redis.port)
        assert unauthenticated.dbsize() == 0  # the memory store wrote nowhere else
        unauthenticated.close()


def stored_status(server: RedisServer, password: str, task_id: str) -> str:
    """The task's status as our own library loads it from ``server``."""
    config = AppConfig(
        {"TA_REDIS_HOST": "127.0.0.1", "TA_REDIS_PORT": str(server.port), "TA_REDIS_PWD": password}
    )

    async def load() -> str:
        async with RedisTaskPersistenceManager(app_config=config) as store:
            task = await store.load(task_id)
            assert task is not None, f"{task_id} is not in the redis-server"
            return task.status

    return asyncio.run(load())
