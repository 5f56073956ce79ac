"""The main job for now: ``python -m teal_taskstore demo`` against each backend."""

import os
import subprocess
import sys

from support.redis_server import RedisServer, free_port

REDIS_BACKEND = {
    "TA_PERSISTENCE_MODULE": "teal_taskstore.persistence.redis_persistence_manager",
    "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
    "TA_REDIS_HOST": "127.0.0.1",
}
STEPS = ["create:", "load:", "update:", "load_by_request_id:", "delete:"]


def run_demo(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TA_")}
    return subprocess.run(
        [sys.executable, "-m", "teal_taskstore", "demo"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_runs_the_usage_flow_in_memory() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stderr
    assert "InMemoryPersistenceManager" in result.stdout
    for step in STEPS:
        assert step in result.stdout
    assert "refused, as it should be" in result.stdout


def test_demo_runs_the_usage_flow_on_redis(redis_server: RedisServer) -> None:
    result = run_demo(**REDIS_BACKEND, TA_REDIS_PORT=str(redis_server.port))
    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{redis_server.port}" in result.stdout
    for step in STEPS:
        assert step in result.stdout
    assert "refused, as it should be" in result.stdout


def test_demo_reports_an_unreachable_redis_and_fails() -> None:
    result = run_demo(**REDIS_BACKEND, TA_REDIS_PORT=str(free_port()), TA_REDIS_RETRIES="0")
    assert result.returncode == 1
    assert "demo failed: PersistenceCreateError: create task" in result.stderr
    assert "unreachable" in result.stderr
