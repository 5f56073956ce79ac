"""The Sentinel harness with a plain redis.asyncio Sentinel client: discovery and failovers.

Figures (switch and recovery times) are printed; run with ``-s`` to see them. Bounds are
generous: they catch a client that never follows, not a slow machine.
"""

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff

from support.redis_sentinel import DATA_PASSWORD, MASTER_NAME, Address, RedisSentinelSet
from support.write_probe import WriteProbe, key, missing

RECOVERY_BOUND = 20.0  # seconds from the failure to a write acknowledged by the new master


async def test_the_master_is_found_through_the_sentinels(redis_sentinel: RedisSentinelSet) -> None:
    sentinel = redis_sentinel.async_sentinel()
    async with sentinel:
        assert await sentinel.discover_master(MASTER_NAME) == redis_sentinel.master_address()
        replicas = await sentinel.discover_replicas(MASTER_NAME)
        assert len(replicas) == 2
        assert redis_sentinel.master_address() not in replicas

        master = sentinel.master_for(MASTER_NAME)
        async with master:
            await master.set("found", "through the sentinels")
            assert await master.wait(2, 5000) == 2
        for host, port in replicas:
            async with redis.asyncio.Redis(
                host=str(host), port=int(port), password=DATA_PASSWORD, decode_responses=True
            ) as replica:
                assert await replica.get("found") == "through the sentinels"


async def test_the_data_password_does_not_open_the_sentinels(
    redis_sentinel: RedisSentinelSet,
) -> None:
    """Without ``sentinel_kwargs`` redis-py sends no password to the sentinels at all.

    Either way each sentinel refuses the client and discovery reports only "no master",
    after redis-py's default 10 retries per sentinel (an AuthenticationError is a
    ConnectionError to it): about 4 s per sentinel.
    """
    started = time.monotonic()
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        redis_sentinel.sentinel_addresses, password=DATA_PASSWORD, socket_timeout=0.5
    )
    async with sentinel:
        with pytest.raises(MasterNotFoundError, match="AuthenticationError"):
            await sentinel.discover_master(MASTER_NAME)
    print(f"\nno sentinel password: MasterNotFoundError after {time.monotonic() - started:.1f} s")
    no_retries = Retry(NoBackoff(), 0)
    wrong = Sentinel(  # type: ignore[no-untyped-call]
        redis_sentinel.sentinel_addresses,
        sentinel_kwargs={"password": DATA_PASSWORD, "socket_timeout": 0.5, "retry": no_retries},
    )
    async with wrong:
        with pytest.raises(MasterNotFoundError, match="AuthenticationError"):
            await wrong.discover_master(MASTER_NAME)


def inject(redis_sentinel: RedisSentinelSet, kind: str) -> Callable[[], Address]:
    """The failure of one kind, returning the address of the master it hit."""

    def failover() -> Address:
        if kind == "kill -9":
            return ("127.0.0.1", redis_sentinel.kill_master().port)
        if kind == "SIGSTOP":
            return ("127.0.0.1", redis_sentinel.pause_master().port)
        return redis_sentinel.sentinel_failover()

    return failover


@pytest.mark.parametrize("kind", ["kill -9", "SIGSTOP", "SENTINEL FAILOVER"])
async def test_a_client_following_sentinel_writes_to_the_new_master(
    redis_sentinel: RedisSentinelSet, kind: str
) -> None:
    sentinel = redis_sentinel.async_sentinel()
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
        old_port = redis_sentinel.master_address()[1]
        await probe.wait_for_ack(old_port, since=time.monotonic(), within=10)
        failed_at = time.monotonic()
        old = await asyncio.to_thread(inject(redis_sentinel, kind))
        new = await asyncio.to_thread(redis_sentinel.wait_for_new_master, old)
        switched = time.monotonic() - failed_at
        recovered = await probe.wait_for_ack(new[1], failed_at, within=RECOVERY_BOUND)
    finally:
        await probe.stop()
    gap = probe.longest_gap(failed_at)

    async with redis.asyncio.Redis(
        port=new[1], password=DATA_PASSWORD, decode_responses=True
    ) as new_master:
        by_new = [ack for ack in probe.acks if ack.port == new[1]]
        assert await missing(new_master, by_new) == []
        lost = await missing(new_master, [ack for ack in probe.acks if ack.port != new[1]])
    await master.aclose()
    await sentinel.aclose()
    print(
        f"\n{kind}: sentinels agree on {new[1]} after {switched:.2f} s; first write acknowledged"
        f" by it {recovered:.2f} s after the failure; longest gap {gap:.2f} s;"
        f" {len(probe.acks)} writes acknowledged, {len(lost)} of them lost; errors {probe.errors}"
    )
    assert new != old
    assert recovered < RECOVERY_BOUND
