"""Cluster mode's batching, without Redis: ``WriteBatches`` (the index entries of writes
resumed in one loop turn share one pipeline), the packer of those pipelines, and
``StaleEntryRemovals`` (removals after the answer, batched, bounded).

No Redis needed: ``send`` records what would be one pipeline to a master.
"""

import asyncio
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio.connection import Connection

from teal_taskstore.persistence.redis_cluster_batches import WriteBatches
from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes
from teal_taskstore.persistence.redis_cluster_stale_entries import StaleEntryRemovals
from teal_taskstore.persistence.redis_connections import (
    Address,
    ReplicationShortfall,
    pack_commands,
)

A: Address = ("127.0.0.1", 1)
B: Address = ("127.0.0.1", 2)


class Sends:
    """Each call is one pipeline; replies echo the commands."""

    def __init__(self, fail: BaseException | None = None, hold: float = 0.0) -> None:
        self.pipelines: list[tuple[Address, list[tuple[Any, ...]]]] = []
        self.fail = fail
        self.hold = hold

    async def __call__(self, address: Address, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.pipelines.append((address, list(commands)))
        await asyncio.sleep(self.hold)
        if self.fail is not None:
            raise self.fail
        return [command[1] for command in commands]


async def test_writes_of_one_turn_share_one_pipeline_per_master_and_get_their_own_replies() -> None:
    sends = Sends()
    batches = WriteBatches(sends, timeout=1.0)
    futures = [batches.submit(A, [("SET", f"a{n}"), ("SET", f"b{n}")]) for n in range(3)]
    futures.append(batches.submit(B, [("SET", "other")]))
    replies = [await future for future in futures]
    assert [r for r, _ in replies] == [["a0", "b0"], ["a1", "b1"], ["a2", "b2"], ["other"]]
    assert [(address, len(commands)) for address, commands in sends.pipelines] == [(A, 6), (B, 1)]
    # The next turn starts a new batch.
    assert (await batches.submit(A, [("SET", "later")]))[0] == ["later"]
    assert len(sends.pipelines) == 3


async def test_a_write_cancelled_by_its_deadline_leaves_the_batch_to_the_others() -> None:
    sends = Sends(hold=0.05)
    batches = WriteBatches(sends, timeout=1.0)

    async def write(name: str) -> list[Any]:
        replies, _ = await batches.submit(A, [("SET", name)])
        return replies

    late, kept = asyncio.create_task(write("late")), asyncio.create_task(write("kept"))
    await asyncio.sleep(0.01)
    late.cancel()
    assert await kept == ["kept"]
    with pytest.raises(asyncio.CancelledError):
        await late
    assert len(sends.pipelines) == 1


async def test_an_error_or_a_shortfall_reaches_every_write_of_the_batch() -> None:
    failing = WriteBatches(Sends(fail=ConnectionResetError("reset")), timeout=1.0)
    futures = [failing.submit(A, [("SET", "x")]), failing.submit(A, [("SET", "y")])]
    for future in futures:
        with pytest.raises(ConnectionResetError):
            await future

    async def short(address: Address, commands: list[tuple[Any, ...]]) -> list[Any]:
        raise ReplicationShortfall([c[1] for c in commands], 0, 1)

    shorted = WriteBatches(short, timeout=1.0)
    first, second = shorted.submit(A, [("SET", "x")]), shorted.submit(A, [("SET", "y")])
    (replies, shortfall), (other, _) = await first, await second
    assert (replies, other) == (["x"], ["y"]) and shortfall is not None
    assert shortfall.wanted == 1


async def test_a_batch_that_hangs_ends_at_its_deadline() -> None:
    batches = WriteBatches(Sends(hold=10.0), timeout=0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(batches.submit(A, [("SET", "x")]), 2.0)


def test_the_pipelines_packer_writes_what_redis_py_writes() -> None:
    commands: list[tuple[Any, ...]] = [
        ("SET", "taskstore:v2:{request:r-é}", "ab12:task", "EX", 3600),
        ("EVALSHA", "f" * 40, 3, "k1", "k2", "k3", b"\x00\xffbinary", "x" * 10_000),
        ("WAIT", 1, 250),
    ]
    reference = b"".join(Connection().pack_commands(commands))
    assert pack_commands(commands) == reference


class Routes:
    """Stands in for ``ClusterRoutes``: records each ``execute_each`` (one per batch)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def execute_each(self, commands: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        self.batches.append([key for key, _ in commands])
        await asyncio.sleep(0.01)
        return [1] * len(commands)


async def test_removals_are_batched_in_the_background_and_bounded() -> None:
    routes = Routes()

    async def bounded(call: Callable[[Any], Awaitable[Any]]) -> Any:
        return await call(connections)

    connections = SimpleNamespace(cluster=routes)
    removals = StaleEntryRemovals(bounded, limit=3)
    live = cast(ClusterRoutes, routes)
    await removals.remove(live, [("a", ()), ("b", ())])
    await removals.remove(live, [("c", ())])
    assert routes.batches == []  # queued: the caller did not wait
    await removals.remove(live, [("d", ())])  # the queue is full: removed before returning
    assert routes.batches[0] == ["d"]
    await removals.wait()
    assert routes.batches == [["d"], ["a", "b", "c"]]
