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
# Flags with which a sentinel's master is no master to write to.
_UNAVAILABLE_FLAGS = frozenset({"s_down", "o_down", "disconnected", "failover_in_progress"})


class SentinelAuthenticationError(redis_errors.AuthenticationError):
    """Every sentinel refused ``TA_REDIS_SENTINEL_USERNAME``/``TA_REDIS_SENTINEL_PWD``."""


class MasterNotFoundError(redis_errors.ConnectionError):
    """No sentinel named a master that is up (a failover in progress, or none reachable)."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        """Ask every sentinel at once; the answer of the newest configuration wins.

        While a sentinel of that configuration runs a failover of the master, or sees it
        down, there is no master to write to: the old one may already have a promoted
        successor, and what it acknowledges now would be lost when it is demoted.
        """
        settings = self._settings
        answers = await asyncio.gather(*(self._ask(s) for s in settings.sentinels))
        states = [a for a in answers if isinstance(a, dict)]
        problems = [a for a in answers if isinstance(a, str)]
        if not states and all(p.endswith("refused the credentials") for p in problems):
            raise SentinelAuthenticationError(
                "every sentinel refused the sentinel credentials (TA_REDIS_SENTINEL_PWD, "
                "TA_REDIS_SENTINEL_USERNAME; not TA_REDIS_PWD, which is the data nodes')"
            )
        # Sentinels still on an older configuration speak of a master already replaced.
        epoch = max((int(state.get("config-epoch", "0")) for state in states), default=0)
        current = [state for state in states if int(state.get("config-epoch", "0")) == epoch]
        unavailable = [
            f"{state['sentinel']} sees the master {state.get('flags')}"
            for state in current
            if set(state.get("flags", "").split(",")) & _UNAVAILABLE_FLAGS
        ]
        if current and not unavailable:
            newest = current[0]
            address = (newest["ip"], int(newest["port"]))
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
