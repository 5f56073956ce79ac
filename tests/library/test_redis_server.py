"""Behaviour that only a real redis-server shows: faults, restarts, auth, TLS, round trips."""

import asyncio
import logging
import multiprocessing
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from support.library_backends import create_in_subprocess, flush, make_item, make_task, redis_env
from support.redis_server import RedisServer, free_port, running_redis_server
from support.round_trips import recorded_requests
from teal_taskstore import (
    AppConfig,
    PersistenceError,
    PersistenceFactory,
    RedisTaskPersistenceManager,
)

PASSWORD = "s3cret-Pa55word-never-shown"


def manager_for(port: int, **settings: str) -> RedisTaskPersistenceManager:
    env = {"TA_REDIS_HOST": "127.0.0.1", "TA_REDIS_PORT": str(port), **settings}
    return RedisTaskPersistenceManager(AppConfig(env))


async def run_every_operation(manager: RedisTaskPersistenceManager) -> list[PersistenceError]:
    """Run all five operations, collecting the errors (each must fail with one)."""
    errors: list[PersistenceError] = []
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: manager.create(make_task()),
        lambda: manager.load("task-1"),
        lambda: manager.update(make_task()),
        lambda: manager.delete("task-1"),
        lambda: manager.load_by_request_id("req-1"),
    ]
    for call in calls:
        with pytest.raises(PersistenceError) as raised:
            await asyncio.wait_for(call(), timeout=30)  # a hang fails the test, never blocks it
        errors.append(raised.value)
    return errors


async def test_redis_down_fails_every_operation_within_seconds() -> None:
    started = time.monotonic()
    async with manager_for(free_port(), TA_REDIS_RETRIES="2") as manager:
        errors = await run_every_operation(manager)
        assert await manager.health_check() is False
    assert time.monotonic() - started < 15
    for error, subject in zip(
        errors, ["create", "load", "update", "delete", "load task by request"], strict=True
    ):
        assert subject in str(error)
        assert "unreachable after 3 attempts" in str(error)
        assert error.__cause__ is not None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers, like a hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


async def test_a_server_that_never_answers_times_out_instead_of_hanging(silent_port: int) -> None:
    started = time.monotonic()
    settings = {"TA_REDIS_COMMAND_TIMEOUT": "0.2", "TA_REDIS_RETRIES": "1"}
    async with manager_for(silent_port, **settings) as manager:
        errors = await run_every_operation(manager)
    assert time.monotonic() - started < 15
    assert all("unreachable after 2 attempts" in str(error) for error in errors)


async def test_the_same_manager_works_again_after_a_redis_restart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_redis_server("--appendonly", "yes", "--appendfsync", "always") as server:
        async with manager_for(server.port) as manager:
            await manager.create(make_task())
            server.restart()
            with caplog.at_level(logging.WARNING):
                loaded = await manager.load("task-1")
            assert loaded is not None
            loaded.items.append(make_item("task-1", "req-2"))
            await manager.update(loaded)  # scripts are loaded again on the new server
            found = await manager.load_by_request_id("req-2")
            assert found is not None
    assert "retry 1" in caplog.text


def _texts_of(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        parts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def test_the_password_never_appears_in_errors_logs_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_redis_server("--requirepass", PASSWORD) as server:
        caplog.set_level(logging.DEBUG)
        good = manager_for(server.port, TA_REDIS_PWD=PASSWORD)
        async with good:
            await good.create(make_task())
            assert await good.load("task-1") is not None
        wrong = manager_for(server.port, TA_REDIS_PWD=PASSWORD[::-1])
        async with wrong:
            with pytest.raises(PersistenceError, match="credentials") as raised:
                await wrong.load("task-1")
        missing = manager_for(server.port)
        async with missing:
            with pytest.raises(PersistenceError) as raised_missing:
                await missing.load("task-1")
        config = AppConfig({"TA_REDIS_PWD": PASSWORD, "TA_REDIS_PORT": str(server.port)})
        factory_config = AppConfig(
            {
                "TA_PERSISTENCE_MODULE": "teal_taskstore.persistence.redis_persistence_manager",
                "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
                "TA_REDIS_PWD": PASSWORD,
            }
        )
        built = PersistenceFactory(factory_config).get_persistence_manager()
    shown = [
        _texts_of(raised.value),
        _texts_of(raised_missing.value),
        caplog.text,
        repr(good),
        repr(good.settings),
        str(good.settings),
        repr(config),
        repr(built),
    ]
    for text in shown:
        assert PASSWORD not in text
        assert PASSWORD[::-1] not in text


async def test_acl_username_is_used() -> None:
    acl = ["--user", "agent", "on", f">{PASSWORD}", "~taskstore:*", "+@all"]
    with running_redis_server(*acl, "--requirepass", "other-default-password") as server:
        async with manager_for(
            server.port, TA_REDIS_USERNAME="agent", TA_REDIS_PWD=PASSWORD
        ) as manager:
            await manager.create(make_task())
            assert await manager.load_by_request_id("req-1") is not None
        # Outside the keys the ACL grants, the server refuses, and the error says so.
        async with manager_for(
            server.port, TA_REDIS_USERNAME="agent", TA_REDIS_PWD=PASSWORD, TA_REDIS_KEY_PREFIX="x:"
        ) as manager:
            with pytest.raises(PersistenceError, match="create task 'task-1'"):
                await manager.create(make_task())


async def test_tls_connects_with_the_ca_and_plain_text_fails() -> None:
    with running_redis_server(tls=True) as server:
        tls = {"TA_REDIS_SSL": "TRUE", "TA_REDIS_SSL_CA_CERTS": str(server.ca_certificate)}
        async with manager_for(server.port, **tls) as manager:
            await manager.create(make_task())
            assert await manager.load("task-1") is not None
            assert "tls" in repr(manager)
        plain = {"TA_REDIS_SSL": "no", "TA_REDIS_RETRIES": "0", "TA_REDIS_COMMAND_TIMEOUT": "1"}
        async with manager_for(server.port, **plain) as manager:
            with pytest.raises(PersistenceError):
                await manager.load("task-1")


@pytest.fixture
def sent_requests() -> Iterator[list[bytes]]:
    """Every request written to Redis during the test: one entry is one round trip."""
    with recorded_requests() as requests:
        yield requests


async def test_each_operation_is_one_network_round_trip(
    redis_server: RedisServer, sent_requests: list[bytes]
) -> None:
    flush(redis_server)
    async with RedisTaskPersistenceManager(redis_env(redis_server)) as manager:
        # Warm up: the first call of each script loads it into the server once.
        warm = make_task("warm", ("warm-req",))
        await manager.create(warm)
        await manager.update(warm)
        await manager.load_by_request_id("warm-req")
        await manager.delete("warm")

        task = make_task()
        trips: dict[str, int] = {}
        calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("create", lambda: manager.create(task)),
            ("load", lambda: manager.load("task-1")),
            ("update", lambda: manager.update(task)),
            ("load_by_request_id", lambda: manager.load_by_request_id("req-1")),
            ("delete", lambda: manager.delete("task-1")),
        ]
        for name, call in calls:
            before = len(sent_requests)
            await call()
            trips[name] = len(sent_requests) - before
    assert trips == {
        "create": 1,
        "load": 1,
        "update": 1,
        "load_by_request_id": 1,
        "delete": 1,
    }
    sent = b"".join(sent_requests).upper()
    assert b"\r\nKEYS\r\n" not in sent
    assert b"\r\nSCAN\r\n" not in sent


def test_concurrent_creates_across_processes_let_exactly_one_win(
    redis_server: RedisServer,
) -> None:
    flush(redis_server)
    start_at = time.time() + 2
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        futures = [
            pool.submit(create_in_subprocess, redis_server.port, start_at, f"process-{n}")
            for n in range(4)
        ]
        results = [future.result(timeout=60) for future in futures]
    assert results.count(True) == 1
