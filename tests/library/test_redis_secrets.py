"""The password and TLS on a real redis-server, whatever the server answers."""

import logging
from collections.abc import Iterator

import pytest

from support.library_backends import make_task, redis_env
from support.redis_server import RedisServer, running_redis_server
from teal_taskstore import PersistenceError, RedisTaskPersistenceManager

PASSWORD = "s3cret-Pa55word-never-shown"


def every_text_of(error: BaseException) -> str:
    """str, repr and args of an exception and of every exception chained to it."""
    parts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "\n".join(parts)


@pytest.fixture(params=["no HELLO", "no HELLO, no AUTH"])
def server_refusing_commands(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """A server that does not know HELLO (Redis < 6, some proxies), and one without AUTH too;
    either echoes the arguments of a command it does not know in its error."""
    renamed = ["HELLO"] if request.param == "no HELLO" else ["HELLO", "AUTH"]
    args = ["--requirepass", PASSWORD]
    for command in renamed:
        args += ["--rename-command", command, ""]
    with running_redis_server(*args) as server:
        yield server


async def test_the_password_appears_nowhere_when_the_server_refuses_hello_or_auth(
    server_refusing_commands: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = {"TA_REDIS_PWD": PASSWORD, "TA_REDIS_RETRIES": "1"}
    shown: list[str] = []
    async with RedisTaskPersistenceManager(
        redis_env(server_refusing_commands, **settings)
    ) as manager:
        healthy = await manager.health_check()
        try:
            await manager.create(make_task())
            assert await manager.load("task-1") is not None
        except PersistenceError as error:
            shown.append(every_text_of(error))
        shown.append(repr(manager))
    # Without HELLO the manager still authenticates (AUTH); without AUTH it cannot.
    assert healthy is (len(shown) == 1)
    shown += [caplog.text, *(repr(record.__dict__) for record in caplog.records)]
    for text in shown:
        assert PASSWORD not in text


async def test_tls_refuses_a_certificate_for_another_host_signed_by_the_trusted_ca() -> None:
    with running_redis_server(tls=True, tls_names="DNS:other.example") as server:
        settings = {
            "TA_REDIS_SSL": "true",
            "TA_REDIS_SSL_CA_CERTS": str(server.ca_certificate),
            "TA_REDIS_RETRIES": "0",
        }
        async with RedisTaskPersistenceManager(redis_env(server, **settings)) as manager:
            with pytest.raises(PersistenceError) as raised:
                await manager.create(make_task())
    assert "certificate" in every_text_of(raised.value).lower()
