"""The manager in sentinel mode on real processes: discovery, credentials, failovers.

Figures are printed (run with ``-s``). Every call must end within the manager's documented
bound (``RedisSettings.operation_bound_seconds``) plus ``SCHEDULING_SLACK`` for this shared
machine's event loop, and the same manager must work after each failover.
"""

import asyncio
import logging
import time

import pytest

from support.failover_scenarios import RECOVERY_BOUND, SENTINEL_FAILURES
from support.library_backends import make_task, sentinel_env
from support.manager_failover import ManagerRecovery, manager_failover
from support.polling import answered
from support.redis_sentinel import DATA_PASSWORD, SENTINEL_PASSWORD, RedisSentinelSet
from taskstore_dev.envtest.waiting import wait_for
from teal_taskstore import PersistenceLoadError, RedisTaskPersistenceManager

SCHEDULING_SLACK = 1.0


async def test_the_manager_finds_the_master_through_the_sentinels(
    redis_sentinel: RedisSentinelSet,
) -> None:
    async with RedisTaskPersistenceManager(sentinel_env(redis_sentinel)) as manager:
        task = make_task("found")
        await manager.create(task)
        assert manager.server == redis_sentinel.master_address()
        assert await manager.load("found") == task
        assert await manager.health_check()


@pytest.mark.parametrize(
    ("sentinel_password", "master_name", "expected"),
    [
        (None, "mymaster", "TA_REDIS_SENTINEL_PWD"),
        (DATA_PASSWORD, "mymaster", "TA_REDIS_SENTINEL_PWD"),
        (SENTINEL_PASSWORD, "nosuchmaster", "TA_REDIS_SENTINEL_MASTER"),
    ],
)
async def test_bad_sentinel_settings_fail_fast_naming_the_variable_and_no_secret(
    redis_sentinel: RedisSentinelSet,
    sentinel_password: str | None,
    master_name: str,
    expected: str,
) -> None:
    overrides = {"TA_REDIS_SENTINEL_MASTER": master_name, "TA_REDIS_SENTINEL_PWD": ""}
    if sentinel_password is not None:
        overrides["TA_REDIS_SENTINEL_PWD"] = sentinel_password
    config = sentinel_env(redis_sentinel, **overrides)
    started = time.monotonic()
    async with RedisTaskPersistenceManager(config) as manager:
        with pytest.raises(PersistenceLoadError) as raised:
            await manager.load("any")
    took = time.monotonic() - started
    assert took < manager.settings.operation_bound_seconds + SCHEDULING_SLACK
    message = str(raised.value)
    assert expected in message
    chain: list[BaseException] = [raised.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    for error in chain:
        assert DATA_PASSWORD not in str(error)
        assert SENTINEL_PASSWORD not in str(error)
    print(f"\n{expected}: failed after {took:.2f} s: {message}")


async def test_a_refused_subscription_is_retried_quietly_and_logs_no_secret(
    redis_sentinel: RedisSentinelSet, caplog: pytest.LogCaptureFixture
) -> None:
    """The classic pitfall (the data password sent to the sentinels), seen by the watcher."""
    caplog.set_level(logging.DEBUG, logger="teal_taskstore")
    config = sentinel_env(redis_sentinel, TA_REDIS_SENTINEL_PWD=DATA_PASSWORD)
    async with RedisTaskPersistenceManager(config) as manager:
        with pytest.raises(PersistenceLoadError):
            await manager.load("any")
        deadline = time.monotonic() + 5.0
        refusals: list[logging.LogRecord] = []
        while len(refusals) < 2 * len(redis_sentinel.sentinels):  # refused, then again
            assert time.monotonic() < deadline, "the subscriptions were not tried again"
            await asyncio.sleep(0.05)
            refusals = [r for r in caplog.records if "subscription" in r.getMessage()]
    for record in caplog.records:
        assert DATA_PASSWORD not in record.getMessage()
        assert SENTINEL_PASSWORD not in record.getMessage()
    print(f"\n{refusals[0].getMessage()}")


async def recovered(
    redis_sentinel: RedisSentinelSet, kind: str, wait_replicas: int
) -> ManagerRecovery:
    """One failure under writers, which every call survived within the bound, printed."""
    recovery = await manager_failover(redis_sentinel, kind, wait_replicas)
    print(f"\n{recovery}")
    assert recovery.longest_call_s <= recovery.bound_s + SCHEDULING_SLACK
    assert recovery.first_ack_s < RECOVERY_BOUND
    assert recovery.acknowledged > 0
    return recovery


@pytest.mark.parametrize(
    ("kind", "wait_replicas"),
    [("kill -9", 1), ("SIGSTOP", 1), ("SENTINEL FAILOVER", 1), ("SENTINEL FAILOVER", 2)],
)
async def test_with_wait_replicas_a_failover_loses_no_acknowledged_write(
    redis_sentinel: RedisSentinelSet, kind: str, wait_replicas: int
) -> None:
    """A planned switch too: writes are held from the failover's first event to the switch."""
    recovery = await recovered(redis_sentinel, kind, wait_replicas)
    assert recovery.lost == 0


@pytest.mark.parametrize(
    ("kind", "wait_replicas"),
    [(kind, 0) for kind in SENTINEL_FAILURES],
)
async def test_every_call_ends_within_the_bound_and_the_manager_follows(
    redis_sentinel: RedisSentinelSet, kind: str, wait_replicas: int
) -> None:
    """What is lost here is measured and printed (docs/library.md), not bounded."""
    await recovered(redis_sentinel, kind, wait_replicas)


async def test_broken_subscriptions_are_made_again_and_still_hold_writes(
    redis_sentinel: RedisSentinelSet,
) -> None:
    """Subscriptions closed, a sentinel restarted, one hung: no call stalls, all come back.

    Then a planned switch with ``TA_REDIS_WAIT_REPLICAS=1`` loses nothing, which without
    the re-made subscriptions it does (the case above on the old code: thousands lost).
    """
    dropped, restarted, hung = redis_sentinel.sentinels

    async def break_subscriptions() -> None:
        before = {s.port: redis_sentinel.subscribers(s) for s in (dropped, hung)}
        assert all(before.values()), "the manager subscribed to every sentinel"
        redis_sentinel.drop_subscribers(dropped)
        await asyncio.to_thread(restarted.restart)
        hung.pause()
        try:
            await asyncio.sleep(3.0)  # the subscription's PING goes unanswered
        finally:
            hung.resume()

        def made_again() -> bool:
            return bool(
                redis_sentinel.subscribers(dropped) - before[dropped.port]
                and redis_sentinel.subscribers(restarted)
                and redis_sentinel.subscribers(hung) - before[hung.port]
            )

        await asyncio.to_thread(
            wait_for, "the manager subscribed again", answered(made_again), 10.0, 0.05
        )

    recovery = await manager_failover(redis_sentinel, "SENTINEL FAILOVER", 1, break_subscriptions)
    print(f"\nafter broken subscriptions: {recovery}")
    assert recovery.longest_call_s <= recovery.bound_s + SCHEDULING_SLACK
    assert recovery.acknowledged > 0
    assert recovery.lost == 0
