"""The framework tier: our library loaded by the stand-in Teal Agents framework."""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.framework import copy_library, use_standin
from support.library_backends import flush
from support.redis_server import RedisServer

use_standin()


@pytest.fixture(scope="session")
def entry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library and entry file as the init container leaves them in the volume."""
    return copy_library(tmp_path_factory.mktemp("volume"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the tier."""
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def fresh_framework(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new agent process as far as the framework can tell: no factory, no TA_* settings."""
    from sk_agents.persistence.singleton import Singleton

    for name in [name for name in os.environ if name.startswith("TA_")]:
        monkeypatch.delenv(name)
    Singleton.instances.clear()
    yield
    Singleton.instances.clear()
    sys.modules.pop("teal_taskstore_entry", None)
    # The framework's AppConfig writes TA_ENV_STORE entries into os.environ behind
    # monkeypatch's back; drop every TA_* now, monkeypatch then restores what was there.
    for name in [name for name in os.environ if name.startswith("TA_")]:
        del os.environ[name]


@pytest.fixture
def redis_env(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, fresh_framework: None
) -> RedisServer:
    """The TA_REDIS_* settings of a flushed real server, in the environment."""
    flush(redis_server)
    monkeypatch.setenv("TA_REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("TA_REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("TA_REDIS_SSL", "false")
    return redis_server
