"""OperationDeadlines: late operations time out, other cancellations pass through untouched."""

import asyncio

import pytest

from teal_taskstore.persistence.deadlines import OperationDeadlines


async def bounded(deadlines: OperationDeadlines, seconds: float) -> str:
    task = deadlines.enter()
    try:
        await asyncio.sleep(seconds)
        return "done"
    except asyncio.CancelledError:
        if deadlines.leave(task):
            raise TimeoutError from None
        raise
    finally:
        deadlines.leave(task)


async def test_an_operation_within_the_limit_completes() -> None:
    deadlines = OperationDeadlines(0.4)
    assert await bounded(deadlines, 0.01) == "done"
    assert deadlines.in_flight(asyncio.get_running_loop()) == []


async def test_a_late_operation_raises_timeout_within_one_and_a_quarter_limits() -> None:
    deadlines = OperationDeadlines(0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await bounded(deadlines, 10)
    assert 0.2 <= loop.time() - started < 0.2 * 1.25 + 0.2
    assert asyncio.current_task() is not None
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_many_concurrent_operations_share_one_timer() -> None:
    deadlines = OperationDeadlines(0.2)
    results = await asyncio.gather(
        *(bounded(deadlines, 0.01) for _ in range(50)),
        *(bounded(deadlines, 5) for _ in range(3)),
        return_exceptions=True,
    )
    assert results[:50] == ["done"] * 50
    assert all(isinstance(r, TimeoutError) for r in results[50:])


async def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    deadlines = OperationDeadlines(5)
    task = asyncio.create_task(bounded(deadlines, 10))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_timer_stops_when_nothing_is_in_flight() -> None:
    deadlines = OperationDeadlines(0.08)
    await bounded(deadlines, 0.01)
    await asyncio.sleep(0.1)
    assert deadlines._timer is None


def test_a_second_event_loop_gets_its_own_timer() -> None:
    deadlines = OperationDeadlines(0.1)

    async def leave_one_in_flight() -> None:
        deadlines.enter()  # never left: its loop closes with the timer pending

    asyncio.run(leave_one_in_flight())

    async def late_operation() -> None:
        with pytest.raises(TimeoutError):
            await bounded(deadlines, 10)

    asyncio.run(asyncio.wait_for(late_operation(), timeout=5))
