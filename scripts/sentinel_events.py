#!/usr/bin/env python3
"""When the sentinels announce each failover step, and when the replica is promoted.

Starts the HA tier's Sentinel set (tests/support/redis_sentinel.py), subscribes to every
sentinel's events (``PSUBSCRIBE *``) and polls the replicas' ``ROLE`` every 2 ms, then runs
failovers and prints each failover event and the promotion, in seconds after the failure.
The margin between ``+try-failover`` and the promotion is what the manager's write hold
(docs/library.md, "Writes are held") has to act in; docs/ha-notes.md, finding 10.

    .venv/bin/python scripts/sentinel_events.py [--runs 2] [--kill]
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.redis_sentinel import DATA_PASSWORD, SENTINEL_PASSWORD, RedisSentinelSet

SHOWN = ("+odown", "+try-failover", "+elected-leader", "+selected-slave", "+promoted-slave")
SHOWN_PREFIXES = ("+failover-", "-failover-", "+switch-master")


async def one_failover(sentinel_set: RedisSentinelSet, kill: bool) -> None:
    """Run one failover and print its events and the promotion, in order."""
    old = sentinel_set.master_address()
    replicas = [node for node in sentinel_set.nodes if node.port != old[1]]
    log: list[tuple[float, str, str]] = []
    clients = [
        redis.asyncio.Redis(port=s.port, password=SENTINEL_PASSWORD) for s in sentinel_set.sentinels
    ]
    subscriptions = [client.pubsub() for client in clients]
    for subscription in subscriptions:
        await subscription.psubscribe("*")

    async def listen(subscription: redis.asyncio.client.PubSub, port: int) -> None:
        async for message in subscription.listen():
            channel = message["channel"].decode()
            if message["type"] == "pmessage" and (
                channel in SHOWN or channel.startswith(SHOWN_PREFIXES)
            ):
                text = f"{channel} {message['data'].decode()}"
                log.append((time.monotonic(), f"sentinel {port}", text))

    async def promotion() -> None:
        nodes = [redis.asyncio.Redis(port=r.port, password=DATA_PASSWORD) for r in replicas]
        while True:
            for node, replica in zip(nodes, replicas, strict=True):
                if (await node.execute_command("ROLE"))[0] == b"master":  # type: ignore[no-untyped-call]
                    log.append((time.monotonic(), f"replica {replica.port}", "ROLE master"))
                    return
            await asyncio.sleep(0.002)

    ports = [s.port for s in sentinel_set.sentinels]
    tasks = [asyncio.create_task(listen(s, p)) for s, p in zip(subscriptions, ports, strict=True)]
    promoted = asyncio.create_task(promotion())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    if kill:
        await asyncio.to_thread(sentinel_set.kill_master)
    else:
        await asyncio.to_thread(sentinel_set.sentinel_failover)
    await asyncio.wait_for(promoted, 20)
    await asyncio.to_thread(sentinel_set.wait_for_new_master, old)
    await asyncio.sleep(2.5)  # the leader's +failover-end and +switch-master come last
    for task in tasks:
        task.cancel()
    print(f"{'kill -9' if kill else 'SENTINEL FAILOVER'} of {old[0]}:{old[1]}")
    for at, source, text in sorted(log):
        print(f"  {at - started:7.3f} s  {source:<16} {text}")
    for subscription, client in zip(subscriptions, clients, strict=True):
        await subscription.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def run(runs: int, kill: bool) -> None:
    sentinel_set = RedisSentinelSet()
    try:
        await asyncio.to_thread(sentinel_set.start)
        for _ in range(runs):
            await asyncio.to_thread(sentinel_set.heal)
            await one_failover(sentinel_set, kill)
    finally:
        sentinel_set.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2, help="failovers to run")
    parser.add_argument("--kill", action="store_true", help="kill -9 the master instead")
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.kill))
    return 0


if __name__ == "__main__":
    sys.exit(main())
