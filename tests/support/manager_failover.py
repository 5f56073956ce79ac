"""Sentinel failovers under the library's own manager: 32 writers creating tasks.

``manager_failover(set, kind, wait_replicas)`` runs one failure (``kill -9``, ``SIGSTOP`` or
``SENTINEL FAILOVER``) while one ``RedisTaskPersistenceManager`` in sentinel mode serves 32
concurrent writers, and returns what it cost: how long each call took (every call must end
within the manager's documented bound), when the first write reached the new master, and
which acknowledged creates the new master lacks afterwards. Used by the tests and the bench.
"""

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio

from support.failover_scenarios import RECOVERY_BOUND
from support.library_backends import make_task, sentinel_env
from support.redis_sentinel import DATA_PASSWORD, Address, RedisSentinelSet
from teal_taskstore import PersistenceError, RedisTaskPersistenceManager

WRITERS = 32
# Short timeouts, so a failover costs seconds of errors, not minutes.
SETTINGS = {
    "TA_REDIS_COMMAND_TIMEOUT": "0.5",
    "TA_REDIS_CONNECT_TIMEOUT": "0.5",
    "TA_REDIS_RETRIES": "2",
}


@dataclass(frozen=True)
class Ack:
    n: int
    at: float
    port: int


@dataclass
class ManagerRecovery:
    """What one failover cost the manager's writers."""

    kind: str
    wait_replicas: int
    old_port: int = 0
    new_port: int = 0
    switched_s: float = 0.0  # failure -> sentinels agree on a new master
    first_ack_s: float = 0.0  # failure -> first create acknowledged while at the new master
    acknowledged: int = 0
    lost: int = 0  # acknowledged creates the new master lacks
    longest_call_s: float = 0.0
    bound_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"manager, {self.kind}, TA_REDIS_WAIT_REPLICAS={self.wait_replicas}: "
            f"{self.old_port} -> {self.new_port}; switched after {self.switched_s:.2f} s, "
            f"first create on the new master after {self.first_ack_s:.2f} s; "
            f"{self.acknowledged} creates acknowledged, {self.lost} lost; longest call "
            f"{self.longest_call_s:.2f} s (bound {self.bound_s:.2f} s); errors {self.errors}"
        )


def _inject(sentinel_set: RedisSentinelSet, kind: str) -> Address:
    if kind == "kill -9":
        return ("127.0.0.1", sentinel_set.kill_master().port)
    if kind == "SIGSTOP":
        return ("127.0.0.1", sentinel_set.pause_master().port)
    return sentinel_set.sentinel_failover()


async def manager_failover(
    sentinel_set: RedisSentinelSet,
    kind: str,
    wait_replicas: int,
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> ManagerRecovery:
    """One failure of ``kind`` under 32 writers of one manager; see the module docstring.

    ``prepare``, if given, runs while the writers run on the old master, before the failure.
    """
    result = ManagerRecovery(kind, wait_replicas)
    with sentinel_set.data_client(sentinel_set.master_address()[1]) as client:
        client.flushall()
    config = sentinel_env(sentinel_set, TA_REDIS_WAIT_REPLICAS=str(wait_replicas), **SETTINGS)
    manager = RedisTaskPersistenceManager(config)
    result.bound_s = manager.settings.operation_bound_seconds
    acks: list[Ack] = []
    numbers = itertools.count()
    stopping = False

    async def writer() -> None:
        while not stopping:
            n = next(numbers)
            started = time.monotonic()
            try:
                await manager.create(make_task(f"probe-{n}", (f"probe-req-{n}",)))
            except PersistenceError as error:
                name = type(error).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
                await asyncio.sleep(0.02)
            else:
                server = manager.server
                acks.append(Ack(n, time.monotonic(), 0 if server is None else server[1]))
            result.longest_call_s = max(result.longest_call_s, time.monotonic() - started)

    async def first_ack_at(where: Callable[[int], bool], since: float) -> float:
        deadline = time.monotonic() + RECOVERY_BOUND
        while not any(where(a.port) and a.at > since for a in acks):
            if time.monotonic() > deadline:
                raise AssertionError(f"no create reached the master; errors {result.errors}")
            await asyncio.sleep(0.02)
        return next(a.at for a in acks if where(a.port) and a.at > since) - since

    tasks = [asyncio.create_task(writer()) for _ in range(WRITERS)]
    try:
        result.old_port = sentinel_set.master_address()[1]
        await first_ack_at(lambda port: port == result.old_port, time.monotonic())
        if prepare is not None:
            await prepare()
        failed_at = time.monotonic()
        old = await asyncio.to_thread(_inject, sentinel_set, kind)
        new = await asyncio.to_thread(sentinel_set.wait_for_new_master, old)
        result.switched_s = time.monotonic() - failed_at
        result.new_port = new[1]
        # Any master but the old one: the sentinels may already have moved on from ``new``.
        result.first_ack_s = await first_ack_at(lambda port: port not in (0, old[1]), failed_at)
        # Let the writers run a little on the new master, as agents would.
        await asyncio.sleep(0.5)
    finally:
        stopping = True
        await asyncio.gather(*tasks)
    result.acknowledged = len(acks)
    # The demoted master must stop taking writes before we count: heal it into a replica.
    await asyncio.to_thread(sentinel_set.heal)
    # Counted on the master after the heal: on a busy machine the sentinels sometimes fail
    # over the new master too (see ``RedisSentinelSet.heal``), and ``new`` is then a replica.
    master_port = sentinel_set.master_address()[1]
    async with redis.asyncio.Redis(port=master_port, password=DATA_PASSWORD) as master:
        names = [f"taskstore:v1:task:probe-{a.n}" for a in acks]
        present: list[object] = []
        for start in range(0, len(names), 500):
            present += await master.mget(names[start : start + 500])
        result.lost = sum(value is None for value in present)
        # The replicas re-attach to the new master in the background (a full resync for the
        # healed one): with TA_REDIS_WAIT_REPLICAS the next write waits for that, as an agent
        # would, so wait until the new master has that many replicas acknowledging writes.
        await replicas_acknowledge(master, wait_replicas)
    # The same manager, not rebuilt, works on the new master.
    after = make_task("after-failover", ("after-req",))
    await manager.create(after)
    assert await manager.load("after-failover") == after
    await manager.close()
    return result


async def replicas_acknowledge(master: redis.asyncio.Redis, replicas: int) -> None:
    """Poll until ``replicas`` replicas acknowledge a write on ``master`` (deadline-bound)."""
    deadline = time.monotonic() + RECOVERY_BOUND
    while True:
        await master.set("failover-probe:replicas", "1")
        acknowledged = int(await master.wait(replicas, 200))
        if acknowledged >= replicas:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{acknowledged} of {replicas} replicas after {RECOVERY_BOUND} s")
