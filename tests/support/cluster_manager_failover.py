"""A cluster master failing under the library's own manager: 32 writers creating tasks.

The cluster counterpart of ``manager_failover`` (whose result type and settings it shares):
``cluster_manager_failover(cluster, wait_replicas, kind)`` runs one failure of a master
(``kill -9``, ``SIGSTOP``, or the planned switch ``CLUSTER FAILOVER`` sent to its replica)
while one ``RedisTaskPersistenceManager`` in cluster mode serves 32 writers creating tasks in
that master's slots (each with a request id, whose index entry may live on any master). Once
the replica is promoted the old master is brought back (restarted or resumed; after a planned
switch it is a replica already) as the promoted one's replica: with one replica per master,
``TA_REDIS_WAIT_REPLICAS=1`` cannot be met until then. Returns what it cost: each call's
duration, when the first create reached the promoted replica, and which acknowledged creates
are missing afterwards (the task by id or its request-id lookup). Used by
``tests/ha/test_cluster_failover.py`` and ``scripts/bench_ha.py``.
"""

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator

import redis.asyncio
from redis.crc import key_slot

from support.failover_scenarios import RECOVERY_BOUND
from support.library_backends import cluster_env, make_task
from support.manager_failover import SETTINGS, WRITERS, ManagerRecovery, replicas_acknowledge
from support.redis_cluster import DATA_PASSWORD, ClusterNode, RedisClusterSet
from teal_taskstore import PersistenceError, RedisTaskPersistenceManager
from teal_taskstore.persistence.redis_cluster_scripts import ClusterKeyLayout

KEYS = ClusterKeyLayout()
CLUSTER_FAILURES = ("kill -9", "SIGSTOP", "CLUSTER FAILOVER")


def ids_in(slots: frozenset[int], prefix: str) -> Iterator[str]:
    """Task ids, endlessly, whose keys fall in ``slots``."""
    for n in itertools.count():
        task_id = f"{prefix}-{n}"
        if key_slot(KEYS.task(task_id).encode()) in slots:
            yield task_id


def task_ids_in(slots: frozenset[int], count: int, prefix: str) -> list[str]:
    """``count`` task ids whose keys fall in ``slots``."""
    return list(itertools.islice(ids_in(slots, prefix), count))


async def lost_creates(manager: RedisTaskPersistenceManager, task_ids: list[str]) -> int:
    """How many of ``task_ids`` (created with the request id ``<id>-req``) the store lacks:
    the task by id, or its lookup by request id."""
    lost = 0
    for start in range(0, len(task_ids), 200):
        batch = task_ids[start : start + 200]
        tasks = await asyncio.gather(*(manager.load(i) for i in batch))
        found = await asyncio.gather(*(manager.load_by_request_id(f"{i}-req") for i in batch))
        lost += sum(
            task is None or by_request is None
            for task, by_request in zip(tasks, found, strict=True)
        )
    return lost


async def cluster_manager_failover(
    cluster: RedisClusterSet, wait_replicas: int, kind: str = "kill -9"
) -> ManagerRecovery:
    """One failure of ``kind`` (one of ``CLUSTER_FAILURES``) of the third master under 32
    writers of one manager; see the module docstring."""
    if kind not in CLUSTER_FAILURES:
        raise ValueError(f"kind: expected one of {CLUSTER_FAILURES}, got {kind!r}")
    result = ManagerRecovery(f"cluster {kind}", wait_replicas)
    for master in cluster.masters():
        with cluster.client(master.port) as client:
            client.flushall()
    victim = cluster.masters()[2]
    result.old_port = victim.port
    config = cluster_env(cluster, TA_REDIS_WAIT_REPLICAS=str(wait_replicas), **SETTINGS)
    manager = RedisTaskPersistenceManager(config)
    result.bound_s = manager.settings.operation_bound_seconds
    ids = ids_in(victim.slots, "probe")
    acks: list[tuple[float, float, str]] = []  # (the call's start, its end, the task id)

    async def writer() -> None:
        """One create; the stop flag, not cancellation, ends the writers (ha-notes)."""
        task_id = next(ids)
        started = time.monotonic()
        try:
            await manager.create(make_task(task_id, (f"{task_id}-req",)))
        except PersistenceError as error:
            name = type(error).__name__
            result.errors[name] = result.errors.get(name, 0) + 1
            await asyncio.sleep(0.02)
        else:
            acks.append((started, time.monotonic(), task_id))
        result.longest_call_s = max(result.longest_call_s, time.monotonic() - started)

    async def first_ack_after(since: float, started_after: float) -> float:
        """Seconds from ``since`` to the end of the first create started after
        ``started_after``."""
        deadline = time.monotonic() + RECOVERY_BOUND
        while True:
            ends = [end for started, end, _ in acks if started > started_after]
            if ends:
                return min(ends) - since
            if time.monotonic() > deadline:
                raise AssertionError(f"no create acknowledged after the {kind}; {result.errors}")
            await asyncio.sleep(0.02)

    try:
        await _fail_under_writers(cluster, victim, kind, result, writer, first_ack_after)
        result.acknowledged = len(acks)
        result.lost = await lost_creates(manager, [task_id for _, _, task_id in acks])
        async with redis.asyncio.Redis(port=result.new_port, password=DATA_PASSWORD) as promoted:
            await replicas_acknowledge(promoted, wait_replicas)
        # The same manager, not rebuilt, writes to the promoted master.
        after = make_task(task_ids_in(victim.slots, 1, "after")[0], ("after-req",))
        await manager.create(after)
        assert await manager.load(after.task_id) == after
        assert await manager.load_by_request_id("after-req") == after
    finally:
        await manager.close()
    return result


async def _fail_under_writers(
    cluster: RedisClusterSet,
    victim: ClusterNode,
    kind: str,
    result: ManagerRecovery,
    writer: Callable[[], Awaitable[None]],
    first_ack_after: Callable[[float, float], Awaitable[float]],
) -> None:
    """``kind`` on ``victim`` while the writers run; heal it once its replica took over."""
    stop = asyncio.Event()

    async def until_stopped() -> None:
        while not stop.is_set():
            await writer()

    tasks = [asyncio.create_task(until_stopped()) for _ in range(WRITERS)]
    try:
        now = time.monotonic()
        await first_ack_after(now, now)
        failed_at = time.monotonic()
        if kind == "CLUSTER FAILOVER":
            promoted = await asyncio.to_thread(cluster.cluster_failover, victim)
            # The old master takes writes until the replica asks it to stop (milliseconds
            # after the command): count creates started after the promotion was seen.
            gone_at = time.monotonic()
        else:
            fail = cluster.kill_master if kind == "kill -9" else cluster.pause_master
            await asyncio.to_thread(fail, victim)
            gone_at = time.monotonic()  # from here the victim acknowledges nothing
            promoted = await asyncio.to_thread(cluster.wait_for_promotion, victim)
        result.switched_s = time.monotonic() - failed_at
        result.new_port = promoted.port
        await asyncio.to_thread(cluster.heal)  # the old master back, as the new replica
        result.first_ack_s = await first_ack_after(failed_at, gone_at)
        await asyncio.sleep(0.5)  # writers keep going on the promoted master, as agents would
    finally:
        stop.set()
        await asyncio.gather(*tasks)
