"""Tasks and backends for the library's behavioural suite (used by tests/library)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import fakeredis
import redis
import redis.asyncio

from support.redis_cluster import DATA_PASSWORD as CLUSTER_PASSWORD
from support.redis_cluster import RedisClusterSet
from support.redis_sentinel import DATA_PASSWORD, MASTER_NAME, SENTINEL_PASSWORD, RedisSentinelSet
from support.redis_server import RedisServer
from teal_taskstore import (
    AgentTask,
    AgentTaskItem,
    AppConfig,
    MultiModalItem,
    RedisTaskPersistenceManager,
    TaskPersistenceManager,
)
from teal_taskstore.persistence.redis_persistence_manager import RedisSettings


def make_item(task_id: str, request_id: str, text: str = "hello") -> AgentTaskItem:
    """One user item of a task."""
    return AgentTaskItem(
        task_id=task_id,
        role="user",
        item=MultiModalItem(content=text),
        request_id=request_id,
        updated=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def make_task(
    task_id: str = "task-1", request_ids: tuple[str, ...] = ("req-1",), **fields: object
) -> AgentTask:
    """A task with one item per request id."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values: dict[str, object] = {
        "task_id": task_id,
        "session_id": "session-1",
        "user_id": "user-1",
        "items": [make_item(task_id, rid) for rid in request_ids],
        "created_at": now,
        "last_updated": now,
    }
    values.update(fields)
    return AgentTask.model_validate(values)


def redis_env(server: RedisServer, **overrides: str) -> AppConfig:
    """An AppConfig pointing at ``server``, with extra ``TA_REDIS_*`` settings."""
    env = {"TA_REDIS_HOST": "127.0.0.1", "TA_REDIS_PORT": str(server.port), **overrides}
    return AppConfig(env)


def cluster_env(cluster: "RedisClusterSet", **overrides: str) -> AppConfig:
    """An AppConfig in cluster mode seeded with one node of ``cluster``."""
    env = {
        "TA_REDIS_MODE": "cluster",
        "TA_REDIS_HOST": "127.0.0.1",
        "TA_REDIS_PORT": str(cluster.seed_port),
        "TA_REDIS_PWD": CLUSTER_PASSWORD,
        **overrides,
    }
    return AppConfig(env)


def sentinel_env(sentinel_set: "RedisSentinelSet", **overrides: str) -> AppConfig:
    """An AppConfig in sentinel mode for ``sentinel_set``, with extra ``TA_REDIS_*`` settings."""
    env = {
        "TA_REDIS_MODE": "sentinel",
        "TA_REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in sentinel_set.sentinel_addresses),
        "TA_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "TA_REDIS_SENTINEL_PWD": SENTINEL_PASSWORD,
        "TA_REDIS_PWD": DATA_PASSWORD,
        **overrides,
    }
    return AppConfig(env)


@dataclass
class Backend:
    """Builds managers that share one store, so tests can play several agent replicas."""

    name: str
    _build: Callable[[dict[str, str]], TaskPersistenceManager]
    raw_client: Callable[[], "redis.asyncio.Redis"] | None = None
    managers: list[TaskPersistenceManager] = field(default_factory=list)

    @property
    def expires(self) -> bool:
        return self.name != "memory"

    def new_manager(self, **settings: str) -> TaskPersistenceManager:
        """Another manager on the same store (the in-memory store has only one manager)."""
        if self.name == "memory" and self.managers:
            return self.managers[0]
        manager = self._build(settings)
        self.managers.append(manager)
        return manager


def fake_redis_backend() -> Backend:
    """A backend whose managers share one fakeredis server."""
    server = fakeredis.FakeServer()

    def raw() -> "redis.asyncio.Redis":
        return fakeredis.FakeAsyncRedis(server=server, decode_responses=True)

    def build(settings: dict[str, str]) -> TaskPersistenceManager:
        # Bytes, as the manager's own pool returns them.
        client = fakeredis.FakeAsyncRedis(server=server, decode_responses=False)
        return RedisTaskPersistenceManager(
            settings=RedisSettings.from_config(AppConfig(settings)), client=client
        )

    return Backend("fakeredis", build, raw)


def flush(server: RedisServer) -> None:
    """Empty the server's databases."""
    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        client.flushall()
    finally:
        client.close()


def create_in_subprocess(port: int, start_at: float, user_id: str) -> bool:
    """Run in a child process: wait for ``start_at``, create task-1, report whether it won."""
    import asyncio
    import time

    from teal_taskstore import PersistenceCreateError

    async def create() -> bool:
        manager = RedisTaskPersistenceManager(
            AppConfig({"TA_REDIS_HOST": "127.0.0.1", "TA_REDIS_PORT": str(port)})
        )
        async with manager:
            await manager.health_check()  # connect before the start line
            await asyncio.sleep(max(0.0, start_at - time.time()))
            try:
                await manager.create(make_task(user_id=user_id))
            except PersistenceCreateError:
                return False
            return True

    return asyncio.run(create())
