"""Which master the sentinels' answers name: the sequences seen during real failovers.

Each row is what three sentinels answered to ``SENTINEL MASTER`` at one moment of a
``kill -9`` or a ``SENTINEL FAILOVER`` on the harness (port/config-epoch/flags).
"""

import pytest

from teal_taskstore.persistence.redis_sentinel_master import choose_master


def answers(*rows: str) -> list[dict[str, str]]:
    states = []
    for n, row in enumerate(rows):
        port, epoch, flags = row.split("/")
        states.append(
            {"ip": "10.0.0.1", "port": port, "config-epoch": epoch, "flags": flags,
             "sentinel": f"s{n}"}
        )  # fmt: skip
    return states


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # Healthy; the sentinels' own links count for nothing.
        (("6001/0/master", "6001/0/master,disconnected", "6001/0/master"), 6001),
        # One sentinel's subjective view (a partition) stops nobody.
        (("6001/0/s_down,master", "6001/0/master", "6001/0/master"), 6001),
        # kill -9: down by quorum, then a failover; no master until one switched.
        (("6001/0/s_down,o_down,master", "6001/0/s_down,o_down", "6001/0/master"), None),
        (("6001/0/s_down,o_down,master", "6001/1/s_down,failover_in_progress", "6001/0/x"), None),
        # Two switched (epoch 1, new port), the leader still finishing on the old one.
        (("6002/1/master,disconnected", "6001/1/o_down,failover_in_progress", "6002/1/m"), 6002),
        # SENTINEL FAILOVER: the leader fails over a master the others still call healthy.
        (("6001/0/master", "6001/0/master,failover_in_progress", "6001/0/master"), None),
        # A sentinel left on the old configuration is outvoted by the newer one.
        (("6001/0/master", "6002/1/master", "6002/1/master"), 6002),
    ],
)
def test_the_master_named_by_the_newest_configuration_and_not_failing(
    rows: tuple[str, ...], expected: int | None
) -> None:
    address, why = choose_master(answers(*rows))
    if expected is None:
        assert address is None
        assert why
    else:
        assert address == ("10.0.0.1", expected)
        assert why == []
