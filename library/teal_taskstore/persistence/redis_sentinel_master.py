"""``SentinelMaster``: where the master is, as Redis Sentinel says, kept current.

The manager's connections go to ``address``. It is asked of the sentinels (all at once,
with the sentinels' own credentials) when first needed, again whenever an operation
saw a sign that the master moved (a connection error, a timeout, ``READONLY``, a ``WAIT``
that fell short), and in the background every ``REFRESH_SECONDS`` while operations run.

Each event loop also subscribes to every sentinel's failover events (``PSUBSCRIBE``, with
the sentinels' credentials). From the first sign that a failover of the master started
until ``+switch-master``, writes are held (``held_writes``; ``redis_sentinel_events``
decides), so none reaches the old master after a replica's promotion: a planned switch
(``SENTINEL FAILOVER``) leaves it accepting writes, and acknowledging ``WAIT`` through the
third node, until Sentinel reconfigures it up to 10 s later. ``+switch-master`` is
followed at once. A subscription that breaks or falls silent is made again; the
background check covers what it missed. Concurrent askers on one loop share one discovery.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable

from redis import exceptions as redis_errors
from redis.asyncio.connection import Connection

from teal_taskstore.errors import hide_secret
from teal_taskstore.persistence.redis_sentinel_events import (
    PATTERNS,
    FailoverHold,
    parse_event,
)
from teal_taskstore.persistence.redis_settings import Address, RedisSettings

logger = logging.getLogger(__name__)

# How often a busy manager checks that the master has not moved.
REFRESH_SECONDS = 1.0
# A subscription silent this long is sent a PING; silent twice as long, it is made again.
SUBSCRIPTION_PING_SECONDS = 1.0
# Flags with which a sentinel's master is no master to write to: down by quorum, or being
# replaced. Not "s_down" (one sentinel's view: a sentinel cut off from a healthy master must
# not stop every write) nor "disconnected" (the sentinel's own link, down for about a
# second after every switch).
_UNAVAILABLE_FLAGS = frozenset({"o_down", "failover_in_progress"})


class SentinelAuthenticationError(redis_errors.AuthenticationError):
    """Every sentinel refused ``TA_REDIS_SENTINEL_USERNAME``/``TA_REDIS_SENTINEL_PWD``."""


class MasterNotFoundError(redis_errors.ConnectionError):
    """No sentinel named a master that is up (a failover in progress, or none reachable)."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def choose_master(states: list[dict[str, str]]) -> tuple[Address | None, list[str]]:
    """The master to write to, from what the sentinels answered; else why there is none.

    Only sentinels on the newest configuration (``config-epoch``) count: the others speak
    of a master already replaced. A master that one of them sees down (by quorum) or is
    failing over is no master to write to: it may already have a promoted successor, and
    what it acknowledges would be lost when it is demoted. Another address named by that
    configuration is the successor (a sentinel that switched before the leader finished).
    """
    epoch = max((int(state.get("config-epoch", "0")) for state in states), default=0)
    current = [state for state in states if int(state.get("config-epoch", "0")) == epoch]
    failing = {
        (state["ip"], state["port"]): f"{state['sentinel']} sees the master {state['flags']}"
        for state in current
        if set(state.get("flags", "").split(",")) & _UNAVAILABLE_FLAGS
    }
    candidates = [state for state in current if (state["ip"], state["port"]) not in failing]
    if candidates:
        return (candidates[0]["ip"], int(candidates[0]["port"])), []
    return None, list(failing.values())


class _LoopEvents:
    """One event loop's subscriptions to the sentinels, and the hold their events decide."""

    def __init__(self) -> None:
        self.hold = FailoverHold()
        # Replaced by a new one each time it is set: held writes wait on the one they saw.
        self.changed = asyncio.Event()
        self.watcher: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class SentinelMaster:
    """The master's address, asked of ``TA_REDIS_SENTINELS``; see the module docstring."""

    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings
        self.address: Address | None = None
        self._suspect = True
        self._checked_at = 0.0
        # Bumped by each +switch-master: a discovery that began before it must not undo it.
        self._switches = 0
        self._discoveries: dict[asyncio.AbstractEventLoop, asyncio.Task[Address]] = {}
        self._events: dict[asyncio.AbstractEventLoop, _LoopEvents] = {}

    def describe(self) -> str:
        """``master 'mymaster' (at h:p) via sentinels h:p,h:p``, without credentials."""
        sentinels = ",".join(f"{h}:{p}" for h, p in self._settings.sentinels)
        at = "" if self.address is None else f" (last at {self.address[0]}:{self.address[1]})"
        return f"master {self._settings.sentinel_master!r}{at} via sentinels {sentinels}"

    def suspect(self) -> None:
        """An operation saw a sign that the master moved: ask again before the next one."""
        self._suspect = True

    async def current(self) -> Address:
        """The master's address: asked when unknown or suspect, refreshed in the background.

        While a failover is announced the events decide (held writes wait for the switch),
        and asking would only answer that no master is available.
        """
        events = self._loop_events()
        now = time.monotonic()
        held = events.hold.active and events.hold.remaining(now) > 0
        if self.address is None or (self._suspect and not held):
            # Shielded: a caller cancelled by its deadline leaves the discovery to the others.
            return await asyncio.shield(self._discovery())
        if now - self._checked_at > REFRESH_SECONDS and not held:
            self._discovery()
        return self.address

    def held_writes(self) -> Awaitable[None] | None:
        """None when a write may go now; else what to await first (the failover's switch)."""
        events = self._events.get(asyncio.get_running_loop())
        if events is None or not events.hold.active:
            return None
        return self._released(events)

    async def _released(self, events: _LoopEvents) -> None:
        """Until the hold ends: the switch, an abort or its limit (then ask the sentinels)."""
        while (left := events.hold.remaining(time.monotonic())) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(events.changed.wait(), left)
        if self._suspect:
            await asyncio.shield(self._discovery())

    async def close_current(self) -> None:
        """Stop this event loop's subscriptions (a later operation makes them again)."""
        events = self._events.pop(asyncio.get_running_loop(), None)
        if events is not None and events.watcher is not None:
            events.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await events.watcher

    def _loop_events(self) -> _LoopEvents:
        loop = asyncio.get_running_loop()
        events = self._events.get(loop)
        if events is None:
            for gone in [other for other in self._events if other.is_closed()]:
                del self._events[gone]
            events = self._events[loop] = _LoopEvents()
            events.watcher = loop.create_task(self._watch_all(events))
        return events

    async def _watch_all(self, events: _LoopEvents) -> None:
        await asyncio.gather(*(self._watch(events, s) for s in self._settings.sentinels))

    def _discovery(self) -> "asyncio.Task[Address]":
        loop = asyncio.get_running_loop()
        running = self._discoveries.get(loop)
        if running is None:
            # Marked now, so a busy loop starts one background check per period, not many.
            self._checked_at = time.monotonic()
            running = loop.create_task(self._discover())
            self._discoveries[loop] = running
            running.add_done_callback(lambda task: self._finished(loop, task))
        return running

    def _finished(self, loop: asyncio.AbstractEventLoop, task: "asyncio.Task[Address]") -> None:
        if self._discoveries.get(loop) is task:
            del self._discoveries[loop]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a failed background check is not reported as never awaited.
            logger.debug("sentinel discovery failed: %s", task.exception())

    async def _discover(self) -> Address:
        """Ask every sentinel at once; ``choose_master`` decides from their answers."""
        settings = self._settings
        switches = self._switches
        answers = await asyncio.gather(*(self._ask(s) for s in settings.sentinels))
        if self._switches != switches and self.address is not None:
            return self.address  # a +switch-master came meanwhile: newer than these answers
        states = [a for a in answers if isinstance(a, dict)]
        problems = [a for a in answers if isinstance(a, str)]
        if not states and all(p.endswith("refused the credentials") for p in problems):
            raise SentinelAuthenticationError(
                "every sentinel refused the sentinel credentials (TA_REDIS_SENTINEL_PWD, "
                "TA_REDIS_SENTINEL_USERNAME; not TA_REDIS_PWD, which is the data nodes')"
            )
        address, unavailable = choose_master(states)
        if address is not None:
            self._moved_to(address)
            return address
        if unavailable:
            self._suspect = True  # every operation asks again until the failover is over
        raise MasterNotFoundError(
            f"no sentinel named an available master {settings.sentinel_master!r} "
            f"(TA_REDIS_SENTINEL_MASTER): {'; '.join(unavailable + problems)}"
        )

    async def _ask(self, sentinel: Address) -> dict[str, str] | str:
        """What one sentinel says of the master (``SENTINEL MASTER``), or what went wrong."""
        where = f"{sentinel[0]}:{sentinel[1]}"
        connection = self._settings.sentinel_connection(sentinel)
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            await connection.send_command("SENTINEL", "MASTER", self._settings.sentinel_master)
            reply = await connection.read_response()
        except redis_errors.AuthenticationError:
            return f"{where} refused the credentials"
        except redis_errors.ResponseError as exc:
            return f"{where}: {exc}"
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            return f"{where} unreachable ({exc or type(exc).__name__})"
        finally:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)
        fields = [_text(item) for item in reply]
        return {**dict(zip(fields[::2], fields[1::2], strict=False)), "sentinel": where}

    def _moved_to(self, address: Address) -> None:
        if address != self.address:
            if self.address is not None:
                logger.warning(
                    "Redis master %r moved from %s:%d to %s:%d",
                    self._settings.sentinel_master,
                    *self.address,
                    *address,
                )
            self.address = address
        self._suspect = False
        self._checked_at = time.monotonic()

    async def _watch(self, events: _LoopEvents, sentinel: Address) -> None:
        """Follow one sentinel's failover events for ever, subscribing again after a break.

        Never raises (but for cancellation): a subscription is an early warning; the
        background check of the sentinels stands in while it is down.
        """
        where = f"{sentinel[0]}:{sentinel[1]}"
        failures = 0
        while True:
            connection = self._settings.sentinel_connection(sentinel)
            try:
                await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_command("PSUBSCRIBE", *PATTERNS)
                if failures:
                    self.suspect()  # events may have been missed while it was down
                failures = 0
                await self._follow(events, where, connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: subscribe again, later
                hide_secret(exc, self._settings.sentinel_password)
                logger.debug("sentinel %s subscription: %s", where, exc or type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await connection.disconnect(nowait=True)
            failures += 1
            await asyncio.sleep(min(1.0, 0.05 * 2**failures))

    async def _follow(self, events: _LoopEvents, where: str, connection: Connection) -> None:
        """Read one subscription's messages until it breaks or stays silent after a PING."""
        pinged = False
        while True:
            message = await connection.read_response(timeout=SUBSCRIPTION_PING_SECONDS)
            if message is None:
                if pinged:
                    raise redis_errors.TimeoutError(f"no answer to PING from sentinel {where}")
                await connection.send_command("PING")
                pinged = True
                continue
            pinged = False
            if not isinstance(message, list) or len(message) != 4 or message[0] != b"pmessage":
                continue  # subscription confirmations, PING replies
            event = parse_event(
                _text(message[2]), _text(message[3]), self._settings.sentinel_master
            )
            if event is None:
                continue
            outcome = events.hold.observe(where, event, self.address, time.monotonic())
            logger.debug("sentinel %s: %s (%s)", where, event, outcome)
            if outcome.follow is not None:
                self._switches += 1
                self._moved_to(outcome.follow)
            if outcome.ask:
                self.suspect()
            events.wake()
