"""The manager in cluster mode on the real 6-node cluster: spread, a reshard, a master kill.

Figures are printed; run with ``-s`` to see them.
"""

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.crc import key_slot

from support.failover_scenarios import RECOVERY_BOUND
from support.library_backends import cluster_env, make_item, make_task
from support.redis_cluster import RedisClusterSet
from support.round_trips import recorded_requests
from teal_taskstore import PersistenceError, RedisTaskPersistenceManager
from teal_taskstore.persistence.redis_cluster_scripts import ClusterKeyLayout

KEYS = ClusterKeyLayout()
MOVED_SLOTS = 300
PRELOADED_TASKS = 600
WRITERS = 16
# Scheduling slack of this shared machine on top of the documented bound.
SCHEDULING_SLACK = 2.0
# Short timeouts, so a failover costs seconds of errors, not minutes.
SETTINGS = {
    "TA_REDIS_COMMAND_TIMEOUT": "0.5",
    "TA_REDIS_CONNECT_TIMEOUT": "0.5",
    "TA_REDIS_RETRIES": "2",
}


def task_ids_in(slots: frozenset[int], count: int, prefix: str) -> list[str]:
    """``count`` task ids whose keys fall in ``slots``."""
    found = []
    for n in itertools.count():
        task_id = f"{prefix}-{n}"
        if key_slot(KEYS.task(task_id).encode()) in slots:
            found.append(task_id)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


def flush(cluster: RedisClusterSet) -> None:
    for master in cluster.masters():
        with cluster.client(master.port) as client:
            client.flushall()


def asking_calls(cluster: RedisClusterSet, port: int) -> int:
    with cluster.client(port) as direct:
        stats = direct.info("commandstats")
    return int(stats.get("cmdstat_asking", {}).get("calls", 0))


async def test_tasks_land_on_all_three_masters(redis_cluster: RedisClusterSet) -> None:
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    try:
        tasks = [make_task(f"spread-{n}", (f"spread-req-{n}",)) for n in range(60)]
        await asyncio.gather(*(manager.create(task) for task in tasks))
        held: dict[int, int] = {}
        for master in redis_cluster.masters():
            with redis_cluster.client(master.port) as direct:
                for task in tasks:
                    if key_slot(KEYS.task(task.task_id).encode()) in master.slots:
                        assert direct.exists(KEYS.task(task.task_id))
                        assert direct.exists(KEYS.task_requests(task.task_id))
                        held[master.port] = held.get(master.port, 0) + 1
        assert len(held) == 3 and sum(held.values()) == len(tasks)
        for task in tasks:
            assert await manager.load_by_request_id(task.items[0].request_id) == task
        print(f"\ntasks per master: {held}")
    finally:
        await manager.close()


async def test_a_reshard_under_writers_loses_nothing_and_surfaces_no_redirect(
    redis_cluster: RedisClusterSet,
) -> None:
    flush(redis_cluster)
    source, target = redis_cluster.masters()[:2]
    # redis-cli takes the slots to move from the low end of the source's range.
    moving = frozenset(sorted(source.slots)[:MOVED_SLOTS])
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    preloaded = [make_task(i, (f"{i}-req",)) for i in task_ids_in(moving, PRELOADED_TASKS, "pre")]
    for start in range(0, len(preloaded), 100):
        await asyncio.gather(*(manager.create(t) for t in preloaded[start : start + 100]))
    ids = iter(task_ids_in(moving, 100_000, "live"))
    acked: list[tuple[float, str]] = []
    errors: list[str] = []
    stopping = False

    async def writer() -> None:
        while not stopping:
            task_id = next(ids)
            try:
                task = make_task(task_id, (f"{task_id}-a",))
                await manager.create(task)
                task.items.append(make_item(task_id, f"{task_id}-b"))
                await manager.update(task)
            except PersistenceError as error:
                errors.append(str(error))
            else:
                acked.append((time.monotonic(), task_id))

    asking_before = asking_calls(redis_cluster, target.port)
    writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
    try:
        started = time.monotonic()
        await asyncio.to_thread(redis_cluster.reshard, source, target, MOVED_SLOTS)
        took = time.monotonic() - started
        await asyncio.sleep(0.3)
    finally:
        stopping = True
        await asyncio.gather(*writers)
    try:
        assert errors == []
        during = [task_id for at, task_id in acked if started < at < started + took]
        assert during, "no write ran while the slots moved"
        for _, task_id in acked:
            loaded = await manager.load(task_id)
            assert loaded is not None and len(loaded.items) == 2, task_id
            assert await manager.load_by_request_id(f"{task_id}-b") == loaded
            assert await manager.load_by_request_id(f"{task_id}-a") == loaded
        for task in preloaded:
            assert await manager.load(task.task_id) == task
            assert await manager.load_by_request_id(f"{task.task_id}-req") == task
        owners = {node.node_id: node.slots for node in redis_cluster.masters()}
        assert moving <= owners[target.node_id]
        asking = asking_calls(redis_cluster, target.port) - asking_before
        print(
            f"\nreshard of {MOVED_SLOTS} slots ({PRELOADED_TASKS} tasks) took {took:.2f} s;"
            f" {len(during)} tasks created and updated meanwhile, {len(acked)} in all, none"
            f" lost; {asking} ASKING commands reached the target"
        )
    finally:
        await manager.close()
        await asyncio.to_thread(redis_cluster.reshard, target, source, MOVED_SLOTS)


async def test_a_killed_master_fails_calls_within_the_bound_then_is_followed(
    redis_cluster: RedisClusterSet,
) -> None:
    flush(redis_cluster)
    victim = redis_cluster.masters()[2]
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster, **SETTINGS))
    bound = manager.settings.operation_bound_seconds
    ids = iter(task_ids_in(victim.slots, 100_000, "kill"))
    longest = 0.0
    failures = 0
    try:
        await manager.create(make_task(next(ids)))
        killed_at = time.monotonic()
        redis_cluster.kill_master(victim)
        recovered_after = None
        while time.monotonic() - killed_at < RECOVERY_BOUND:
            task = make_task(next(ids))
            started = time.monotonic()
            try:
                await manager.create(task)
            except PersistenceError:
                failures += 1
            else:
                recovered_after = time.monotonic() - killed_at
                assert await manager.load(task.task_id) == task
                break
            finally:
                longest = max(longest, time.monotonic() - started)
        assert recovered_after is not None, "the manager never wrote to the promoted replica"
        assert failures > 0, "no call met the dead master"
        assert longest < bound + SCHEDULING_SLACK
        promoted = redis_cluster.wait_for_promotion(victim)
        with redis_cluster.client(promoted.port) as direct:
            assert direct.execute_command("ROLE")[0] == "master"
        print(
            f"\nmaster {victim.port} killed: {failures} calls failed (longest {longest:.2f} s,"
            f" bound {bound:.2f} s); first create on {promoted.port} after"
            f" {recovered_after:.2f} s"
        )
    finally:
        await manager.close()


async def test_round_trips_per_operation_are_the_documented_ones(
    redis_cluster: RedisClusterSet,
) -> None:
    """Every round trip is one request written on a connection; counted after a warm-up."""
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    try:
        # Warm up: the slot map learnt and every master's script cache filled.
        for n in range(30):
            warm = make_task(f"warm-{n}", (f"warm-req-{n}",))
            await manager.create(warm)
            warm.items.append(make_item(warm.task_id, f"warm-other-{n}"))
            await manager.update(warm)
            warm.items.pop()
            await manager.update(warm)
            assert await manager.load_by_request_id(f"warm-req-{n}") == warm
            await manager.delete(warm.task_id)
        task = make_task("counted", ("counted-req",))
        again = make_task("counted", ("counted-req",))
        dropped = make_task("counted", ("counted-other",))
        steps: list[tuple[str, Callable[[], Awaitable[object]], int]] = [
            ("create", lambda: manager.create(task), 2),
            ("load", lambda: manager.load("counted"), 1),
            ("update", lambda: manager.update(again), 2),
            ("update dropping an id", lambda: manager.update(dropped), 3),
            ("load_by_request_id", lambda: manager.load_by_request_id("counted-other"), 2),
            ("delete", lambda: manager.delete("counted"), 2),
        ]
        with recorded_requests() as sent:
            for name, step, expected in steps:
                sent.clear()
                await step()
                assert len(sent) == expected, name
            sent.clear()
            await manager.create(make_task("no-ids", ()))
            assert len(sent) == 1, "create of a task without request ids"
    finally:
        await manager.close()


async def test_wait_replicas_has_each_write_on_the_masters_replica_when_acknowledged(
    redis_cluster: RedisClusterSet,
) -> None:
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster, TA_REDIS_WAIT_REPLICAS="1"))
    waits_before = wait_calls(redis_cluster)
    try:
        tasks = [make_task(f"waited-{n}", (f"waited-req-{n}",)) for n in range(30)]
        for task in tasks:
            await manager.create(task)
            master = next(
                m
                for m in redis_cluster.masters()
                if key_slot(KEYS.task(task.task_id).encode()) in m.slots
            )
            replica = next(n for n in redis_cluster.topology() if n.master_id == master.node_id)
            with redis_cluster.client(replica.port) as direct:
                direct.execute_command("READONLY")
                assert direct.exists(KEYS.task(task.task_id)), task.task_id
        # One WAIT per write, plus one per master whose first EVALSHA met an empty cache.
        assert len(tasks) <= wait_calls(redis_cluster) - waits_before <= len(tasks) + 3
    finally:
        await manager.close()


def wait_calls(cluster: RedisClusterSet) -> int:
    """``WAIT`` commands the masters have run."""
    calls = 0
    for master in cluster.masters():
        with cluster.client(master.port) as direct:
            calls += int(direct.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    return calls


async def test_a_wrong_password_is_reported_as_refused_credentials_without_the_secret(
    redis_cluster: RedisClusterSet,
) -> None:
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster, TA_REDIS_PWD="wrong-s3cret"))
    try:
        with pytest.raises(PersistenceError) as raised:
            await manager.load("any")
        assert "refused the credentials" in str(raised.value)
        chain: BaseException | None = raised.value
        while chain is not None:
            assert "wrong-s3cret" not in str(chain) and "wrong-s3cret" not in repr(chain.args)
            chain = chain.__cause__ or chain.__context__
    finally:
        await manager.close()
