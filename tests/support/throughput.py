"""Throughput and latency of an async operation under concurrency (for benchmark scripts)."""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Result:
    """One measurement: rate, latency percentiles and client CPU per operation."""

    ops_per_second: float
    p50_ms: float
    p99_ms: float
    # Client CPU per operation: unlike the rate, barely moved by other processes on a
    # shared machine, so the ratio of these is the steadier reading of our own cost.
    cpu_us: float


async def measure(
    operation: Callable[[int], Awaitable[Any]], count: int, concurrency: int
) -> Result:
    """Run ``operation(0..count-1)`` from ``concurrency`` workers; rate and latency percentiles."""
    latencies: list[float] = []
    next_index = iter(range(count))

    async def worker() -> None:
        for n in next_index:
            started = time.perf_counter()
            await operation(n)
            latencies.append(time.perf_counter() - started)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    latencies.sort()
    return Result(
        cpu_us=cpu / count * 1e6,
        ops_per_second=count / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    )


def median_result(samples: list[Result]) -> Result:
    """The median of each figure over several rounds."""
    return Result(
        ops_per_second=statistics.median(s.ops_per_second for s in samples),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        cpu_us=statistics.median(s.cpu_us for s in samples),
    )
