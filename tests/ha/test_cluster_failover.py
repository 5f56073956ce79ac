"""The manager in cluster mode through a master's failure under 32 writers.

Each failure kind (``kill -9``, ``SIGSTOP``, the planned switch ``CLUSTER FAILOVER``) with and
without ``TA_REDIS_WAIT_REPLICAS``: counts the acknowledged creates missing afterwards (by id
and by request id), none allowed with ``WAIT`` or after a planned switch; figures are printed
(run with ``-s``).
"""

import pytest

from support.cluster_manager_failover import CLUSTER_FAILURES, cluster_manager_failover
from support.redis_cluster import RedisClusterSet

# Scheduling slack of this shared machine on top of the documented bound.
SCHEDULING_SLACK = 2.0


@pytest.mark.parametrize("wait_replicas", [0, 1])
@pytest.mark.parametrize("kind", CLUSTER_FAILURES)
async def test_a_failed_master_under_writers_then_the_same_manager_goes_on(
    redis_cluster: RedisClusterSet, kind: str, wait_replicas: int
) -> None:
    recovery = await cluster_manager_failover(redis_cluster, wait_replicas, kind)
    print(f"\n{recovery}")
    assert recovery.acknowledged > 0
    if kind != "CLUSTER FAILOVER":
        assert recovery.errors, "no call met the failure"
    assert recovery.longest_call_s < recovery.bound_s + SCHEDULING_SLACK
    # Redis's manual failover stops the master's writes and promotes the replica once it
    # has them all: nothing acknowledged is lost even without WAIT.
    if wait_replicas or kind == "CLUSTER FAILOVER":
        assert recovery.lost == 0
