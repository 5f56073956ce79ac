"""``SentinelMaster``: where the master is, as Redis Sentinel says, kept current.

The manager's connections go to ``address``. It is asked of the sentinels (all at once,
with the sentinels' own credentials) when first needed, again whenever an operation
saw a sign that the master moved (a connection error, a timeout, ``READONLY``, a ``WAIT``
that fell short), and in the background every ``REFRESH_SECONDS`` while operations run: a
planned switch (``SENTINEL FAILOVER``) leaves the old master accepting writes for up to
10 s until Sentinel reconfigures it, and only asking finds the new one in that window.
Concurrent askers on one event loop share one discovery.
"""

import asyncio
import contextlib
import logging
import time

from redis import exceptions as redis_errors

from teal_taskstore.persistence.redis_settings import Address, RedisSettings

logger = logging.getLogger(__name__)

# How often a busy manager checks that the master has not moved.
REFRESH_SECONDS = 1.0
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


class SentinelMaster:
    """The master's address, asked of ``TA_REDIS_SENTINELS``; see the module docstring."""

    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings
        self.address: Address | None = None
        self._suspect = True
        self._checked_at = 0.0
        self._discoveries: dict[asyncio.AbstractEventLoop, asyncio.Task[Address]] = {}

    def describe(self) -> str:
        """``master 'mymaster' (at h:p) via sentinels h:p,h:p``, without credentials."""
        sentinels = ",".join(f"{h}:{p}" for h, p in self._settings.sentinels)
        at = "" if self.address is None else f" (last at {self.address[0]}:{self.address[1]})"
        return f"master {self._settings.sentinel_master!r}{at} via sentinels {sentinels}"

    def suspect(self) -> None:
        """An operation saw a sign that the master moved: ask again before the next one."""
        self._suspect = True

    async def current(self) -> Address:
        """The master's address: asked when unknown or suspect, refreshed in the background."""
        if self.address is None or self._suspect:
            # Shielded: a caller cancelled by its deadline leaves the discovery to the others.
            return await asyncio.shield(self._discovery())
        if time.monotonic() - self._checked_at > REFRESH_SECONDS:
            self._discovery()
        return self.address

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
        answers = await asyncio.gather(*(self._ask(s) for s in settings.sentinels))
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
