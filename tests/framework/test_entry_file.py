"""The entry file in a fresh agent process: which library copy it uses, and clear errors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.framework import copy_library
from support.redis_server import RedisServer
from teal_taskstore.framework import IN_MEMORY_CLASS, REDIS_CLASS

AGENT = Path(__file__).resolve().parents[1] / "support" / "framework_agent.py"


def run_agent(entry: Path, *flags: str, **env: str) -> tuple[int, dict[str, Any]]:
    """A new Python process loading its store from ``entry``; its exit status and report."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TA_")}
    clean.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, str(AGENT), *flags],
        env={
            **clean,
            "PYTHONDONTWRITEBYTECODE": "1",
            "TA_PERSISTENCE_MODULE": str(entry),
            "TA_PERSISTENCE_CLASS": IN_MEMORY_CLASS,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout.splitlines()[-1])


def test_an_image_without_teal_taskstore_uses_the_copy_in_the_volume(entry_file: Path) -> None:
    status, report = run_agent(entry_file, "--without-installed-library")
    assert (status, report["store"], report["round_trip"]) == (0, IN_MEMORY_CLASS, True)
    assert Path(report["library"]).is_relative_to(entry_file.parent)


def test_the_redis_store_runs_in_a_fresh_agent_process(
    entry_file: Path, redis_server: RedisServer
) -> None:
    status, report = run_agent(
        entry_file,
        "--without-installed-library",
        TA_PERSISTENCE_CLASS=REDIS_CLASS,
        TA_REDIS_HOST="127.0.0.1",
        TA_REDIS_PORT=str(redis_server.port),
    )
    assert (status, report["store"], report["round_trip"]) == (0, REDIS_CLASS, True)


def test_with_teal_taskstore_installed_too_the_copy_in_the_volume_wins(entry_file: Path) -> None:
    status, report = run_agent(entry_file)
    assert status == 0
    assert Path(report["library"]).is_relative_to(entry_file.parent)


def test_a_process_that_already_imported_teal_taskstore_keeps_that_copy(
    entry_file: Path,
) -> None:
    status, report = run_agent(entry_file, "--import-library-first")
    assert status == 0
    assert not Path(report["library"]).is_relative_to(entry_file.parent)


def test_without_the_framework_the_error_names_sk_agents(entry_file: Path) -> None:
    status, report = run_agent(entry_file, "--without-framework")
    assert (status, report["error"]) == (2, "ImportError")
    assert "'sk_agents'" in report["message"]
    assert "Teal Agents" in report["message"]


def test_without_teal_taskstore_anywhere_the_error_names_it(tmp_path: Path) -> None:
    entry = copy_library(tmp_path)
    shutil.rmtree(tmp_path / "teal_taskstore")
    status, report = run_agent(entry, "--without-installed-library")
    assert (status, report["error"]) == (2, "ImportError")
    assert "teal-taskstore" in report["message"]
    assert str(tmp_path) in report["message"]


def test_the_framework_refuses_a_dotted_module_path(entry_file: Path) -> None:
    # What our operator injected before the entry file: the framework loads files only.
    status, report = run_agent(
        entry_file, TA_PERSISTENCE_MODULE="teal_taskstore.persistence.redis_persistence_manager"
    )
    assert (status, report["error"]) == (2, "ImportError")


def test_a_missing_dependency_of_the_library_is_named(entry_file: Path) -> None:
    status, report = run_agent(entry_file, "--without-framework", "--without-package", "pydantic")
    assert (status, report["error"]) == (2, "ImportError")
    assert "teal-taskstore needs the package 'pydantic'" in report["message"]
