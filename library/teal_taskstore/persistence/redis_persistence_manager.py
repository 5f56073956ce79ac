"""``RedisTaskPersistenceManager``: tasks in Redis, one network round trip per operation.

Key layout, version 1 (``<prefix>`` is ``TA_REDIS_KEY_PREFIX``, empty by default)::

    <prefix>taskstore:v1:task:<task_id>           STRING "<version>:<writer>:<task JSON>"
        version  1 on create, +1 on every update (optimistic concurrency)
        writer   hex token of the last write, so a retried write recognises itself
    <prefix>taskstore:v1:task-requests:<task_id>  SET of the request ids the task contains
    <prefix>taskstore:v1:request:<request_id>     STRING, id of the task holding the request id
    <prefix>taskstore:v1:deleted:<task_id>        STRING, token of the delete that removed the
                                                  task; lives 60 s so a retried delete knows it

A task, its request-id set and its index entries are written together by one Lua script and
share one expiry (``TA_REDIS_TTL``), refreshed by every write. ``load`` is a single ``GET``,
the cheapest read Redis has; ``load_by_request_id`` checks that the indexed task still
contains the request id and removes the entry when it does not. Request ids belong to one
task in the framework; should two tasks share one, the index names the one written last.
Nothing is ever scanned with ``KEYS``.

The scripts derive index keys from request ids, so they run on a standalone Redis (or a
primary with replicas), not on Redis Cluster.
"""

import asyncio
import hashlib
import itertools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection

from teal_taskstore.config import AppConfig, parse_bool, parse_int, parse_seconds
from teal_taskstore.errors import (
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceError,
    PersistenceLoadError,
    PersistenceUpdateError,
)
from teal_taskstore.models import AgentTask
from teal_taskstore.persistence.deadlines import OperationDeadlines
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager

logger = logging.getLogger(__name__)

KEY_LAYOUT_VERSION = "v1"
_validate_task_json = AgentTask.__pydantic_validator__.validate_json
DELETE_TOMBSTONE_SECONDS = 60

T = TypeVar("T")

# Shared by the write scripts. In each of them ARGV[1] is the index key prefix and
# ARGV[2] the task id.
_LUA_HELPERS = """
local function set_with_expiry(key, value, ttl)
  if ttl > 0 then redis.call('SET', key, value, 'EX', ttl) else redis.call('SET', key, value) end
end

-- Request ids arrive packed as "<byte length>:<id>" one after another (binary safe).
local function unpack_ids(packed)
  local ids, position = {}, 1
  while position <= #packed do
    local colon = string.find(packed, ':', position, true)
    local length = tonumber(string.sub(packed, position, colon - 1))
    ids[#ids + 1] = string.sub(packed, colon + 1, colon + length)
    position = colon + length + 1
  end
  return ids
end

-- The header of a stored task: version (0 if unreadable) and writer token.
local function header(stored)
  local version, writer = string.match(stored, '^(%d+):(%x*):')
  return tonumber(version) or 0, writer
end

-- Drops the index entries of the task's request ids that are not in keep (those that
-- still name this task), and the task's request-id set.
local function unindex(requests_key, keep)
  for _, request_id in ipairs(redis.call('SMEMBERS', requests_key)) do
    if not keep[request_id] and redis.call('GET', ARGV[1] .. request_id) == ARGV[2] then
      redis.call('DEL', ARGV[1] .. request_id)
    end
  end
  redis.call('DEL', requests_key)
end

-- Writes the task, its request-id set and its index entries, all with one expiry.
local function write_task(task_key, requests_key, value, ttl, ids)
  set_with_expiry(task_key, value, ttl)
  for first = 1, #ids, 1000 do  -- unpack() is bounded by Lua's stack
    redis.call('SADD', requests_key, unpack(ids, first, math.min(first + 999, #ids)))
  end
  if ttl > 0 and #ids > 0 then redis.call('EXPIRE', requests_key, ttl) end
  for _, request_id in ipairs(ids) do
    set_with_expiry(ARGV[1] .. request_id, ARGV[2], ttl)
  end
end
"""

# KEYS[1]: task, KEYS[2]: the task's request-id set.
# ARGV[1]: index key prefix, ARGV[2]: task id, ARGV[3]: task JSON, ARGV[4]: ttl seconds
# (0: none), ARGV[5]: write token, ARGV[6]: packed request ids.
# Returns 1 when created or when this token already created it; 0 if the id exists.
_CREATE = (
    _LUA_HELPERS
    + """
local stored = redis.call('GET', KEYS[1])
if stored then
  local _, writer = header(stored)
  if writer == ARGV[5] then return 1 end
  return 0
end
write_task(KEYS[1], KEYS[2], '1:' .. ARGV[5] .. ':' .. ARGV[3], tonumber(ARGV[4]),
  unpack_ids(ARGV[6]))
return 1
"""
)

# KEYS and ARGV[1..6] as for create; ARGV[7]: the version the caller saw ('' to replace
# whatever is stored).
# Returns the new version (the stored one if this token already wrote it); 0 if the task is
# absent; -1 - the stored version on a conflict.
_UPDATE = (
    _LUA_HELPERS
    + """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local version, writer = header(stored)
if writer == ARGV[5] then return version end
if ARGV[7] ~= '' and tonumber(ARGV[7]) ~= version then return -1 - version end
local ids, keep = unpack_ids(ARGV[6]), {}
for _, request_id in ipairs(ids) do keep[request_id] = true end
unindex(KEYS[2], keep)
write_task(KEYS[1], KEYS[2], (version + 1) .. ':' .. ARGV[5] .. ':' .. ARGV[3],
  tonumber(ARGV[4]), ids)
return version + 1
"""
)

# KEYS[1]: task, KEYS[2]: the task's request-id set, KEYS[3]: delete tombstone.
# ARGV[1]: index key prefix, ARGV[2]: task id, ARGV[3]: write token, ARGV[4]: tombstone seconds.
# Returns 1 when deleted or when this token already deleted it; 0 if the task is absent.
_DELETE = (
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[3]) == ARGV[3] then return 1 end
  return 0
end
unindex(KEYS[2], {})
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], ARGV[3], 'EX', tonumber(ARGV[4]))
return 1
"""
)

# KEYS[1]: the request id's index entry.
# ARGV[1]: task key prefix, ARGV[2]: task request-id set prefix, ARGV[3]: request id.
# Returns the stored task the entry names if that task contains the request id, else nil,
# and then removes the entry.
_LOAD_BY_REQUEST = """
local task_id = redis.call('GET', KEYS[1])
if not task_id then return nil end
if redis.call('SISMEMBER', ARGV[2] .. task_id, ARGV[3]) == 1 then
  local stored = redis.call('GET', ARGV[1] .. task_id)
  if stored then return stored end
end
redis.call('DEL', KEYS[1])
return nil
"""


@dataclass(frozen=True)
class LuaScript:
    """A script's source and SHA-1, to run it with ``EVALSHA`` (loaded once per server)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324


CREATE_SCRIPT = LuaScript(_CREATE)
UPDATE_SCRIPT = LuaScript(_UPDATE)
DELETE_SCRIPT = LuaScript(_DELETE)
LOAD_BY_REQUEST_SCRIPT = LuaScript(_LOAD_BY_REQUEST)


def pack_ids(ids: Sequence[str]) -> str:
    """Pack ids into one script argument as ``<byte length>:<id>`` each (binary safe)."""
    return "".join(f"{len(i.encode())}:{i}" for i in ids)


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

        return cls(
            host=read("TA_REDIS_HOST", keep, cls.host),
            port=read("TA_REDIS_PORT", port, cls.port),
            db=read("TA_REDIS_DB", at_least(0), cls.db),
            ttl_seconds=read("TA_REDIS_TTL", at_least(0), cls.ttl_seconds),
            ssl=read("TA_REDIS_SSL", parse_bool, cls.ssl),
            ssl_ca_certs=read("TA_REDIS_SSL_CA_CERTS", keep, None),
            username=read("TA_REDIS_USERNAME", keep, None),
            password=read("TA_REDIS_PWD", keep, None),
            key_prefix=read("TA_REDIS_KEY_PREFIX", keep, ""),
            connect_timeout=read("TA_REDIS_CONNECT_TIMEOUT", parse_seconds, cls.connect_timeout),
            command_timeout=read("TA_REDIS_COMMAND_TIMEOUT", parse_seconds, cls.command_timeout),
            retries=read("TA_REDIS_RETRIES", at_least(0), cls.retries),
            max_connections=read("TA_REDIS_MAX_CONNECTIONS", at_least(1), cls.max_connections),
        )

    def connection_pool(self) -> ConnectionPool:
        """The manager's connection pool, at most ``max_connections`` connections.

        Retries inside redis-py are off: the manager retries whole operations itself,
        and only those that are safe to repeat.
        """
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.connect_timeout,
            # The command timeout is enforced per operation by the manager (OperationDeadlines):
            # redis-py's socket_timeout wraps every socket write in a new task, a third of
            # the client's cost per command.
            "decode_responses": True,
        }
        if self.ssl:
            options["ssl_ca_certs"] = self.ssl_ca_certs
        return ConnectionPool(
            connection_class=SSLConnection if self.ssl else Connection,
            max_connections=self.max_connections,
            **options,
        )


@dataclass(frozen=True)
class KeyLayout:
    """Names of the keys of one store (see the module docstring)."""

    prefix: str = ""

    def _name(self, kind: str) -> str:
        return f"{self.prefix}taskstore:{KEY_LAYOUT_VERSION}:{kind}:"

    @property
    def task_prefix(self) -> str:
        return self._name("task")

    @property
    def task_requests_prefix(self) -> str:
        return self._name("task-requests")

    @property
    def request_prefix(self) -> str:
        return self._name("request")

    def task(self, task_id: str) -> str:
        return self.task_prefix + task_id

    def task_requests(self, task_id: str) -> str:
        return self.task_requests_prefix + task_id

    def request(self, request_id: str) -> str:
        return self.request_prefix + request_id

    def delete_tombstone(self, task_id: str) -> str:
        return self._name("deleted") + task_id


class RedisTaskPersistenceManager(TaskPersistenceManager):
    """Stores tasks in Redis with atomic, versioned writes; see the module docstring.

    Every operation is one round trip (a script or a single command). Connection errors
    and timeouts are retried with backoff up to ``TA_REDIS_RETRIES`` times: reads are safe to
    repeat, and every write carries a token that lets a repeated write recognise that its
    first attempt already went through.
    """

    def __init__(
        self,
        app_config: AppConfig | None = None,
        *,
        settings: RedisSettings | None = None,
        client: "Redis | None" = None,
    ) -> None:
        """Build from ``app_config`` (or explicit ``settings``); ``client`` overrides the pool."""
        if settings is None:
            settings = RedisSettings.from_config(app_config or AppConfig())
        self._settings = settings
        self._keys = KeyLayout(settings.key_prefix)
        self._owns_client = client is None
        self._client: Redis = client or Redis(connection_pool=settings.connection_pool())
        # Callers beyond max_connections wait here for a free connection; redis-py's
        # BlockingConnectionPool would do the same at about a quarter of the throughput.
        self._connection_slots = asyncio.Semaphore(settings.max_connections)
        self._deadlines = OperationDeadlines(settings.command_timeout)
        # EVALSHA straight through execute_command: redis-py's script helpers add layers
        # that cost measurable client time per call.
        self._execute: Callable[..., Awaitable[Any]] = self._client.execute_command
        self._token_prefix = secrets.token_hex(8)
        self._write_counter = itertools.count()

    def __repr__(self) -> str:
        s = self._settings
        tls = ", tls" if s.ssl else ""
        return (
            f"RedisTaskPersistenceManager({s.host}:{s.port}/{s.db}{tls}, "
            f"key_prefix={s.key_prefix!r}, ttl={s.ttl_seconds}s)"
        )

    @property
    def settings(self) -> RedisSettings:
        """The settings this manager was built with."""
        return self._settings

    async def create(self, task: AgentTask) -> None:
        subject = f"create task {task.task_id!r}"
        keys, args = self._write_arguments(task, PersistenceCreateError, subject)
        if not await self._run_script(subject, PersistenceCreateError, CREATE_SCRIPT, keys, args):
            raise PersistenceCreateError(f"{subject}: a task with this id already exists")
        self.remember_version(task, 1)

    async def load(self, task_id: str) -> AgentTask | None:
        subject = f"load task {task_id!r}"
        key = self._keys.task(task_id)
        stored = await self._attempt(subject, PersistenceLoadError, lambda: self._client.get(key))
        return None if stored is None else self._parse(subject, stored)

    async def update(self, task: AgentTask) -> None:
        subject = f"update task {task.task_id!r}"
        seen = self.seen_version(task)
        keys, args = self._write_arguments(task, PersistenceUpdateError, subject)
        args.append("" if seen is None else seen)
        version = await self._run_script(subject, PersistenceUpdateError, UPDATE_SCRIPT, keys, args)
        if version == 0:
            raise PersistenceUpdateError(f"{subject}: no such task")
        if version < 0:
            raise PersistenceConflictError(
                f"{subject}: written by someone else since this copy was loaded "
                f"(copy has version {seen}, store has {-1 - version}); load it again"
            )
        self.remember_version(task, version)

    async def delete(self, task_id: str) -> None:
        subject = f"delete task {task_id!r}"
        keys = [
            self._keys.task(task_id),
            self._keys.task_requests(task_id),
            self._keys.delete_tombstone(task_id),
        ]
        args: list[str | int] = [
            self._keys.request_prefix,
            task_id,
            self._next_token(),
            DELETE_TOMBSTONE_SECONDS,
        ]
        if not await self._run_script(subject, PersistenceDeleteError, DELETE_SCRIPT, keys, args):
            raise PersistenceDeleteError(f"{subject}: no such task")

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        subject = f"load task by request id {request_id!r}"
        stored = await self._run_script(
            subject,
            PersistenceLoadError,
            LOAD_BY_REQUEST_SCRIPT,
            [self._keys.request(request_id)],
            [self._keys.task_prefix, self._keys.task_requests_prefix, request_id],
        )
        return None if stored is None else self._parse(subject, stored)

    async def health_check(self) -> bool:
        """``True`` when Redis answers ``PING`` within the command timeout."""
        try:
            return bool(await self._bounded(self._client.ping))
        except (redis_errors.RedisError, TimeoutError) as exc:
            logger.warning("Redis health check failed: %s", exc or type(exc).__name__)
            return False

    async def close(self) -> None:
        """Close the connection pool (not a client passed in by the caller)."""
        self._deadlines.close()
        if self._owns_client:
            await self._client.aclose()

    def _write_arguments(
        self, task: AgentTask, error: type[PersistenceError], subject: str
    ) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV shared by the create and update scripts."""
        keys = [self._keys.task(task.task_id), self._keys.task_requests(task.task_id)]
        args: list[str | int] = [
            self._keys.request_prefix,
            task.task_id,
            self.task_json(task, error, subject),
            self._settings.ttl_seconds,
            self._next_token(),
            pack_ids(task.request_ids()),
        ]
        return keys, args

    def _next_token(self) -> str:
        """A token no other write uses: this manager's random prefix and a counter, in hex."""
        return f"{self._token_prefix}{next(self._write_counter):x}"

    def _parse(self, subject: str, stored: str | bytes) -> AgentTask:
        """A task from its stored ``<version>:<writer>:<JSON>`` form."""
        if isinstance(stored, bytes):  # a client passed in may not decode responses
            stored = stored.decode()
        version, _, rest = stored.partition(":")
        _, _, data = rest.partition(":")
        try:
            # The validator itself: model_validate_json adds a few microseconds per load.
            task: AgentTask = _validate_task_json(data)
            stored_version = int(version)
        except (ValidationError, ValueError) as exc:
            raise PersistenceLoadError(
                f"{subject}: the stored data is not a valid task and was left in place: {exc}"
            ) from exc
        self.remember_version(task, stored_version)
        return task

    async def _run_script(
        self,
        subject: str,
        error: type[PersistenceError],
        script: LuaScript,
        keys: list[str],
        args: list[str | int],
    ) -> Any:
        """Run a script by its SHA; the first call on a server (or after a restart) loads it."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        return await self._attempt(subject, error, lambda: self._execute(*command), script)

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` on a free connection slot, within the command timeout."""
        task = self._deadlines.enter()
        try:
            async with self._connection_slots:
                return await call()
        except asyncio.CancelledError:
            if self._deadlines.leave(task):
                raise TimeoutError(f"no reply within {self._settings.command_timeout} s") from None
            raise
        finally:
            self._deadlines.leave(task)

    async def _attempt(
        self,
        subject: str,
        error: type[PersistenceError],
        call: Callable[[], Awaitable[T]],
        script: LuaScript | None = None,
    ) -> T:
        """Run ``call``, retrying connection errors and timeouts with exponential backoff.

        A ``script`` the server does not know yet is loaded, and the call made again.
        """
        attempt = 0
        while True:
            try:
                return await self._bounded(call)
            except redis_errors.NoScriptError as exc:
                if script is None:
                    raise error(f"{subject}: {exc}") from exc
                await self._attempt(subject, error, lambda: self._client.script_load(script.source))
            except redis_errors.AuthenticationError as exc:
                raise error(f"{subject}: Redis refused the credentials: {exc}") from exc
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, TimeoutError) as exc:
                if attempt >= self._settings.retries:
                    raise error(
                        f"{subject}: Redis at {self._settings.host}:{self._settings.port} "
                        f"unreachable after {attempt + 1} attempts: {exc}"
                    ) from exc
                delay = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                logger.warning("%s: retry %d after %s", subject, attempt, exc or type(exc).__name__)
                await asyncio.sleep(delay)
            except redis_errors.RedisError as exc:
                raise error(f"{subject}: {exc}") from exc
