"""Cluster mode's own routing on the real 6-node cluster: slot map, MOVED, ASK, failover."""

import asyncio

import pytest
import redis.asyncio
from redis.crc import key_slot
from redis.exceptions import ConnectionError, TimeoutError

from support.failover_scenarios import hash_tags
from support.manager_failover import replicas_acknowledge
from support.polling import eventually
from support.redis_cluster import DATA_PASSWORD, RedisClusterSet
from teal_taskstore.config import AppConfig
from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes, SlotMapError
from teal_taskstore.persistence.redis_connections import Address, LoopConnections
from teal_taskstore.persistence.redis_settings import RedisSettings


def routes_for(cluster: RedisClusterSet, wait: tuple[int, int] = (0, 0)) -> ClusterRoutes:
    """Routes seeded with one node; ``wait``: ``(replicas, ms)`` of each write's ``WAIT``."""
    settings = RedisSettings.from_config(
        AppConfig(
            {
                "TA_REDIS_HOST": "127.0.0.1",
                "TA_REDIS_PORT": str(cluster.seed_port),
                "TA_REDIS_PWD": DATA_PASSWORD,
            }
        )
    )
    loop = asyncio.get_running_loop()

    def node(address: Address) -> LoopConnections:
        return LoopConnections(loop, 16, connect=lambda: settings.connection(address), wait=wait)

    return ClusterRoutes(("127.0.0.1", cluster.seed_port), node, batch_timeout=5.0)


def owner_ports(cluster: RedisClusterSet) -> dict[int, int]:
    return {slot: master.port for master in cluster.masters() for slot in master.slots}


async def test_slot_map_matches_the_cluster_and_keys_land_on_every_master(
    redis_cluster: RedisClusterSet,
) -> None:
    routes = routes_for(redis_cluster)
    try:
        keys = [f"routing:{n}" for n in range(300)]
        for key in keys:
            assert await routes.execute(key, "SET", key, key, write=True) in (b"OK", "OK")
        owners = owner_ports(redis_cluster)
        assert [None if a is None else a[1] for a in routes.slot_map] == [
            owners.get(slot) for slot in range(len(routes.slot_map))
        ]
        landed = {owners[key_slot(key.encode())] for key in keys}
        assert len(landed) == 3
        for key in keys:
            with redis_cluster.client(owners[key_slot(key.encode())]) as direct:
                assert direct.get(key) == key
    finally:
        await routes.close()


async def test_moved_after_a_reshard_is_followed_and_patches_the_map(
    redis_cluster: RedisClusterSet,
) -> None:
    routes = routes_for(redis_cluster)
    try:
        source, target = redis_cluster.masters()[0], redis_cluster.masters()[1]
        first = min(source.slots)
        tags = hash_tags(frozenset(range(first, first + 20)))
        keys = [f"{{{tag}}}:moved" for tag in tags]
        for key in keys:
            await routes.execute(key, "SET", key, key, write=True)
        redis_cluster.reshard(source, target, 20)
        for key in keys:
            assert await routes.execute(key, "GET", key) == key.encode()
        for slot in range(first, first + 20):
            assert routes.slot_map[slot] == ("127.0.0.1", target.port)
    finally:
        await routes.close()
        redis_cluster.reshard(target, source, 20)


async def test_ask_during_a_migration_sends_asking_on_the_same_connection(
    redis_cluster: RedisClusterSet,
) -> None:
    routes = routes_for(redis_cluster)
    source, target = redis_cluster.masters()[0], redis_cluster.masters()[1]
    slot = min(source.slots) + 100
    key = f"{{{hash_tags(frozenset([slot]))[0]}}}:asked"
    try:
        await routes.execute(key, "GET", key)  # the map is loaded, the slot on source
        with redis_cluster.client(target.port) as direct:
            asked_before = int(
                direct.info("commandstats").get("cmdstat_asking", {}).get("calls", 0)
            )
        with redis_cluster.migrating(slot, source, target):
            # Absent on the migrating source: it answers ASK, the target takes it after ASKING.
            assert await routes.execute(key, "SET", key, "v", write=True) == b"OK"
            assert await routes.execute(key, "GET", key) == b"v"
            with redis_cluster.client(target.port) as direct, direct.pipeline(False) as pipe:
                pipe.execute_command("ASKING")
                pipe.get(key)
                assert pipe.execute()[1] == "v"
            with redis_cluster.client(target.port) as direct:
                stats = direct.info("commandstats")
            assert int(stats["cmdstat_asking"]["calls"]) >= asked_before + 2
            # ASK does not move the slot: the map still names the source.
            assert routes.slot_map[slot] == ("127.0.0.1", source.port)
    finally:
        await routes.close()


async def test_a_killed_master_fails_calls_then_its_promoted_replica_is_followed(
    redis_cluster: RedisClusterSet,
) -> None:
    routes = routes_for(redis_cluster)
    victim = redis_cluster.masters()[2]
    key = f"{{{hash_tags(frozenset(victim.slots))[0]}}}:failover"
    try:
        await routes.execute(key, "SET", key, "before", write=True)
        redis_cluster.kill_master(victim)
        with pytest.raises((ConnectionError, TimeoutError, OSError, SlotMapError)):
            await asyncio.wait_for(routes.execute(key, "GET", key), 5)
        promoted = redis_cluster.wait_for_promotion(victim)

        async def answers() -> bool:
            try:
                return bool(await routes.execute(key, "SET", key, "after", write=True) == b"OK")
            except (ConnectionError, TimeoutError, OSError, SlotMapError):
                return False

        deadline = asyncio.get_running_loop().time() + 30
        while not await answers():
            assert asyncio.get_running_loop().time() < deadline, "never followed the promotion"
            await asyncio.sleep(0.05)
        assert routes.slot_map[key_slot(key.encode())] == ("127.0.0.1", promoted.port)
    finally:
        await routes.close()


async def test_with_wait_writes_to_a_demoted_master_follow_its_moved(
    redis_cluster: RedisClusterSet,
) -> None:
    """A demoted master answers a write ``MOVED`` and its ``WAIT`` "WAIT cannot be used
    with replica instances": the redirect is followed, for one write and for a pipeline,
    instead of the ``WAIT`` error failing every write until the map is refreshed."""
    routes = routes_for(redis_cluster, wait=(1, 1000))
    victim = redis_cluster.masters()[2]
    first, second = hash_tags(frozenset(victim.slots))[:2]
    key, other = f"{{{first}}}:planned", f"{{{second}}}:planned"
    try:
        await routes.execute(key, "SET", key, "before", write=True)
        promoted = redis_cluster.cluster_failover(victim)

        async def demoted() -> bool:
            async with redis.asyncio.Redis(port=victim.port, password=DATA_PASSWORD) as old:
                return bool((await old.info("replication"))["role"] == "slave")

        await eventually(demoted, within=30)
        async with redis.asyncio.Redis(port=promoted.port, password=DATA_PASSWORD) as new:
            await replicas_acknowledge(new, 1)
        # The routes still send these slots to the demoted master.
        assert routes.slot_map[key_slot(key.encode())] == ("127.0.0.1", victim.port)
        assert await routes.execute(key, "SET", key, "after", write=True) == b"OK"
        assert routes.slot_map[key_slot(key.encode())] == ("127.0.0.1", promoted.port)
        assert routes.slot_map[key_slot(other.encode())] == ("127.0.0.1", victim.port)
        assert await routes.execute_each([(other, ("SET", other, "after"))], write=True) == [b"OK"]
        assert routes.slot_map[key_slot(other.encode())] == ("127.0.0.1", promoted.port)
        with redis_cluster.client(promoted.port) as direct:
            assert [direct.get(key), direct.get(other)] == ["after", "after"]
    finally:
        await routes.close()
