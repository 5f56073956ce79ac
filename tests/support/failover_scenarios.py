"""Failovers under writers, measured: shared by the HA tests and ``scripts/bench_ha.py``.

Each scenario runs a ``WriteProbe`` through one failure with a plain redis-py client and
returns a ``Recovery``: when the servers had switched, when the client's first write was
acknowledged by the new master, and which acknowledged writes the new master lacks.
"""

import asyncio
import itertools
import time
from dataclasses import dataclass

import redis.asyncio
from redis.crc import key_slot

from support.redis_cluster import ClusterNode, RedisClusterSet
from support.redis_sentinel import DATA_PASSWORD, MASTER_NAME, Address, RedisSentinelSet
from support.write_probe import WriteProbe, key, missing

RECOVERY_BOUND = 20.0  # seconds from a failure to a write acknowledged by the new master
SENTINEL_FAILURES = ("kill -9", "SIGSTOP", "SENTINEL FAILOVER")


@dataclass(frozen=True)
class Recovery:
    """What one failover cost a client that kept writing."""

    kind: str
    old_port: int
    new_port: int
    switched_s: float  # failure -> the servers agree on the new master
    first_ack_s: float  # failure -> first write acknowledged by the new master
    longest_gap_s: float  # longest stretch without any acknowledged write
    acknowledged: int
    lost: int  # acknowledged writes the new master lacks afterwards
    lost_by_new_master: int  # of those, acknowledged by the new master itself (must be 0)
    errors: dict[str, int]

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.old_port} -> {self.new_port}; switched after"
            f" {self.switched_s:.2f} s, first write acknowledged by the new master after"
            f" {self.first_ack_s:.2f} s, longest gap {self.longest_gap_s:.2f} s;"
            f" {self.acknowledged} writes acknowledged, {self.lost} lost; errors {self.errors}"
        )


def _inject(sentinel_set: RedisSentinelSet, kind: str) -> Address:
    if kind == "kill -9":
        return ("127.0.0.1", sentinel_set.kill_master().port)
    if kind == "SIGSTOP":
        return ("127.0.0.1", sentinel_set.pause_master().port)
    if kind == "SENTINEL FAILOVER":
        return sentinel_set.sentinel_failover()
    raise ValueError(f"failure kind {kind!r}: expected one of {SENTINEL_FAILURES}")


async def sentinel_failover(sentinel_set: RedisSentinelSet, kind: str) -> Recovery:
    """One failure of ``kind`` under 4 writers following the master through the sentinels."""
    sentinel = sentinel_set.async_sentinel()
    master = sentinel.master_for(MASTER_NAME)

    async def write(n: int) -> int:
        # CONFIG GET port rides the same connection, so it names the server that acknowledged.
        async with master.pipeline(transaction=False) as pipe:
            pipe.set(key(n), n)
            pipe.config_get("port")
            _, config = await pipe.execute()
        return int(config["port"])

    probe = WriteProbe(write, writers=4)
    probe.start()
    try:
        old_port = sentinel_set.master_address()[1]
        await probe.wait_for_ack(old_port, since=time.monotonic(), within=10)
        failed_at = time.monotonic()
        old = await asyncio.to_thread(_inject, sentinel_set, kind)
        new = await asyncio.to_thread(sentinel_set.wait_for_new_master, old)
        switched = time.monotonic() - failed_at
        first_ack = await probe.wait_for_ack(new[1], failed_at, within=RECOVERY_BOUND)
    finally:
        await probe.stop()
        await master.aclose()
        await sentinel.aclose()
    async with redis.asyncio.Redis(
        port=new[1], password=DATA_PASSWORD, decode_responses=True
    ) as new_master:
        lost = await missing(new_master, probe.acks)
        by_new = await missing(new_master, [ack for ack in probe.acks if ack.port == new[1]])
    return Recovery(
        kind, old[1], new[1], switched, first_ack, probe.longest_gap(failed_at),
        len(probe.acks), len(lost), len(by_new), dict(probe.errors),
    )  # fmt: skip


def hash_tags(slots: frozenset[int]) -> list[str]:
    """One hash tag per slot in ``slots`` (in slot order): ``{tag}`` puts a key in that slot."""
    found: dict[int, str] = {}
    for n in itertools.count():
        tag = f"t{n}"
        slot = key_slot(tag.encode())
        if slot in slots:
            found.setdefault(slot, tag)
            if len(found) == len(slots):
                return [found[slot] for slot in sorted(found)]
    raise AssertionError("unreachable")


def key_of(tags: list[str], prefix: str, n: int) -> str:
    """Key number ``n`` of a writer, cycling through the slots of ``tags``."""
    return f"{{{tags[n % len(tags)]}}}:{prefix}:{n}"


def serving_port(client: redis.asyncio.RedisCluster, key: str) -> int:
    """The port of the master redis-py now routes ``key`` to."""
    node = client.get_node_from_key(key)
    assert node is not None, f"redis-py knows no node for {key}"
    return int(node.port)


def cluster_probe(client: redis.asyncio.RedisCluster, tags: list[str], prefix: str) -> WriteProbe:
    """16 writers of new keys in the slots of ``tags``; each ack names the node serving it."""

    async def write(n: int) -> int:
        key = key_of(tags, prefix, n)
        await client.set(key, n)
        return serving_port(client, key)

    return WriteProbe(write, writers=16)


async def missing_keys(client: redis.asyncio.RedisCluster, keys: list[str]) -> list[str]:
    """The keys in ``keys`` the cluster does not hold."""
    values = await client.mget_nonatomic(keys)
    return [key for key, value in zip(keys, values, strict=True) if value is None]


async def cluster_master_kill(cluster: RedisClusterSet) -> Recovery:
    """``kill -9`` of the third master under 16 writers of keys in its slots."""
    victim: ClusterNode = cluster.masters()[2]
    tags = hash_tags(frozenset(sorted(victim.slots)[:64]))
    async with cluster.async_client() as client:
        await client.initialize()  # concurrent first calls would each initialize (see notes)
        probe = cluster_probe(client, tags, "failover")
        probe.start()
        try:
            await probe.wait_for_ack(victim.port, time.monotonic(), within=10)
            killed_at = time.monotonic()
            await asyncio.to_thread(cluster.kill_master, victim)
            promoted = await asyncio.to_thread(cluster.wait_for_promotion, victim)
            switched = time.monotonic() - killed_at
            first_ack = await probe.wait_for_ack(promoted.port, killed_at, RECOVERY_BOUND)
        finally:
            await probe.stop()
        keys = [key_of(tags, "failover", ack.n) for ack in probe.acks]
        lost = await missing_keys(client, keys)
        by_new = await missing_keys(
            client,
            [key_of(tags, "failover", a.n) for a in probe.acks if a.port == promoted.port],
        )
    return Recovery(
        "cluster kill -9", victim.port, promoted.port, switched, first_ack,
        probe.longest_gap(killed_at), len(probe.acks), len(lost), len(by_new),
        dict(probe.errors),
    )  # fmt: skip
