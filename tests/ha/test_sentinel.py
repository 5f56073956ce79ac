"""The Sentinel harness with a plain redis.asyncio Sentinel client: discovery and failovers.

Figures (switch and recovery times) are printed; run with ``-s`` to see them. Bounds are
generous: they catch a client that never follows, not a slow machine.
"""

import time

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff

from support.failover_scenarios import RECOVERY_BOUND, SENTINEL_FAILURES, sentinel_failover
from support.redis_sentinel import DATA_PASSWORD, MASTER_NAME, RedisSentinelSet


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


@pytest.mark.parametrize("kind", SENTINEL_FAILURES)
async def test_a_client_following_sentinel_writes_to_the_new_master(
    redis_sentinel: RedisSentinelSet, kind: str
) -> None:
    recovery = await sentinel_failover(redis_sentinel, kind)
    print(f"\n{recovery}")
    assert recovery.new_port != recovery.old_port
    assert recovery.first_ack_s < RECOVERY_BOUND
    assert recovery.lost_by_new_master == 0
