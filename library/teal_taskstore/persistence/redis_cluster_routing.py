"""Cluster mode's routing: which master serves a key, and commands sent there.

Used in cluster mode (docs/library.md, "Redis Sentinel and Redis Cluster"): the slot map
comes from ``CLUSTER SLOTS``, asked of the nodes known (the seed first); a
``MOVED`` reply patches one slot and sends the command again; an ``ASK`` reply sends
``ASKING`` and the command pipelined on one connection (redis-py 8.1's asyncio cluster
client loses ASK redirects under load, docs/ha-notes.md); a connection error marks the map
stale, so the next command reloads it first (a replica promoted after its master died).
Connections are the manager's own: one :class:`LoopConnections` per node and event loop.
"""

import asyncio
from collections.abc import Callable
from typing import Any, cast

from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ConnectionError,
    MovedError,
    TimeoutError,
    TryAgainError,
)

from teal_taskstore.persistence.redis_cluster_batches import WriteBatches
from teal_taskstore.persistence.redis_connections import (
    Address,
    LoopConnections,
    ReplicationShortfall,
)

SLOT_COUNT = 16384
# Redirects followed for one command before giving up: a reshard moves a slot once.
MAX_REDIRECTS = 5
# TRYAGAIN (a multi-key command on a slot whose keys are half moved) is sent again after
# TRYAGAIN_PAUSE, at most TRYAGAIN_LIMIT times: moving one slot's keys takes milliseconds.
TRYAGAIN_PAUSE = 0.01
TRYAGAIN_LIMIT = 300


class SlotMapError(ConnectionError):
    """No known node answered ``CLUSTER SLOTS``, or a slot has no master (retried like a
    connection error: the cluster may be failing over)."""


def parse_cluster_slots(reply: Any, seed_host: str) -> list[Address | None]:
    """Each slot's master from a ``CLUSTER SLOTS`` reply (``None`` for a slot unserved).

    A node that does not know its own address reports an empty host (or ``?``); it is the
    one answering, reached through ``seed_host``.
    """
    owners: list[Address | None] = [None] * SLOT_COUNT
    for entry in reply:
        first, last, master = int(entry[0]), int(entry[1]), entry[2]
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        address = (host if host not in ("", "?") else seed_host, int(master[1]))
        owners[first : last + 1] = [address] * (last - first + 1)
    return owners


class ClusterRoutes:
    """One event loop's connections to the cluster's nodes, and the slot map they share."""

    def __init__(
        self,
        seed: Address,
        node_connections: Callable[[Address], LoopConnections],
        batch_timeout: float,
    ) -> None:
        self._seed = seed
        self._node_connections = node_connections
        self._nodes: dict[Address, LoopConnections] = {}
        self._owners: list[Address | None] = []
        self._stale = True
        self._batches = WriteBatches(self._send_writes, batch_timeout)

    @property
    def slot_map(self) -> list[Address | None]:
        """Each slot's master as last learnt (empty before the first command)."""
        return list(self._owners)

    def node(self, address: Address) -> LoopConnections:
        """The connections to one node, made on first use."""
        connections = self._nodes.get(address)
        if connections is None:
            connections = self._nodes[address] = self._node_connections(address)
        return connections

    async def refresh(self) -> None:
        """Reload the slot map from the first known node that answers (the seed first)."""
        errors: list[str] = []
        for address in dict.fromkeys([self._seed, *self._nodes, *filter(None, self._owners)]):
            try:
                reply = await self.node(address).execute("CLUSTER", "SLOTS")
            except AuthenticationError:
                raise  # the same credentials on every node: asking others would not help
            except (ConnectionError, TimeoutError, OSError) as exc:
                errors.append(f"{address[0]}:{address[1]}: {exc or type(exc).__name__}")
                continue
            self._owners = parse_cluster_slots(reply, address[0])
            self._stale = False
            return
        raise SlotMapError("no cluster node answered CLUSTER SLOTS: " + "; ".join(errors))

    async def execute(
        self, key: str, *args: Any, write: bool = False, asking: Address | None = None
    ) -> Any:
        """Send ``args`` to the master of ``key``'s slot, following ``MOVED`` and ``ASK``.

        ``write`` sends it with ``execute_write`` (``WAIT`` pipelined when configured);
        ``asking`` is where an ``ASK`` already received points (it is sent there first).
        """
        slot = key_slot(key.encode())
        redirects = tries = 0
        while redirects < MAX_REDIRECTS:
            if asking is not None:
                address = asking
            else:
                if self._stale or not self._owners:
                    await self.refresh()
                owner = self._owners[slot]
                if owner is None:
                    self._stale = True
                    raise SlotMapError(f"slot {slot} is served by no master")
                address = owner
            connections = self.node(address)
            try:
                if asking is not None:
                    return await connections.execute_asking(*args, write=write)
                if write:
                    return await connections.execute_write(*args)
                return await connections.execute(*args)
            except MovedError as exc:
                self._owners[exc.slot_id] = (exc.host, exc.port)
                asking, redirects = None, redirects + 1
            except AskError as exc:
                asking, redirects = (exc.host, exc.port), redirects + 1
            except TryAgainError:
                tries += 1
                if tries >= TRYAGAIN_LIMIT:
                    raise
                # From the node an ASK named, too: sent there again (it answers MOVED if the
                # move was abandoned), not to the source, which would only ASK again.
                await asyncio.sleep(TRYAGAIN_PAUSE)
            except (ConnectionError, TimeoutError, OSError):
                self._stale = True
                raise
        self._stale = True
        raise SlotMapError(f"slot {slot} still redirected after {MAX_REDIRECTS} tries")

    def _owner(self, key: str) -> Address:
        owner = self._owners[key_slot(key.encode())]
        if owner is None:
            self._stale = True
            raise SlotMapError(f"the slot of {key!r} is served by no master")
        return owner

    async def execute_each(
        self, commands: list[tuple[str, tuple[Any, ...]]], *, write: bool = False
    ) -> list[Any]:
        """Run ``(key, args)`` commands: one pipeline per master, the masters at once.

        A command redirected (or failed with another error reply) is sent again alone
        through :meth:`execute`, which follows the redirect or raises the error. With
        ``write``, each pipeline ends with ``WAIT`` (when configured); a shortfall is raised
        once every command has run, as ``ReplicationShortfall`` carrying all the replies.
        """
        if self._stale or not self._owners:
            await self.refresh()
        replies: list[Any] = [None] * len(commands)
        shortfalls: list[ReplicationShortfall] = []
        await self._on_nodes(commands, self._by_node(commands), write, replies, shortfalls)
        if shortfalls:
            raise ReplicationShortfall(replies, shortfalls[0].acknowledged, shortfalls[0].wanted)
        return replies

    def _by_node(self, commands: list[tuple[str, tuple[Any, ...]]]) -> dict[Address, list[int]]:
        """The indexes of ``commands`` grouped by the master of each one's key."""
        by_node: dict[Address, list[int]] = {}
        for index, (key, _) in enumerate(commands):
            by_node.setdefault(self._owner(key), []).append(index)
        return by_node

    async def _on_nodes(
        self,
        commands: list[tuple[str, tuple[Any, ...]]],
        by_node: dict[Address, list[int]],
        write: bool,
        replies: list[Any],
        shortfalls: list[ReplicationShortfall],
    ) -> None:
        """One pipeline per master of ``by_node``, at once; each reply put in ``replies``."""

        async def on_node(address: Address, indexes: list[int]) -> None:
            sent = [commands[index][1] for index in indexes]
            answers = await self._pipeline(address, sent, write, shortfalls)
            for index, answer in zip(indexes, answers, strict=True):
                if isinstance(answer, Exception):
                    answer = await self._again(shortfalls, commands[index], write, answer)
                replies[index] = answer

        if len(by_node) == 1:  # no task to make (a gather wraps each coroutine in one)
            ((address, indexes),) = by_node.items()
            await on_node(address, indexes)
        else:
            await asyncio.gather(*(on_node(a, indexes) for a, indexes in by_node.items()))

    async def _pipeline(
        self,
        address: Address,
        sent: list[tuple[Any, ...]],
        write: bool,
        shortfalls: list[ReplicationShortfall],
    ) -> list[Any]:
        """One pipeline to one node: its replies (a ``WAIT`` shortfall is kept in
        ``shortfalls``, with them); a lost connection marks the slot map stale."""
        try:
            return await self.node(address).execute_pipeline(sent, write=write)
        except ReplicationShortfall as shortfall:
            shortfalls.append(shortfall)
            replies: list[Any] = shortfall.reply  # a pipeline's: every command's reply
            return replies
        except (ConnectionError, TimeoutError, OSError):
            self._stale = True
            raise

    async def _again(
        self,
        shortfalls: list[ReplicationShortfall],
        command: tuple[str, tuple[Any, ...]],
        write: bool,
        reply: Exception,
    ) -> Any:
        """A command of a pipeline sent again alone: its ``reply`` redirected it (another
        error reply is raised by sending it again); a ``WAIT`` shortfall is kept."""
        if isinstance(reply, MovedError):
            self._owners[reply.slot_id] = (reply.host, reply.port)
        asked = (reply.host, reply.port) if type(reply) is AskError else None
        try:
            return await self.execute(command[0], *command[1], write=write, asking=asked)
        except ReplicationShortfall as shortfall:
            shortfalls.append(shortfall)
            return shortfall.reply

    async def execute_after(
        self, first: list[tuple[str, tuple[Any, ...]]], key: str, *args: Any
    ) -> Any:
        """Write the ``(key, args)`` commands of ``first``, then ``args`` on ``key``'s master.

        Two round trips at most: the commands of ``first`` whose keys other masters serve go
        first (one pipeline per master, at once); those served by ``key``'s master go in one
        pipeline with ``args``, before it, so Redis runs them first. Each pipeline carries
        ``WAIT`` when configured; a shortfall anywhere is raised (``ReplicationShortfall``
        with ``args``'s reply) once everything has run. Should one of the commands sharing
        the master be redirected (its slot moved, the key's did not), it is sent again where
        it went before this returns. Returns ``args``'s reply.
        """
        if self._stale or not self._owners:
            await self.refresh()
        owner = self._owner(key)
        by_node = self._by_node(first)
        local = [first[index] for index in by_node.pop(owner, [])]
        shortfalls: list[ReplicationShortfall] = []
        if by_node:
            await self._batched(first, by_node, shortfalls)
        sent = [*(command[1] for command in local), args]
        replies = await self._pipeline(owner, sent, True, shortfalls)
        for command, reply in zip(local, replies, strict=False):
            if isinstance(reply, Exception):
                await self._again(shortfalls, command, True, reply)
        reply = replies[-1]
        if isinstance(reply, MovedError | AskError | TryAgainError):
            reply = await self._again(shortfalls, (key, args), True, reply)
        elif isinstance(reply, Exception):
            raise reply
        if shortfalls:
            raise ReplicationShortfall(reply, shortfalls[0].acknowledged, shortfalls[0].wanted)
        return reply

    async def _batched(
        self,
        commands: list[tuple[str, tuple[Any, ...]]],
        by_node: dict[Address, list[int]],
        shortfalls: list[ReplicationShortfall],
    ) -> None:
        """Write ``commands`` in the batches of the other writes of this turn (one pipeline
        per master for all of them, ``WriteBatches``); a redirected one sent again alone."""
        waiting = [
            (indexes, self._batches.submit(address, [commands[i][1] for i in indexes]))
            for address, indexes in by_node.items()
        ]
        try:
            for indexes, future in waiting:
                replies, shortfall = await future
                if shortfall is not None:
                    shortfalls.append(shortfall)
                for index, reply in zip(indexes, replies, strict=True):
                    if isinstance(reply, Exception):
                        await self._again(shortfalls, commands[index], True, reply)
        except BaseException:
            for _, future in waiting:  # no one will read them now (nor their errors)
                future.cancel()
            raise

    async def _send_writes(self, address: Address, commands: list[tuple[Any, ...]]) -> list[Any]:
        try:
            return await self.node(address).execute_pipeline(commands, write=True)
        except (ConnectionError, TimeoutError, OSError):
            self._stale = True
            raise

    async def close(self) -> None:
        """Close every node's connections."""
        nodes = list(self._nodes.values())
        self._nodes.clear()
        for connections in nodes:
            await connections.close()


def routes_of(connections: LoopConnections) -> ClusterRoutes:
    """The loop's cluster routes (set on every loop's connections in cluster mode)."""
    routes = connections.cluster
    assert routes is not None, "cluster calls need cluster connections"
    return cast(ClusterRoutes, routes)  # cluster connections are given ClusterRoutes only
