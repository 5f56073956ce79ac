#!/usr/bin/env python3
"""Baseline for Redis Sentinel and Redis Cluster: bare redis.asyncio SET/GET and failover times.

Starts its own processes with the HA tier's harness (tests/support/redis_sentinel.py and
redis_cluster.py): 1 master + 2 replicas + 3 sentinels, and a 6-node cluster. Measures SET
and GET of one payload (default 2,700 B, the size of the library benchmark's 5-item task)
at concurrency 64 through a direct client of the Sentinel master (standalone reference), a
client that found the master through the sentinels, and RedisCluster; each figure is the
median of interleaved rounds. Then times the recovery from each failover kind (kill -9,
SIGSTOP, SENTINEL FAILOVER, and kill -9 of a cluster master) for a client that keeps writing.

The library's manager is measured the same way: every operation at concurrency 64 in
standalone mode (straight to the master), in sentinel mode and in cluster mode, each beside
the bare client of its kind in the same round, so the modes' ratios can be compared
(target: within 0.05 of standalone); then the manager's own failover recoveries with and
without TA_REDIS_WAIT_REPLICAS (each Sentinel kind, and kill -9, SIGSTOP and CLUSTER
FAILOVER of a cluster master).

    .venv/bin/python scripts/bench_ha.py [--ops 10000] [--rounds 3] [--no-failovers]

``bare_rows`` and ``recovery_rows`` can be imported by another benchmark for its own table.
"""

import argparse
import asyncio
import logging
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.bench_library import make_task, one_round
from support.cluster_manager_failover import CLUSTER_FAILURES, cluster_manager_failover
from support.failover_scenarios import (
    SENTINEL_FAILURES,
    Recovery,
    cluster_master_kill,
    sentinel_failover,
)
from support.library_backends import cluster_env, sentinel_env
from support.manager_failover import ManagerRecovery, manager_failover
from support.redis_cluster import RedisClusterSet
from support.redis_sentinel import DATA_PASSWORD, MASTER_NAME, RedisSentinelSet
from support.throughput import Result, measure, median_result
from teal_taskstore import AppConfig, RedisTaskPersistenceManager

CONCURRENCY = 64
PAYLOAD_BYTES = 2700

Client = Any  # redis.asyncio.Redis or RedisCluster: both have set/get


async def bare_rows(
    sentinel_set: RedisSentinelSet, cluster: RedisClusterSet, ops: int, rounds: int, payload: str
) -> dict[str, Result]:
    """SET and GET of ``payload`` at concurrency 64 for each kind of bare client."""
    sentinel = sentinel_set.async_sentinel(timeout=5)
    clients: dict[str, Client] = {
        "standalone": redis.asyncio.Redis(
            port=sentinel_set.master_address()[1],
            password=DATA_PASSWORD,
            decode_responses=True,
            max_connections=CONCURRENCY,
        ),
        "sentinel": sentinel.master_for(MASTER_NAME, max_connections=CONCURRENCY),
        # reinitialize_steps=0: see docs/ha-notes.md (no MOVED happens here anyway).
        "cluster": cluster.async_client(timeout=5, reinitialize_steps=0),
    }
    await clients["cluster"].initialize()
    samples: dict[str, list[Result]] = {}

    def writer(client: Client, prefix: str) -> Callable[[int], Awaitable[Any]]:
        return lambda n: client.set(f"{prefix}{n}", payload)

    def reader(client: Client, prefix: str) -> Callable[[int], Awaitable[Any]]:
        return lambda n: client.get(f"{prefix}{n}")

    try:
        for round_number in range(rounds + 1):  # round 0 warms connections up, not counted
            for kind, client in clients.items():
                for verb, op in (("SET", writer), ("GET", reader)):
                    result = await measure(op(client, f"bench:{kind}:"), ops, CONCURRENCY)
                    if round_number:
                        samples.setdefault(f"{kind} {verb}", []).append(result)
    finally:
        for client in clients.values():
            await client.aclose()
        await sentinel.aclose()
    return {name: median_result(values) for name, values in samples.items()}


async def manager_rows(
    sentinel_set: RedisSentinelSet, cluster: RedisClusterSet, ops: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Each operation's rate as a ratio of its bare command, per mode (median of rounds)."""
    host, port = sentinel_set.master_address()
    standalone_env = {
        "TA_REDIS_HOST": host,
        "TA_REDIS_PORT": str(port),
        "TA_REDIS_PWD": DATA_PASSWORD,
    }
    sentinel = sentinel_set.async_sentinel(timeout=5)
    modes = {
        "standalone": (
            RedisTaskPersistenceManager(AppConfig(standalone_env)),
            redis.asyncio.Redis(
                port=port, password=DATA_PASSWORD, decode_responses=True,
                max_connections=CONCURRENCY,
            ),
        ),
        "sentinel": (
            RedisTaskPersistenceManager(sentinel_env(sentinel_set)),
            sentinel.master_for(MASTER_NAME, max_connections=CONCURRENCY),
        ),
        "cluster": (
            RedisTaskPersistenceManager(cluster_env(cluster)),
            cluster.async_client(timeout=5, reinitialize_steps=0),
        ),
    }  # fmt: skip
    ratios: dict[str, dict[str, list[float]]] = {}
    try:
        await modes["cluster"][1].initialize()  # concurrent first calls fail (ha-notes)
        for manager, bare in modes.values():  # warm up: connections and scripts
            await one_round(manager, bare, [make_task(n) for n in range(200)], CONCURRENCY)
        for _ in range(rounds):
            for mode, (manager, bare) in modes.items():
                tasks = [make_task(n) for n in range(ops)]
                results = await one_round(manager, bare, tasks, CONCURRENCY)
                for name, result in results.items():
                    if name.startswith((" ", "bare")):
                        continue
                    reference = "bare GET" if name.startswith("load") else "bare SET"
                    ratio = result.ops_per_second / results[reference].ops_per_second
                    ratios.setdefault(mode, {}).setdefault(name, []).append(ratio)
                    ratios[mode].setdefault(f"{name} ops/s", []).append(result.ops_per_second)
                    ratios[mode].setdefault(f"{name} cpu", []).append(result.cpu_us)
    finally:
        for manager, bare in modes.values():
            await manager.close()
            await bare.aclose()
        await sentinel.aclose()
    return {
        mode: {name: statistics.median(values) for name, values in by_name.items()}
        for mode, by_name in ratios.items()
    }


def print_manager(rows: dict[str, dict[str, float]]) -> None:
    print(
        f"the library's manager, concurrency {CONCURRENCY}: ops/s, ratio to the bare command,"
        " client CPU per operation"
    )
    print(
        f"  {'operation':<20}{'standalone':>29}{'sentinel':>29}{'cluster':>29}"
        "  difference to standalone (sentinel, cluster)"
    )
    for name in [n for n in rows["standalone"] if not n.endswith(("ops/s", "cpu"))]:
        cells = [
            f"{rows[mode][name + ' ops/s']:>9,.0f}/s {rows[mode][name]:.2f}x"
            f" {rows[mode][name + ' cpu']:>4.0f} us"
            for mode in ("standalone", "sentinel", "cluster")
        ]
        verdicts = []
        for mode in ("sentinel", "cluster"):
            difference = rows[mode][name] - rows["standalone"][name]
            verdicts.append(f"{difference:+.2f} ({'met' if abs(difference) <= 0.05 else 'MISSED'})")
        print(f"  {name:<20}{''.join(f'{c:>29}' for c in cells)}  {', '.join(verdicts)}")
    print()


async def manager_recovery_rows(
    sentinel_set: RedisSentinelSet, cluster: RedisClusterSet
) -> list[ManagerRecovery]:
    """The manager's own failovers with TA_REDIS_WAIT_REPLICAS 0 and 1 (and the planned
    switch with 2, every replica)."""
    recoveries = []
    for wait_replicas in (0, 1):
        for kind in SENTINEL_FAILURES:
            await asyncio.to_thread(sentinel_set.heal)
            recoveries.append(await manager_failover(sentinel_set, kind, wait_replicas))
        for kind in CLUSTER_FAILURES:
            await asyncio.to_thread(cluster.heal)
            recoveries.append(await cluster_manager_failover(cluster, wait_replicas, kind))
    await asyncio.to_thread(sentinel_set.heal)
    recoveries.append(await manager_failover(sentinel_set, "SENTINEL FAILOVER", 2))
    return recoveries


async def recovery_rows(sentinel_set: RedisSentinelSet, cluster: RedisClusterSet) -> list[Recovery]:
    """One failover of each kind under writers; the sets are healed between them."""
    recoveries = []
    for kind in SENTINEL_FAILURES:
        await asyncio.to_thread(sentinel_set.heal)
        recoveries.append(await sentinel_failover(sentinel_set, kind))
    await asyncio.to_thread(cluster.heal)
    recoveries.append(await cluster_master_kill(cluster))
    return recoveries


def print_bare(results: dict[str, Result]) -> None:
    print(f"bare clients, concurrency {CONCURRENCY}")
    print(f"  {'client':<18}{'ops/s':>10}{'p50 ms':>9}{'p99 ms':>9}  vs standalone")
    for name, result in results.items():
        verb = name.split()[-1]
        ratio = result.ops_per_second / results[f"standalone {verb}"].ops_per_second
        print(
            f"  {name:<18}{result.ops_per_second:>10,.0f}{result.p50_ms:>9.2f}"
            f"{result.p99_ms:>9.2f}  {ratio:.2f}x"
        )
    print()


def print_recoveries(recoveries: list[Recovery]) -> None:
    print("failovers under writers (4 for Sentinel, 16 for Cluster)")
    header = f"  {'failure':<20}{'switched s':>11}{'1st ack s':>10}{'gap s':>7}"
    print(f"{header}{'acked':>8}{'lost':>7}  errors")
    for r in recoveries:
        print(
            f"  {r.kind:<20}{r.switched_s:>11.2f}{r.first_ack_s:>10.2f}{r.longest_gap_s:>7.2f}"
            f"{r.acknowledged:>8}{r.lost:>7}  {r.errors}"
        )
    print(
        "  switched: the servers agree on a new master; 1st ack: the client's first write"
        " acknowledged by it;\n  lost: acknowledged writes the new master lacks (no WAIT)."
    )


async def run(ops: int, rounds: int, failovers: bool) -> None:
    # The manager logs each retry during a failover; thousands of lines, not figures.
    logging.getLogger("teal_taskstore").setLevel(logging.ERROR)
    sentinel_set = RedisSentinelSet()
    cluster = RedisClusterSet()
    try:
        await asyncio.to_thread(sentinel_set.start)
        await asyncio.to_thread(cluster.start)
        with sentinel_set.data_client(sentinel_set.master_address()[1]) as client:
            version = client.info("server")["redis_version"]
        print(f"redis-server {version}, redis-py {redis.__version__}; payload {PAYLOAD_BYTES} B;")
        print(f"{ops} ops per measurement, median of {rounds} interleaved rounds\n")
        print_bare(await bare_rows(sentinel_set, cluster, ops, rounds, "x" * PAYLOAD_BYTES))
        print_manager(await manager_rows(sentinel_set, cluster, ops, rounds))
        if failovers:
            print_recoveries(await recovery_rows(sentinel_set, cluster))
            print(
                "the library's manager, 32 writers (tests/support/manager_failover.py,"
                " cluster_manager_failover.py)"
            )
            for recovery in await manager_recovery_rows(sentinel_set, cluster):
                print(f"  {recovery}")
    finally:
        sentinel_set.cleanup()
        cluster.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ops", type=int, default=10000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--no-failovers", action="store_true", help="skip the failover timings")
    args = parser.parse_args()
    asyncio.run(run(args.ops, args.rounds, not args.no_failovers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
