"""``RedisTaskPersistenceManager``: tasks in Redis, one network round trip per operation.

The key layout and the Lua scripts are in ``redis_scripts`` (and ``lua/``); the settings in
``redis_settings``.

A task, its request-id set and its index entries are written together by one Lua script and
share one expiry (``TA_REDIS_TTL``), refreshed by every write. ``load`` is a single ``GET``,
the cheapest read Redis has; ``load_by_request_id`` returns the indexed task only if it
contains the request id (an entry whose task's request-id set lacks it is removed). Request
ids belong to one task in the framework; should two tasks share one, the index names the one
that wrote it last. Nothing is ever scanned with ``KEYS``.

With ``TA_REDIS_MODE=sentinel`` the master is found through Redis Sentinel and followed
across failovers (``redis_sentinel_master``). With ``TA_REDIS_MODE=cluster`` the keys follow
layout v2 (``redis_cluster_scripts``: a task's keys share a hash tag, index entries are
written apart, before the task, and stale ones removed after) and commands are routed to
each slot's master by the manager's own routing (``redis_cluster_routing``).
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from teal_taskstore.config import AppConfig
from teal_taskstore.errors import (
    ConfigurationError,
    CreateNotReplicatedError,
    DeleteNotReplicatedError,
    PersistenceConflictError,
    PersistenceCreateError,
    PersistenceDeleteError,
    PersistenceError,
    PersistenceLoadError,
    PersistenceNotReplicatedError,
    PersistenceUpdateError,
    UpdateNotReplicatedError,
    hide_secret,
)
from teal_taskstore.models import AgentTask
from teal_taskstore.persistence.deadlines import OperationDeadlines
from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes, routes_of
from teal_taskstore.persistence.redis_cluster_scripts import (
    ClusterCalls,
    ClusterKeyLayout,
    ClusterRead,
    ClusterWrite,
)
from teal_taskstore.persistence.redis_cluster_stale_entries import StaleEntryRemovals
from teal_taskstore.persistence.redis_connections import (
    ConnectionsPerLoop,
    LoopConnections,
    ReplicationShortfall,
)
from teal_taskstore.persistence.redis_scripts import KeyLayout, LuaScript, ScriptCall, ScriptCalls
from teal_taskstore.persistence.redis_sentinel_master import SentinelMaster
from teal_taskstore.persistence.redis_settings import Address, RedisSettings
from teal_taskstore.persistence.task_persistence_manager import TaskPersistenceManager
from teal_taskstore.persistence.write_tokens import write_tokens

__all__ = ["RedisSettings", "RedisTaskPersistenceManager"]

logger = logging.getLogger(__name__)

_validate_task_json = AgentTask.__pydantic_validator__.validate_json

T = TypeVar("T")

_NOT_REPLICATED: dict[type[PersistenceError], type[PersistenceNotReplicatedError]] = {
    PersistenceCreateError: CreateNotReplicatedError,
    PersistenceUpdateError: UpdateNotReplicatedError,
    PersistenceDeleteError: DeleteNotReplicatedError,
}


class RedisTaskPersistenceManager(TaskPersistenceManager):
    """Stores tasks in Redis with atomic, versioned writes; see the module docstring.

    Every operation is one round trip (a script or a single command); in cluster mode a write
    or ``load_by_request_id`` takes 2 (docs/library.md has the table). Connection errors
    and timeouts are retried with backoff up to ``TA_REDIS_RETRIES`` times: reads are safe to
    repeat, and every write carries a token under which the script keeps a receipt, so a
    repeated write whose first attempt went through returns what that attempt did.
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
        cluster = settings.mode == "cluster"
        if cluster and client is not None:
            raise ConfigurationError(
                "a client passed in cannot be used with TA_REDIS_MODE=cluster (the manager "
                "routes commands to the cluster's nodes itself)"
            )
        self._settings = settings
        self._keys = KeyLayout(settings.key_prefix)
        self._cluster_keys = ClusterKeyLayout(settings.key_prefix) if cluster else None
        self._stale_entries = StaleEntryRemovals(self._bounded) if cluster else None
        self._calls: ScriptCalls | ClusterCalls = (
            ClusterCalls(
                self._cluster_keys,
                settings.ttl_seconds,
                settings.retry_window_seconds,
                self._stale_entries,
            )
            if self._cluster_keys is not None and self._stale_entries is not None
            else ScriptCalls(self._keys, settings.ttl_seconds, settings.retry_window_seconds)
        )
        self._master = SentinelMaster(settings) if settings.mode == "sentinel" else None
        self._connections = ConnectionsPerLoop(
            settings.max_connections,
            connect=None if client is not None else self._new_connection,
            client=client,
            address=None if self._master is None else self._master_address,
            hold=None if self._master is None else self._master.held_writes,
            wait=(settings.wait_replicas, settings.wait_timeout_ms),
            cluster=self._cluster_routes if cluster else None,
        )
        self._deadlines = OperationDeadlines(settings.command_timeout)

    def __repr__(self) -> str:
        s = self._settings
        tls = ", tls" if s.ssl else ""
        where = f"{s.host}:{s.port}" if self._master is None else self._master.describe()
        if self._cluster_keys is not None:
            where = f"cluster seed {where}"
        return (
            f"RedisTaskPersistenceManager({where}/{s.db}{tls}, "
            f"key_prefix={s.key_prefix!r}, ttl={s.ttl_seconds}s)"
        )

    @property
    def settings(self) -> RedisSettings:
        """The settings this manager was built with."""
        return self._settings

    @property
    def server(self) -> Address | None:
        """Where operations go now: the master last found in sentinel mode (None before)."""
        if self._master is None:
            return (self._settings.host, self._settings.port)
        return self._master.address

    async def create(self, task: AgentTask) -> None:
        subject = f"create task {task.task_id!r}"
        task_json = self.task_json(task, PersistenceCreateError, subject)
        created = await self._run_script(
            subject,
            PersistenceCreateError,
            lambda: self._calls.create(
                task.task_id, task_json, task.request_ids(), write_tokens.next()
            ),
        )
        if not created:
            raise PersistenceCreateError(f"{subject}: a task with this id already exists")
        self.remember_version(task, 1)

    async def load(self, task_id: str) -> AgentTask | None:
        subject = f"load task {task_id!r}"
        if self._cluster_keys is not None:
            key = self._cluster_keys.task(task_id)
            stored = await self._attempt(
                subject, PersistenceLoadError, lambda c: routes_of(c).execute(key, "GET", key)
            )
        else:
            key = self._keys.task(task_id)
            stored = await self._attempt(
                subject, PersistenceLoadError, lambda c: c.execute("GET", key)
            )
        return None if stored is None else self._parse(subject, stored)

    async def update(self, task: AgentTask) -> None:
        subject = f"update task {task.task_id!r}"
        seen = self.seen_version(task)
        task_json = self.task_json(task, PersistenceUpdateError, subject)
        version = await self._run_script(
            subject,
            PersistenceUpdateError,
            lambda: self._calls.update(
                task.task_id, task_json, task.request_ids(), write_tokens.next(), seen
            ),
        )
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
        deleted = await self._run_script(
            subject,
            PersistenceDeleteError,
            lambda: self._calls.delete(task_id, write_tokens.next()),
        )
        if not deleted:
            raise PersistenceDeleteError(f"{subject}: no such task")

    async def load_by_request_id(self, request_id: str) -> AgentTask | None:
        subject = f"load task by request id {request_id!r}"
        stored = await self._run_script(
            subject, PersistenceLoadError, lambda: self._calls.load_by_request_id(request_id)
        )
        if stored is None:
            return None
        task = self._parse(subject, stored)
        # The script checked the task's request-id set; under an eviction policy that set
        # may be a dead task's, inherited by a new one of the same id. The items decide.
        for item in task.items:
            if item.request_id == request_id:
                return task
        return None

    async def health_check(self) -> bool:
        """``True`` when Redis answers ``PING`` within the command timeout."""
        try:
            if self._cluster_keys is not None:
                # The master of the slot of the word "health": the cluster serves it.
                ping = self._bounded(lambda c: routes_of(c).execute("health", "PING"))
            else:
                ping = self._bounded(lambda c: c.execute("PING"))
            return bool(await ping)
        except (redis_errors.RedisError, TimeoutError) as exc:
            logger.warning("Redis health check failed: %s", exc or type(exc).__name__)
            return False

    async def close(self) -> None:
        """Close this event loop's connections once its operations in flight have ended.

        Those end within their deadline, as do the stale index entries' removals that
        cluster-mode writes leave running after their answer. A manager used again
        afterwards opens new connections; a client passed in by the caller is left open.
        """
        in_flight = self._deadlines.in_flight(asyncio.get_running_loop())
        if in_flight:
            await asyncio.wait(in_flight)
        if self._stale_entries is not None:  # cluster mode: removals those writes started
            await self._stale_entries.wait()
        await self._connections.close_current()
        if self._master is not None:
            await self._master.close_current()

    def _new_connection(self) -> Connection:
        # In sentinel mode, to the master as last found (an operation finds it first).
        return self._settings.connection(self._master_address())

    def _cluster_routes(self, loop: asyncio.AbstractEventLoop) -> ClusterRoutes:
        settings = self._settings
        max_connections = settings.max_connections

        def node(address: Address) -> LoopConnections:
            return LoopConnections(
                loop,
                max_connections,
                connect=lambda: settings.connection(address),
                wait=(settings.wait_replicas, settings.wait_timeout_ms),
            )

        return ClusterRoutes((settings.host, settings.port), node, settings.command_timeout)

    def _master_address(self) -> Address | None:
        return None if self._master is None else self._master.address

    def _where(self) -> str:
        s = self._settings
        return f"at {s.host}:{s.port}" if self._master is None else self._master.describe()

    def _parse(self, subject: str, stored: bytes | str) -> AgentTask:
        """A task from its stored ``<version>:<writer>:<JSON>`` form (bytes, as Redis has it)."""
        if isinstance(stored, str):  # a client passed in may decode responses
            stored = stored.encode()
        version, _, rest = stored.partition(b":")
        _, _, data = rest.partition(b":")
        try:
            # The validator itself: model_validate_json adds a few microseconds per load.
            # It reads the bytes as UTF-8 itself, so data that is not UTF-8 is a ValidationError.
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
        build: Callable[[], ScriptCall | ClusterWrite | ClusterRead],
    ) -> Any:
        """Run a script by its SHA; the first call on a server (or after a restart) loads it.

        ``build`` makes the call once, so every attempt carries the same write token.
        """
        try:
            call = build()
        except UnicodeEncodeError as exc:
            raise error(f"{subject}: an id is not valid text (UTF-8): {exc}") from exc
        return await self._attempt(subject, error, call.run, call.script)

    async def _bounded(self, call: Callable[[LoopConnections], Awaitable[T]]) -> T:
        """Run ``call`` on a free connection slot of this loop, within the command timeout."""
        connections: LoopConnections = self._connections.current()
        task = self._deadlines.enter()
        try:
            async with connections.slots:
                if self._master is not None:
                    await self._master.current()
                return await call(connections)
        except redis_errors.RedisError as exc:
            hide_secret(exc, self._settings.password)
            hide_secret(exc, self._settings.sentinel_password)
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
        call: Callable[[LoopConnections], Awaitable[T]],
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
                await self._attempt(subject, error, script.load_into)
            except redis_errors.AuthenticationError as exc:
                raise error(f"{subject}: Redis refused the credentials: {exc}") from exc
            except ReplicationShortfall as exc:
                if self._master is not None:
                    self._master.suspect()  # the replicas may follow a new master
                raise _NOT_REPLICATED.get(error, error)(
                    f"{subject}: written on the master but {exc} within "
                    f"{self._settings.wait_timeout_ms} ms (TA_REDIS_WAIT_REPLICAS); the write "
                    "stays, and may be lost if the master fails now"
                ) from None
            except (
                redis_errors.ConnectionError,
                redis_errors.TimeoutError,
                TimeoutError,
                redis_errors.ReadOnlyError,
                redis_errors.TryAgainError,  # cluster: a slot's keys split by a reshard
                redis_errors.ClusterDownError,  # cluster: a slot without a master yet
            ) as exc:
                if self._master is not None:
                    self._master.suspect()
                elif isinstance(exc, redis_errors.ReadOnlyError):
                    raise error(f"{subject}: {exc} (TA_REDIS_HOST names a replica)") from exc
                if attempt >= self._settings.retries:
                    raise error(
                        f"{subject}: Redis {self._where()} unreachable after "
                        f"{attempt + 1} attempts: {exc}"
                    ) from exc
                delay = min(1.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
                attempt += 1
                logger.warning("%s: retry %d after %s", subject, attempt, exc or type(exc).__name__)
                await asyncio.sleep(delay)
            except UnicodeError as exc:  # an id that is not valid text, or a decoding client
                raise error(f"{subject}: not valid text (UTF-8): {exc}") from exc
            except redis_errors.RedisError as exc:
                if "DB index is out of range" in str(exc):  # the server's answer to SELECT
                    raise error(
                        f"{subject}: TA_REDIS_DB={self._settings.db} is not a database of "
                        f"this server: {exc}"
                    ) from exc
                raise error(f"{subject}: {exc}") from exc
