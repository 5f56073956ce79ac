"""Which sentinel events hold writes, and when the hold ends: pure code, no I/O.

The messages are those three sentinels published during a ``SENTINEL FAILOVER`` and a
``kill -9`` on the harness (Redis 7.0.15), in the order one client received them.
"""

import pytest

from teal_taskstore.persistence.redis_sentinel_events import (
    FailoverEvent,
    FailoverHold,
    Outcome,
    parse_event,
)

OLD = ("127.0.0.1", 36549)
NEW = ("127.0.0.1", 35351)
MASTER = "master mymaster 127.0.0.1 36549"
SLAVE = "slave 127.0.0.1:35351 127.0.0.1 35351 @ mymaster 127.0.0.1 36549"

# (seconds after the SENTINEL FAILOVER call, sentinel, channel, data)
PLANNED_SWITCH = [
    (0.007, "s1", "+try-failover", MASTER),
    (0.051, "s1", "+elected-leader", MASTER),
    (0.051, "s1", "+failover-state-select-slave", MASTER),
    (0.142, "s1", "+selected-slave", SLAVE),
    (0.142, "s1", "+failover-state-send-slaveof-noone", SLAVE),
    # The replica said ROLE master at 0.246 s.
    (0.225, "s1", "+failover-state-wait-promotion", SLAVE),
    (1.099, "s1", "+promoted-slave", SLAVE),
    (1.099, "s1", "+failover-state-reconf-slaves", MASTER),
    (1.202, "s2", "+switch-master", "mymaster 127.0.0.1 36549 127.0.0.1 35351"),
    (1.202, "s3", "+switch-master", "mymaster 127.0.0.1 36549 127.0.0.1 35351"),
    (2.221, "s1", "+failover-end", MASTER),
    (2.221, "s1", "+switch-master", "mymaster 127.0.0.1 36549 127.0.0.1 35351"),
]


@pytest.mark.parametrize(
    ("channel", "data", "expected"),
    [
        ("+try-failover", MASTER, FailoverEvent("start", OLD)),
        ("+failover-state-send-slaveof-noone", SLAVE, FailoverEvent("start", OLD)),
        ("+switch-master", "mymaster 127.0.0.1 36549 127.0.0.1 35351",
         FailoverEvent("switch", OLD, NEW)),
        ("-failover-abort-not-elected", MASTER, FailoverEvent("end", OLD)),
        # Older sentinels append the epoch.
        ("-failover-abort-no-good-slave", f"{MASTER} 7", FailoverEvent("end", OLD)),
        ("+failover-end-for-timeout", MASTER, FailoverEvent("end", OLD)),
        # Another master's, other events, and what cannot be read: nothing.
        ("+try-failover", "master other 127.0.0.1 36549", None),
        ("+switch-master", "other 127.0.0.1 36549 127.0.0.1 35351", None),
        ("+sdown", MASTER, None),
        ("+try-failover", "", None),
        ("+try-failover", "master mymaster 127.0.0.1 notaport", None),
        ("+switch-master", "mymaster 127.0.0.1", None),
        ("+selected-slave", "slave 127.0.0.1:35351 @ mymaster", None),
    ],
)  # fmt: skip
def test_parse_event(channel: str, data: str, expected: FailoverEvent | None) -> None:
    assert parse_event(channel, data, "mymaster") == expected


def test_a_planned_switch_holds_writes_from_the_first_event_until_the_switch() -> None:
    hold = FailoverHold()
    current: tuple[str, int] | None = OLD
    held_at: list[float] = []
    followed: list[tuple[float, tuple[str, int]]] = []
    for at, sentinel, channel, data in PLANNED_SWITCH:
        event = parse_event(channel, data, "mymaster")
        assert event is not None
        outcome = hold.observe(sentinel, event, current, at)
        if outcome.follow is not None:
            followed.append((at, outcome.follow))
            current = outcome.follow
        if hold.remaining(at) > 0:
            held_at.append(at)
    # Held from +try-failover, well before the promotion (0.246 s), to the first switch.
    assert held_at[0] == 0.007
    assert max(held_at) == 1.099
    assert followed[0] == (1.202, NEW)
    assert not hold.active


def test_a_losing_sentinels_abort_does_not_release_the_leaders_hold() -> None:
    hold = FailoverHold()
    start = FailoverEvent("start", OLD)
    assert hold.observe("leader", start, OLD, 1.19) == Outcome()
    assert hold.observe("loser", start, OLD, 1.19) == Outcome()
    assert hold.observe("loser", FailoverEvent("end", OLD), OLD, 1.5) == Outcome(ask=True)
    assert hold.remaining(1.5) > 0
    assert hold.observe("leader", FailoverEvent("switch", OLD, NEW), OLD, 2.3) == Outcome(
        follow=NEW
    )
    assert hold.remaining(2.3) == 0


def test_steps_of_a_failover_already_followed_hold_nothing() -> None:
    hold = FailoverHold()
    hold.observe("s2", FailoverEvent("switch", OLD, NEW), OLD, 1.2)
    # The leader's late step about the old master, read after another sentinel's switch.
    hold.observe("s1", FailoverEvent("start", OLD), NEW, 1.21)
    assert not hold.active
    # An end nobody held: nothing to ask.
    assert hold.observe("s1", FailoverEvent("end", OLD), NEW, 2.2) == Outcome()


def test_before_the_master_is_known_any_failover_of_it_holds() -> None:
    hold = FailoverHold()
    hold.observe("s1", FailoverEvent("start", OLD), None, 0.0)
    assert hold.remaining(0.0) > 0


def test_a_hold_no_event_ends_expires_after_its_limit() -> None:
    hold = FailoverHold(limit_seconds=10.0)
    hold.observe("s1", FailoverEvent("start", OLD), OLD, 100.0)
    hold.observe("s2", FailoverEvent("start", OLD), OLD, 103.0)
    assert hold.remaining(105.0) == pytest.approx(8.0)
    assert hold.remaining(110.0) == pytest.approx(3.0)  # s1's expired, s2's left
    assert hold.remaining(113.0) == 0.0
    assert not hold.active
