"""``RedisTaskPersistenceManager``: tasks in Redis, one network round trip per operation.

Key layout, version 1 (``<prefix>`` is ``TA_REDIS_KEY_PREFIX``, empty by default)::

    <prefix>taskstore:v1:task:<task_id>         HASH
        data        the task as JSON
        version     1 on create, +1 on every update (optimistic concurrency)
        writer      random token of the last write, so a retried write recognises itself
        rid:<id>    one field per request id the task contains (value "1")
    <prefix>taskstore:v1:request:<request_id>   SET of the task ids that contain the request id
    <prefix>taskstore:v1:deleted:<task_id>      STRING, token of the delete that removed the task;
                                                lives 60 s, so a retried delete recognises itself

A task and its index sets are written together by one Lua script and share one expiry
(``TA_REDIS_TTL``), refreshed by every write. Index sets may outlive a task (another task
shares the request id, or the task changed); readers check the task's ``rid:`` field and
remove such stale members. Nothing is ever scanned with ``KEYS``.

The scripts derive index keys from the request ids stored in the task hash, so they run
on a standalone Redis (or a primary with replicas), not on Redis Cluster.
"""

import asyncio
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
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
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager

logger = logging.getLogger(__name__)

KEY_LAYOUT_VERSION = "v1"
DELETE_TOMBSTONE_SECONDS = 60

T = TypeVar("T")

# Shared by the write scripts. ARGV[1] is always the index key prefix.
_LUA_HELPERS = """
local function set_expiry(key, ttl)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
end

-- Drops the task's request-id fields and index entries, except those named in keep.
local function unindex(task_key, task_id, keep)
  for _, f in ipairs(redis.call('HKEYS', task_key)) do
    if string.sub(f, 1, 4) == 'rid:' and not keep[string.sub(f, 5)] then
      redis.call('HDEL', task_key, f)
      redis.call('SREM', ARGV[1] .. string.sub(f, 5), task_id)
    end
  end
end

-- Writes the task hash and its index sets, all with one expiry.
-- Request ids are ARGV[first_rid..]. Returns the set of those request ids.
local function write_task(task_key, task_id, data, version, token, ttl, first_rid)
  redis.call('HSET', task_key, 'data', data, 'version', version, 'writer', token)
  set_expiry(task_key, ttl)
  local rids = {}
  for i = first_rid, #ARGV do
    rids[ARGV[i]] = true
    redis.call('HSET', task_key, 'rid:' .. ARGV[i], '1')
    redis.call('SADD', ARGV[1] .. ARGV[i], task_id)
    set_expiry(ARGV[1] .. ARGV[i], ttl)
  end
  return rids
end
"""

# KEYS[1]: task hash.
# ARGV[1]: index key prefix, ARGV[2]: task id, ARGV[3]: task JSON, ARGV[4]: ttl seconds (0: none),
# ARGV[5]: write token, ARGV[6..]: request ids.
# Returns 1 (the new version) when created or when this token already created it;
# 0 if the id exists.
_CREATE_SCRIPT = (
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'writer') == ARGV[5] then return 1 end
  return 0
end
write_task(KEYS[1], ARGV[2], ARGV[3], 1, ARGV[5], tonumber(ARGV[4]), 6)
return 1
"""
)

# KEYS[1]: task hash.
# ARGV[1]: index key prefix, ARGV[2]: task id, ARGV[3]: task JSON, ARGV[4]: ttl seconds (0: none),
# ARGV[5]: write token, ARGV[6]: the version the caller saw ('' to replace whatever is stored),
# ARGV[7..]: request ids.
# Returns {1, new version}; {0, 0} if the task is absent; {-1, stored version} on a conflict.
_UPDATE_SCRIPT = (
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local stored = redis.call('HMGET', KEYS[1], 'version', 'writer')
local version = tonumber(stored[1]) or 0
if stored[2] == ARGV[5] then return {1, version} end
if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= version then return {-1, version} end
local rids = write_task(KEYS[1], ARGV[2], ARGV[3], version + 1, ARGV[5], tonumber(ARGV[4]), 7)
unindex(KEYS[1], ARGV[2], rids)
return {1, version + 1}
"""
)

# KEYS[1]: task hash, KEYS[2]: delete tombstone.
# ARGV[1]: index key prefix, ARGV[2]: task id, ARGV[3]: write token, ARGV[4]: tombstone seconds.
# Returns 1 when deleted, or when this token already deleted it; 0 if the task is absent.
_DELETE_SCRIPT = (
    _LUA_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('GET', KEYS[2]) == ARGV[3] then return 1 end
  return 0
end
unindex(KEYS[1], ARGV[2], {})
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[3], 'EX', tonumber(ARGV[4]))
return 1
"""
)

# KEYS[1]: the request id's index set.
# ARGV[1]: task key prefix, ARGV[2]: request id.
# Returns {task id, task JSON, version} of a task that contains the request id, or nil.
# Removes index members whose task is gone or no longer contains the request id.
_LOAD_BY_REQUEST_SCRIPT = """
local found = nil
for _, task_id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local task_key = ARGV[1] .. task_id
  if redis.call('HEXISTS', task_key, 'rid:' .. ARGV[2]) == 1 then
    if not found then
      local stored = redis.call('HMGET', task_key, 'data', 'version')
      found = {task_id, stored[1], stored[2]}
    end
  else
    redis.call('SREM', KEYS[1], task_id)
  end
end
return found
"""


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

    def connection_pool(self) -> BlockingConnectionPool:
        """A pool that waits for a free connection instead of failing under load.

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
            "socket_timeout": self.command_timeout,
            "decode_responses": True,
        }
        if self.ssl:
            options["ssl_ca_certs"] = self.ssl_ca_certs
        return BlockingConnectionPool(
            connection_class=SSLConnection if self.ssl else Connection,
            max_connections=self.max_connections,
            timeout=self.command_timeout,
            **options,
        )


@dataclass(frozen=True)
class KeyLayout:
    """Names of the keys of one store (see the module docstring)."""

    prefix: str = ""

    @property
    def task_prefix(self) -> str:
        return f"{self.prefix}taskstore:{KEY_LAYOUT_VERSION}:task:"

    @property
    def request_prefix(self) -> str:
        return f"{self.prefix}taskstore:{KEY_LAYOUT_VERSION}:request:"

    def task(self, task_id: str) -> str:
        return self.task_prefix + task_id

    def request(self, request_id: str) -> str:
        return self.request_prefix + request_id

    def delete_tombstone(self, task_id: str) -> str:
        return f"{self.prefix}taskstore:{KEY_LAYOUT_VERSION}:deleted:{task_id}"


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
        self._create_script = self._client.register_script(_CREATE_SCRIPT)
        self._update_script = self._client.register_script(_UPDATE_SCRIPT)
        self._delete_script = self._client.register_script(_DELETE_SCRIPT)
        self._load_by_request_script = self._client.register_script(_LOAD_BY_REQUEST_SCRIPT)

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
        created = await self._run(
            subject,
            PersistenceCreateError,
            self._create_script,
            [self._keys.task(task.task_id)],
            [*self._write_args(task), *task.request_ids()],
        )
        if not created:
            raise PersistenceCreateError(f"{subject}: a task with this id already exists")
        self.remember_version(task, 1)

    async def load(self, task_id: str) -> AgentTask | None:
        subject = f"load task {task_id!r}"
        data, version = await self._attempt(
            subject,
            PersistenceLoadError,
            lambda: self._client.hmget(self._keys.task(task_id), ["data", "version"]),
        )
        return None if data is None else self._parse(subject, data, version)

    async def update(self, task: AgentTask) -> None:
        subject = f"update task {task.task_id!r}"
        seen = self.seen_version(task)
        status, version = await self._run(
            subject,
            PersistenceUpdateError,
            self._update_script,
            [self._keys.task(task.task_id)],
            [*self._write_args(task), "" if seen is None else seen, *task.request_ids()],
        )
        if status == 0:
            raise PersistenceUpdateError(f"{subject}: no such task")
        if status < 0:
            raise PersistenceConflictError(
                f"{subject}: written by someone else since this copy was loaded "
                f"(copy has version {seen}, store has {version}); load it again"
            )
        self.remember_version(task, int(version))

    async def delete(self, task_id: str) -> None:
        subject = f"delete task {task_id!r}"
        deleted = await self._run(
            subject,
            PersistenceDeleteError,
            self._delete_script,
            [self._keys.task(task_id), self._keys.delete_tombstone(task_id)],
            [
                self._keys.request_prefix,
                task_id,
                secrets.token_hex(8),
                DELETE_TOMBSTONE_SECONDS,
            ],
        )
        if not deleted:
            raise PersistenceDeleteError(f"{subject}: no such task")

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        subject = f"load task by request id {request_id!r}"
        found = await self._run(
            subject,
            PersistenceLoadError,
            self._load_by_request_script,
            [self._keys.request(request_id)],
            [self._keys.task_prefix, request_id],
        )
        if found is None:
            return None
        task_id, data, version = found
        if isinstance(task_id, bytes):  # a client passed in may not decode responses
            task_id = task_id.decode()
        return self._parse(f"{subject} (task {task_id!r})", data, version)

    async def health_check(self) -> bool:
        """``True`` when Redis answers ``PING`` within the command timeout."""
        try:
            return bool(await self._client.ping())
        except redis_errors.RedisError as exc:
            logger.warning("Redis health check failed: %s", exc)
            return False

    async def close(self) -> None:
        """Close the connection pool (not a client passed in by the caller)."""
        if self._owns_client:
            await self._client.aclose()

    def _write_args(self, task: AgentTask) -> list[str | int]:
        return [
            self._keys.request_prefix,
            task.task_id,
            task.model_dump_json(),
            self._settings.ttl_seconds,
            secrets.token_hex(8),
        ]

    def _parse(self, subject: str, data: str | bytes, version: str | bytes | None) -> AgentTask:
        try:
            task = AgentTask.model_validate_json(data)
            stored_version = int(version) if version is not None else 0
        except (ValidationError, ValueError) as exc:
            raise PersistenceLoadError(
                f"{subject}: the stored data is not a valid task and was left in place: {exc}"
            ) from exc
        self.remember_version(task, stored_version)
        return task

    async def _run(
        self,
        subject: str,
        error: type[PersistenceError],
        script: Any,
        keys: list[str],
        args: list[str | int],
    ) -> Any:
        return await self._attempt(subject, error, lambda: script(keys=keys, args=args))

    async def _attempt(
        self, subject: str, error: type[PersistenceError], call: Callable[[], Awaitable[T]]
    ) -> T:
        """Run ``call``, retrying connection errors and timeouts with exponential backoff."""
        attempt = 0
        while True:
            try:
                return await call()
            except redis_errors.AuthenticationError as exc:
                raise error(f"{subject}: Redis refused the credentials: {exc}") from exc
            except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
                if attempt >= self._settings.retries:
                    raise error(
                        f"{subject}: Redis at {self._settings.host}:{self._settings.port} "
                        f"unreachable after {attempt + 1} attempts: {exc}"
                    ) from exc
                delay = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                logger.warning("%s: retry %d after %s", subject, attempt, exc)
                await asyncio.sleep(delay)
            except redis_errors.RedisError as exc:
                raise error(f"{subject}: {exc}") from exc
