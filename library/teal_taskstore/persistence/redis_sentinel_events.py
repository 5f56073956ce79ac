"""What the sentinels' failover events mean for writes: a pure decision, no I/O.

A sentinel publishes each step of a failover on its own pub/sub. The leader announces the
failover (``+try-failover``, ``+elected-leader``, ``+failover-state-*``) 200-250 ms before
its ``SLAVEOF NO ONE`` promotes a replica (measured on Redis 7.0; one step per sentinel
timer tick), and ``+switch-master`` names the new master once the switch is done. From the
first announcement until the switch (or an abort, the end, or ``HOLD_LIMIT_SECONDS``)
writes are held: a write the old master acknowledged after the promotion would be lost
when it is demoted, even when a replica acknowledged its ``WAIT``.
"""

from dataclasses import dataclass
from typing import Literal

Address = tuple[str, int]

# What the manager subscribes to (PSUBSCRIBE) on every sentinel.
PATTERNS = (
    "+try-failover",
    "+elected-leader",
    "+failover-state-*",
    "+selected-slave",
    "+promoted-slave",
    "+switch-master",
    "-failover-abort-*",
    "+failover-end*",
)
# A hold that no event ends is dropped after this; the once-a-second check of the
# sentinels (which refuses a master being failed over) then decides alone.
HOLD_LIMIT_SECONDS = 10.0

_STARTS = frozenset({"+try-failover", "+elected-leader", "+selected-slave", "+promoted-slave"})


@dataclass(frozen=True)
class FailoverEvent:
    """One step of a failover: its ``master`` (the old one) and, for a switch, the new one."""

    kind: Literal["start", "end", "switch"]
    master: Address
    new_master: Address | None = None


@dataclass(frozen=True)
class Outcome:
    """What to do after an event: ``follow`` a new master; ``ask`` the sentinels again."""

    follow: Address | None = None
    ask: bool = False


def _address(ip: str, port: str) -> Address:
    return ip, int(port)


def parse_event(channel: str, data: str, master_name: str) -> FailoverEvent | None:
    """The event of ``master_name`` in one message; None for others or unreadable ones.

    Formats (Sentinel's ``%@``): ``master <name> <ip> <port>`` or ``slave <ip:port> <ip>
    <port> @ <master name> <master ip> <master port>``, maybe followed by more fields;
    ``+switch-master <name> <old ip> <old port> <new ip> <new port>``.
    """
    words = data.split()
    try:
        if channel == "+switch-master":
            if len(words) < 5 or words[0] != master_name:
                return None
            return FailoverEvent(
                "switch", _address(words[1], words[2]), _address(words[3], words[4])
            )
        if channel in _STARTS or channel.startswith("+failover-state-"):
            kind: Literal["start", "end"] = "start"
        elif channel.startswith("-failover-abort-") or channel.startswith("+failover-end"):
            kind = "end"
        else:
            return None
        if "@" in words:
            name, ip, port = words[words.index("@") + 1 : words.index("@") + 4]
        elif words[0] == "master":
            name, ip, port = words[1:4]
        else:
            return None
    except (ValueError, IndexError):
        return None
    if name != master_name:
        return None
    try:
        return FailoverEvent(kind, _address(ip, port))
    except ValueError:
        return None


class FailoverHold:
    """Whether writes are held now, from the events each sentinel published.

    Each sentinel's failover is held on its own (several may try at once after a crash;
    a loser's abort must not release the leader's), and only while it is of the master
    written to now: steps of a failover already switched away from, read late from
    another sentinel's connection, hold nothing.
    """

    def __init__(self, limit_seconds: float = HOLD_LIMIT_SECONDS) -> None:
        self._limit = limit_seconds
        self._since: dict[str, float] = {}

    @property
    def active(self) -> bool:
        """Some failover holds writes (perhaps expired: see ``remaining``)."""
        return bool(self._since)

    def observe(
        self, sentinel: str, event: FailoverEvent, current: Address | None, now: float
    ) -> Outcome:
        """Take ``event`` from ``sentinel``, with ``current`` the master written to now."""
        if event.kind == "switch":
            self._since.clear()
            return Outcome(follow=event.new_master)
        if event.kind == "end":
            if self._since.pop(sentinel, None) is None:
                return Outcome()
            return Outcome(ask=True)  # aborted, or ended without a switch seen here
        if current is None or event.master == current:
            self._since.setdefault(sentinel, now)
        return Outcome()

    def remaining(self, now: float) -> float:
        """Seconds until the hold ends by itself (0: no hold); expired holds are dropped."""
        for sentinel, since in list(self._since.items()):
            if now - since >= self._limit:
                del self._since[sentinel]
        if not self._since:
            return 0.0
        return max(since + self._limit - now for since in self._since.values())
