"""``RedisTaskPersistenceManager``: tasks in Redis, one network round trip per operation.

The key layout and the Lua scripts are in ``redis_scripts`` (and ``lua/``); the settings in
``redis_settings``.

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
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from teal_taskstore.config import AppConfig
from teal_taskstore.errors import (
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceError,
    PersistenceLoadError,
    PersistenceUpdateError,
    hide_secret,
)
from teal_taskstore.models import AgentTask
from teal_taskstore.persistence.deadlines import OperationDeadlines
from teal_taskstore.persistence.redis_scripts import KeyLayout, LuaScript, ScriptCall, ScriptCalls
from teal_taskstore.persistence.redis_settings import RedisSettings
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager
from teal_taskstore.persistence.write_tokens import write_tokens

__all__ = ["RedisSettings", "RedisTaskPersistenceManager"]

logger = logging.getLogger(__name__)

_validate_task_json = AgentTask.__pydantic_validator__.validate_json

T = TypeVar("T")


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
        self._calls = ScriptCalls(self._keys, settings.ttl_seconds)
        self._owns_client = client is None
        self._client: Redis = client or Redis(connection_pool=settings.connection_pool())
        # Callers beyond max_connections wait here for a free connection; redis-py's
        # BlockingConnectionPool would do the same at about a quarter of the throughput.
        self._connection_slots = asyncio.Semaphore(settings.max_connections)
        self._deadlines = OperationDeadlines(settings.command_timeout)
        # EVALSHA straight through execute_command: redis-py's script helpers add layers
        # that cost measurable client time per call.
        self._execute: Callable[..., Awaitable[Any]] = self._client.execute_command

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
        call = self._calls.create(
            task.task_id,
            self.task_json(task, PersistenceCreateError, subject),
            task.request_ids(),
            write_tokens.next(),
        )
        if not await self._run_script(subject, PersistenceCreateError, call):
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
        call = self._calls.update(
            task.task_id,
            self.task_json(task, PersistenceUpdateError, subject),
            task.request_ids(),
            write_tokens.next(),
            seen,
        )
        version = await self._run_script(subject, PersistenceUpdateError, call)
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
        call = self._calls.delete(task_id, write_tokens.next())
        if not await self._run_script(subject, PersistenceDeleteError, call):
            raise PersistenceDeleteError(f"{subject}: no such task")

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        subject = f"load task by request id {request_id!r}"
        call = self._calls.load_by_request_id(request_id)
        stored = await self._run_script(subject, PersistenceLoadError, call)
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
        self, subject: str, error: type[PersistenceError], call: ScriptCall
    ) -> Any:
        """Run a script by its SHA; the first call on a server (or after a restart) loads it."""
        command = call.command
        return await self._attempt(subject, error, lambda: self._execute(*command), call.script)

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` on a free connection slot, within the command timeout."""
        task = self._deadlines.enter()
        try:
            async with self._connection_slots:
                return await call()
        except redis_errors.RedisError as exc:
            hide_secret(exc, self._settings.password)
            raise
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
                if "DB index is out of range" in str(exc):  # the server's answer to SELECT
                    raise error(
                        f"{subject}: TA_REDIS_DB={self._settings.db} is not a database of "
                        f"this server: {exc}"
                    ) from exc
                raise error(f"{subject}: {exc}") from exc
