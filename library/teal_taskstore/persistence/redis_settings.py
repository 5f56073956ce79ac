"""``RedisSettings``: the Redis backend's settings, read from the ``TA_REDIS_*`` variables."""

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio.connection import Connection, SSLConnection

from teal_taskstore.config import AppConfig, parse_bool, parse_int, parse_seconds
from teal_taskstore.errors import ConfigurationError

MAX_INT32 = 2**31 - 1
MODES = ("standalone", "sentinel", "cluster")
DEFAULT_SENTINEL_MASTER = "mymaster"

logger = logging.getLogger(__name__)

Address = tuple[str, int]


def parse_address(name: str, value: str) -> Address:
    """``host:port`` (``[v6]:port`` too); a bad entry names the variable and the entry."""
    host, colon, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigurationError(
            f"{name} must be a comma-separated list of host:port (port 1..65535), "
            f"got the entry {value.strip()!r}"
        )
    return host, int(port)


def parse_addresses(name: str, value: str) -> tuple[Address, ...]:
    """A comma-separated, non-empty list of ``host:port``."""
    entries = [entry for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ConfigurationError(f"{name} must list at least one host:port, got {value!r}")
    return tuple(parse_address(name, entry) for entry in entries)


def parse_mode(name: str, value: str) -> str:
    """One of ``MODES``."""
    mode = value.strip().lower()
    if mode not in MODES:
        raise ConfigurationError(f"{name} must be one of {'/'.join(MODES)}, got {value!r}")
    return mode


@dataclass(frozen=True)
class RedisSettings:
    """Connection and storage settings, read from ``TA_REDIS_*`` variables."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    ttl_seconds: int = 3600
    ssl: bool = False
    ssl_ca_certs: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    key_prefix: str = ""
    connect_timeout: float = 2.0
    command_timeout: float = 5.0
    retries: int = 2
    max_connections: int = 64
    mode: str = "standalone"
    sentinels: tuple[Address, ...] = ()
    sentinel_master: str = DEFAULT_SENTINEL_MASTER
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    wait_replicas: int = 0

    @classmethod
    def from_config(cls, config: AppConfig) -> "RedisSettings":
        """Parse the variables; a bad value raises ``ConfigurationError`` naming its variable."""

        def read(name: str, parse: Callable[[str, str], Any], default: Any) -> Any:
            value = config.get(name)
            return default if value is None else parse(name, value)

        def keep(_name: str, value: str) -> str:
            return value

        def port(name: str, value: str) -> int:
            return parse_int(name, value, minimum=1, maximum=65535)

        def at_least(minimum: int) -> Callable[[str, str], int]:
            return lambda name, value: parse_int(name, value, minimum=minimum)

        def up_to_int32(name: str, value: str) -> int:
            # Redis takes database numbers and expiries as C ints / bounded milliseconds.
            return parse_int(name, value, minimum=0, maximum=MAX_INT32)

        def existing_file(name: str, value: str) -> str:
            if not Path(value).expanduser().is_file():
                raise ConfigurationError(f"{name} must name an existing file, got {value!r}")
            return value

        mode = read("TA_REDIS_MODE", parse_mode, cls.mode)
        sentinels = read("TA_REDIS_SENTINELS", parse_addresses, ())
        if mode == "sentinel":
            if not sentinels:
                raise ConfigurationError(
                    "TA_REDIS_SENTINELS must list the sentinels (host:port,host:port) "
                    "when TA_REDIS_MODE=sentinel"
                )
            ignored = [n for n in ("TA_REDIS_HOST", "TA_REDIS_PORT") if config.get(n)]
            if ignored:
                # Not an error: a chart may set them for every mode. But say so.
                logger.warning(
                    "%s ignored with TA_REDIS_MODE=sentinel: the master is the one "
                    "TA_REDIS_SENTINELS name",
                    " and ".join(ignored),
                )
        db = read("TA_REDIS_DB", up_to_int32, cls.db)
        if mode == "cluster" and db != 0:
            raise ConfigurationError(
                f"TA_REDIS_DB must be 0 with TA_REDIS_MODE=cluster (Redis Cluster has only "
                f"database 0), got {config.get('TA_REDIS_DB')!r}"
            )
        return cls(
            mode=mode,
            sentinels=sentinels,
            sentinel_master=read("TA_REDIS_SENTINEL_MASTER", keep, cls.sentinel_master),
            sentinel_username=read("TA_REDIS_SENTINEL_USERNAME", keep, None),
            sentinel_password=read("TA_REDIS_SENTINEL_PWD", keep, None),
            wait_replicas=read("TA_REDIS_WAIT_REPLICAS", at_least(0), cls.wait_replicas),
            host=read("TA_REDIS_HOST", keep, cls.host),
            port=read("TA_REDIS_PORT", port, cls.port),
            db=db,
            ttl_seconds=read("TA_REDIS_TTL", up_to_int32, cls.ttl_seconds),
            ssl=read("TA_REDIS_SSL", parse_bool, cls.ssl),
            ssl_ca_certs=read("TA_REDIS_SSL_CA_CERTS", existing_file, None),
            username=read("TA_REDIS_USERNAME", keep, None),
            password=read("TA_REDIS_PWD", keep, None),
            key_prefix=read("TA_REDIS_KEY_PREFIX", keep, ""),
            connect_timeout=read("TA_REDIS_CONNECT_TIMEOUT", parse_seconds, cls.connect_timeout),
            command_timeout=read("TA_REDIS_COMMAND_TIMEOUT", parse_seconds, cls.command_timeout),
            retries=read("TA_REDIS_RETRIES", at_least(0), cls.retries),
            max_connections=read("TA_REDIS_MAX_CONNECTIONS", at_least(1), cls.max_connections),
        )

    @property
    def retry_window_seconds(self) -> int:
        """How long after a write's first attempt its last retry may still run, with margin.

        Each attempt ends within 1.25 x the command timeout and waits at most 1 s before the
        next; a write keeps its receipt this long.
        """
        return math.ceil((self.retries + 1) * (1.25 * self.command_timeout + 1.0)) + 5

    @property
    def operation_bound_seconds(self) -> float:
        """The longest an operation takes before it returns or raises, failovers included.

        Each attempt (finding the master included) ends within 1.25 x the command timeout;
        the backoff before retry ``n`` (from 0) is at most ``min(1, 0.05 x 2**n)`` seconds.
        """
        backoff = sum(min(1.0, 0.05 * 2.0**n) for n in range(self.retries))
        return (self.retries + 1) * 1.25 * self.command_timeout + backoff

    @property
    def wait_timeout_ms(self) -> int:
        """How long a write's ``WAIT`` waits for its replicas: half the command timeout."""
        return max(1, int(self.command_timeout * 500))

    def connection(self, address: Address | None = None) -> Connection:
        """A new, not yet connected, connection to ``address`` (default: the configured server).

        No retries inside redis-py (the default of a bare connection): the manager retries
        whole operations itself, and only those that are safe to repeat.
        """
        host, port = address or (self.host, self.port)
        return self._connection(
            host=host,
            port=port,
            db=self.db,
            username=self.username,
            password=self.password,
            # The command timeout is enforced per operation by the manager (OperationDeadlines).
            # None, not left out: redis-py 8 defaults to 5 s, which would cut every reply wait
            # short of a longer TA_REDIS_COMMAND_TIMEOUT, and its socket_timeout wraps every
            # socket write in a new task, a third of the client's cost per command.
            socket_timeout=None,
        )

    def sentinel_connection(self, address: Address) -> Connection:
        """A new connection to one sentinel, with the sentinels' own credentials.

        Never the data password: sentinels have their own (``TA_REDIS_SENTINEL_PWD``). A
        sentinel answers at once, so a reply is awaited no longer than a connect.
        """
        host, port = address
        return self._connection(
            host=host,
            port=port,
            db=0,
            username=self.sentinel_username,
            password=self.sentinel_password,
            socket_timeout=self.connect_timeout,
        )

    def _connection(self, **options: Any) -> Connection:
        options.update(
            socket_connect_timeout=self.connect_timeout,
            # Bytes: tasks are parsed from bytes, and stored data that is not UTF-8 is then
            # a load error of ours, not a UnicodeDecodeError inside redis-py.
            decode_responses=False,
            # RESP2, whose handshake is AUTH: redis-py 8 defaults to RESP3 and sends the
            # password in HELLO, which a server without HELLO (Redis < 6, some proxies)
            # echoes back in its error. Nothing here needs RESP3.
            protocol=2,
        )
        if not self.ssl:
            return Connection(**options)
        return SSLConnection(
            **options,
            ssl_ca_certs=self.ssl_ca_certs,
            # Explicit: redis-py before 6 leaves hostname verification off by default.
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
        )
