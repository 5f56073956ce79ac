"""The manager in cluster mode on the real 6-node cluster: spread, a reshard, a master kill.

Figures are printed; run with ``-s`` to see them.
"""

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.crc import key_slot

from support.cluster_manager_failover import KEYS, task_ids_in
from support.failover_scenarios import RECOVERY_BOUND
from support.library_backends import cluster_env, make_item, make_task
from support.redis_cluster import DATA_PASSWORD as CLUSTER_PASSWORD
from support.redis_cluster import ClusterNode, RedisClusterSet
from support.round_trips import recorded_requests
from teal_taskstore import PersistenceError, RedisTaskPersistenceManager

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


def master_of(cluster: RedisClusterSet, key: str) -> ClusterNode:
    """The master that serves ``key``."""
    slot = key_slot(key.encode())
    return next(m for m in cluster.masters() if slot in m.slots)


def request_id_on(cluster: RedisClusterSet, prefix: str, same: bool, as_key: str) -> str:
    """A request id whose index entry is on ``as_key``'s master (``same``) or another one."""
    port = master_of(cluster, as_key).port
    for n in itertools.count():
        request_id = f"{prefix}-{n}"
        if (master_of(cluster, KEYS.request(request_id)).port == port) == same:
            return request_id
    raise AssertionError("unreachable")


async def gone(cluster: RedisClusterSet, key: str) -> None:
    """Poll (deadline-bound) until ``key`` is absent from its master."""
    deadline = time.monotonic() + 5
    with cluster.client(master_of(cluster, key).port) as direct:
        while direct.exists(key):
            assert time.monotonic() < deadline, f"{key} still present after 5 s"
            await asyncio.sleep(0.01)


async def test_round_trips_per_operation_are_the_documented_ones(
    redis_cluster: RedisClusterSet,
) -> None:
    """Every round trip is one request written on a connection; counted after a warm-up.

    Writes take at most 2 on the caller's path: stale entries are removed after the answer
    (counted apart, once they are gone), entries on the task's master ride with its script.
    """
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
        for n in range(30):  # the warm-up's removals done, so none is counted below
            await gone(redis_cluster, KEYS.request(f"warm-req-{n}"))
        task_key = KEYS.task("counted")
        local = request_id_on(redis_cluster, "local", True, task_key)
        remote = request_id_on(redis_cluster, "remote", False, task_key)
        steps: list[tuple[str, Callable[[], Awaitable[object]], int, str | None]] = [
            ("create, entry on the task's master", lambda: manager.create(
                make_task("counted", (local,))), 1, None),
            ("load", lambda: manager.load("counted"), 1, None),
            ("update adding an entry on another master", lambda: manager.update(
                make_task("counted", (local, remote))), 2, None),
            ("update dropping that id", lambda: manager.update(
                make_task("counted", (local,))), 1, remote),
            ("update dropping the other", lambda: manager.update(
                make_task("counted", (remote,))), 2, local),
            ("load_by_request_id", lambda: manager.load_by_request_id(remote), 2, None),
            ("delete", lambda: manager.delete("counted"), 1, remote),
            ("create, no request ids", lambda: manager.create(make_task("bare", ())), 1, None),
        ]  # fmt: skip
        with recorded_requests() as sent:
            for name, step, expected, stale in steps:
                sent.clear()
                await step()
                assert len(sent) == expected, name
                if stale is not None:
                    # Removed after the answer: one more request, once the entry is gone.
                    await gone(redis_cluster, KEYS.request(stale))
                    assert len(sent) == expected + 1, name
    finally:
        await manager.close()


async def test_an_id_dropped_then_added_again_at_once_keeps_its_lookup(
    redis_cluster: RedisClusterSet,
) -> None:
    """The removal of a dropped id's entry runs after the answer, so it may meet the next
    write that indexes the id again: it removes only what the dropping write's predecessor
    put there, never the new entry."""
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    try:
        for n in range(40):
            task_id = f"again-{n}"
            task = make_task(task_id, (f"{task_id}-kept", f"{task_id}-moving"))
            await manager.create(task)
            await manager.update(make_task(task_id, (f"{task_id}-kept",)))
            again = make_task(task_id, (f"{task_id}-kept", f"{task_id}-moving"))
            await manager.update(again)
        await manager.close()  # waits for every removal
        for n in range(40):
            task_id = f"again-{n}"
            loaded = await manager.load_by_request_id(f"{task_id}-moving")
            assert loaded is not None and loaded.task_id == task_id, task_id
    finally:
        await manager.close()


async def test_close_waits_for_the_removals_and_a_failed_one_is_logged(
    redis_cluster: RedisClusterSet, caplog: pytest.LogCaptureFixture
) -> None:
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    try:
        for n in range(50):
            await manager.create(make_task(f"closing-{n}", (f"closing-{n}-a", f"closing-{n}-b")))
            await manager.update(make_task(f"closing-{n}", (f"closing-{n}-a",)))
        await manager.close()  # no polling after it: the removals are done
        for n in range(50):
            entry = KEYS.request(f"closing-{n}-b")
            with redis_cluster.client(master_of(redis_cluster, entry).port) as direct:
                assert not direct.exists(entry), entry
        # An entry that is not a string: its compare-and-delete fails; the update does not.
        await manager.create(make_task("odd", ("odd-a", "odd-b")))
        with redis_cluster.client(master_of(redis_cluster, KEYS.request("odd-b")).port) as direct:
            direct.delete(KEYS.request("odd-b"))
            direct.hset(KEYS.request("odd-b"), "not", "a string")
        with caplog.at_level("WARNING"):
            await manager.update(make_task("odd", ("odd-a",)))
            await manager.close()
        assert "removing 1 stale index entries failed" in caplog.text
        assert CLUSTER_PASSWORD not in caplog.text
        assert await manager.load_by_request_id("odd-a") is not None
    finally:
        await manager.close()


async def test_wait_replicas_has_each_write_on_the_masters_replica_when_acknowledged(
    redis_cluster: RedisClusterSet,
) -> None:
    """``WAIT`` rides with every pipeline of a write: the entries' and the task's."""
    flush(redis_cluster)
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster, TA_REDIS_WAIT_REPLICAS="1"))
    try:
        await manager.create(make_task("warm", ()))  # the slot map learnt
        for master in redis_cluster.masters():  # every master's script cache filled
            task_id = task_ids_in(master.slots, 1, "warm")[0]
            await manager.create(make_task(task_id, ()))
        waits_before = wait_calls(redis_cluster)
        tasks = [make_task(f"waited-{n}", (f"waited-req-{n}",)) for n in range(30)]
        pipelines = 0
        for task in tasks:
            await manager.create(task)
            task_key, entry = KEYS.task(task.task_id), KEYS.request(task.items[0].request_id)
            pipelines += 1 + (master_of(redis_cluster, entry) != master_of(redis_cluster, task_key))
            for key in (task_key, entry):
                replica = replica_of(redis_cluster, master_of(redis_cluster, key))
                with redis_cluster.client(replica.port) as direct:
                    direct.execute_command("READONLY")
                    assert direct.exists(key), key
        assert pipelines > len(tasks), "no task had its entry on another master"
        assert wait_calls(redis_cluster) - waits_before == pipelines
    finally:
        await manager.close()


async def test_wait_replicas_rides_with_a_write_sent_after_an_ask(
    redis_cluster: RedisClusterSet,
) -> None:
    """An index entry of a slot being moved goes where ``ASK`` sends it, with ``WAIT``."""
    flush(redis_cluster)
    source, target, third = redis_cluster.masters()
    slot = max(source.slots)
    request_id = next(
        f"asked-{n}"
        for n in itertools.count()
        if key_slot(KEYS.request(f"asked-{n}").encode()) == slot
    )
    task_id = task_ids_in(third.slots, 1, "asked")[0]
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster, TA_REDIS_WAIT_REPLICAS="1"))
    try:
        for master in redis_cluster.masters():  # slot map and script caches, before the move
            await manager.create(make_task(task_ids_in(master.slots, 1, "warm")[0], ()))
        replica = replica_of(redis_cluster, target)
        with redis_cluster.migrating(slot, source, target):
            asking = asking_calls(redis_cluster, target.port)
            waits = {m.port: wait_calls(redis_cluster, m) for m in (source, target, third)}
            await manager.create(make_task(task_id, (request_id,)))
            assert asking_calls(redis_cluster, target.port) == asking + 1
            with redis_cluster.client(replica.port) as direct:
                assert direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1
            # The source's pipeline (answered ASK), the target's and the task's: one WAIT each.
            for master in (source, target, third):
                assert wait_calls(redis_cluster, master) == waits[master.port] + 1, master.port
            assert await manager.load_by_request_id(request_id) is not None
    finally:
        await manager.close()


async def test_a_task_written_while_its_slot_is_half_moved_waits_for_the_move_to_end(
    redis_cluster: RedisClusterSet,
) -> None:
    """The target answers ``TRYAGAIN`` to a script of an importing slot (not all its keys are
    there): the write keeps asking the target until the move ends, here abandoned."""
    flush(redis_cluster)
    source, target, _ = redis_cluster.masters()
    slot = max(source.slots)
    task = make_task(task_ids_in(frozenset({slot}), 1, "moving")[0], ())
    manager = RedisTaskPersistenceManager(cluster_env(redis_cluster))
    try:
        for master in redis_cluster.masters():  # slot map and script caches, before the move
            await manager.create(make_task(task_ids_in(master.slots, 1, "warm")[0], ()))
        with redis_cluster.migrating(slot, source, target):
            writing = asyncio.create_task(manager.create(task))
            await asyncio.sleep(1.0)
            assert not writing.done(), "the write gave up while the slot was moving"
        await writing
        assert await manager.load(task.task_id) == task
        with redis_cluster.client(source.port) as direct:
            assert direct.exists(KEYS.task(task.task_id))
    finally:
        await manager.close()


def replica_of(cluster: RedisClusterSet, master: ClusterNode) -> ClusterNode:
    return next(n for n in cluster.topology() if n.master_id == master.node_id)


def wait_calls(cluster: RedisClusterSet, master: ClusterNode | None = None) -> int:
    """``WAIT`` commands the masters (or one) have run."""
    calls = 0
    for node in cluster.masters() if master is None else [master]:
        with cluster.client(node.port) as direct:
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
