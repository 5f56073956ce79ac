"""Pytest fixtures of the HA tier: a Sentinel set and a Redis Cluster, one each per session.

Loaded as a plugin by ``tests/conftest.py``, so any test directory can use them. A test that
uses one is marked ``redis_ha`` automatically (``pytest -m redis_ha`` runs the tier,
``-m "not redis_ha"`` skips it); each test gets the set healed from what the last one did.
A missing binary is an error, never a skip.
"""

from collections.abc import Iterator

import pytest

from support.redis_cluster import RedisClusterSet
from support.redis_sentinel import RedisSentinelSet

HA_FIXTURES = frozenset({"redis_sentinel", "redis_cluster"})


@pytest.fixture(scope="session")
def redis_sentinel_session() -> Iterator[RedisSentinelSet]:
    """1 master + 2 replicas + 3 sentinels, started once, stopped by pid at the end."""
    sentinel_set = RedisSentinelSet()
    try:
        sentinel_set.start()
        yield sentinel_set
    finally:
        sentinel_set.cleanup()


@pytest.fixture
def redis_sentinel(redis_sentinel_session: RedisSentinelSet) -> RedisSentinelSet:
    """The session's Sentinel set, healthy: 3 data nodes, sentinels agreeing on the master."""
    redis_sentinel_session.heal()
    return redis_sentinel_session


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisClusterSet]:
    """A 6-node cluster (3 masters, 3 replicas), started once, stopped by pid at the end."""
    cluster = RedisClusterSet()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisClusterSet) -> RedisClusterSet:
    """The session's cluster, healthy: 6 nodes up, every slot served."""
    redis_cluster_session.heal()
    return redis_cluster_session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an HA fixture ``redis_ha``."""
    for item in items:
        if HA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis_ha)
