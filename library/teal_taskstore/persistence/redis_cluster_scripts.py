"""Cluster mode's key layout (version 2) and its operations, each a few routed commands.

Key layout, version 2, used only with ``TA_REDIS_MODE=cluster`` (``<prefix>`` is
``TA_REDIS_KEY_PREFIX``)::

    <prefix>taskstore:v2:{task:<task_id>}:task           STRING "<version>:<writer>:<JSON>"
    <prefix>taskstore:v2:{task:<task_id>}:requests       HASH request id -> the token of the
                                                         write that last wrote its entry
    <prefix>taskstore:v2:{task:<task_id>}:receipt:<tok>  STRING, what the write did
    <prefix>taskstore:v2:{request:<request_id>}          STRING "<token>:<task_id>": the
                                                         write (token) and task that wrote
                                                         the request id last

A task's keys share the hash tag ``task:<task_id>`` (never empty, and cut at the first
``}`` the same way for each), so one script writes them atomically in their slot; every key
a script touches is in its ``KEYS``. Index entries live in their own slots, so they are
written apart, in this order: the entries of all the task's request ids first (``SET``: one
pipeline per other master, shared with the other writes of the same loop turn, then those
on the task's own master in the pipeline of the task's script, before it), then the
task's script; the entries of request ids the task
dropped are removed after the caller's answer (``redis_cluster_stale_entries``), each only
if it still holds what the write that last indexed the id for this task put there. A crash
between leaves entries naming a task without the id, which ``load_by_request_id`` treats as
absent; an acknowledged task's ids always have their entries.
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes, routes_of
from teal_taskstore.persistence.redis_cluster_stale_entries import StaleEntryRemovals
from teal_taskstore.persistence.redis_connections import LoopConnections
from teal_taskstore.persistence.redis_scripts import (
    LuaScript,
    lua_source,
    pack_strings,
    with_helpers,
)

CLUSTER_KEY_LAYOUT_VERSION = "v2"


def _cluster_script(name: str) -> LuaScript:
    return LuaScript(name, with_helpers("cluster_helpers") + lua_source(name))


CREATE_SCRIPT = _cluster_script("cluster_create")
UPDATE_SCRIPT = _cluster_script("cluster_update")
DELETE_SCRIPT = _cluster_script("cluster_delete")
LOAD_SCRIPT = LuaScript("cluster_load", lua_source("cluster_load"))
UNINDEX_SCRIPT = LuaScript("cluster_unindex", lua_source("cluster_unindex"))


@dataclass(frozen=True)
class ClusterKeyLayout:
    """Names of the keys of one store in cluster mode (see the module docstring)."""

    prefix: str = ""

    def _tagged(self, tag: str) -> str:
        return f"{self.prefix}taskstore:{CLUSTER_KEY_LAYOUT_VERSION}:{{{tag}}}"

    def task(self, task_id: str) -> str:
        return self._tagged(f"task:{task_id}") + ":task"

    def task_requests(self, task_id: str) -> str:
        return self._tagged(f"task:{task_id}") + ":requests"

    def receipt(self, task_id: str, token: str) -> str:
        return self._tagged(f"task:{task_id}") + f":receipt:{token}"

    def request(self, request_id: str) -> str:
        return self._tagged(f"request:{request_id}")


async def run_script(
    routes: ClusterRoutes, script: LuaScript, keys: tuple[str, ...], *args: Any
) -> Any:
    """A read-only script by ``EVALSHA`` on the master of ``keys[0]``; ``EVAL`` on a node
    without it."""
    try:
        return await routes.execute(keys[0], "EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        return await routes.execute(keys[0], "EVAL", script.source, len(keys), *keys, *args)


class ClusterWrite:
    """One write: index entries, the task's script, stale entries removed; repeatable.

    Two round trips on the caller's path at most (:meth:`ClusterRoutes.execute_after`); the
    stale entries are removed after the answer. Every attempt after the first tells the
    script it is a retry, so it answers from the receipt of an attempt that went through.
    The reply has the shape of layout v1's.
    """

    script: LuaScript | None = None  # each node's script cache is filled by _run

    def __init__(
        self,
        calls: "ClusterCalls",
        task_id: str,
        script: LuaScript,
        context: list[str],
        arguments: tuple[str, ...],
        request_ids: list[str],
    ) -> None:
        self._calls = calls
        self._task_id = task_id
        self._script = script
        self._context = context
        self._arguments = arguments
        self._request_ids = request_ids
        self._retrying = False

    def run(self, connections: LoopConnections) -> Awaitable[Any]:
        """Run the write's commands; the awaitable gives its reply as layout v1 has it."""
        return self._run(routes_of(connections))

    async def _run(self, routes: ClusterRoutes) -> Any:
        calls, keys, task_id = self._calls, self._calls.keys, self._task_id
        retry = "1" if self._retrying else "0"
        self._retrying = True
        token = self._context[2]
        entries = [
            (keys.request(i), calls.index_command(i, entry_value(token, task_id)))
            for i in self._request_ids
        ]
        task_keys = (keys.task(task_id), keys.task_requests(task_id), keys.receipt(task_id, token))
        arguments = (pack_strings([*self._context, retry]), *self._arguments)
        try:
            reply = await routes.execute_after(
                entries, task_keys[0], "EVALSHA", self._script.sha, 3, *task_keys, *arguments
            )
        except NoScriptError:  # this node's first run of the script; the entries are written
            reply = await routes.execute(
                task_keys[0], "EVAL", self._script.source, 3, *task_keys, *arguments, write=True
            )
        if not isinstance(reply, list):
            return reply
        dropped = [bytes(i).decode() for i in reply[1:]]
        if dropped:
            await calls.stale_entries.remove(
                routes,
                [
                    (
                        keys.request(request_id),
                        (
                            "EVAL",
                            UNINDEX_SCRIPT.source,
                            1,
                            keys.request(request_id),
                            entry_value(writer, task_id),
                        ),
                    )
                    for request_id, writer in zip(dropped[::2], dropped[1::2], strict=True)
                ],
            )
        return int(reply[0])


def entry_value(token: str, task_id: str) -> str:
    """An index entry as the write with ``token`` makes it (tokens are hex: no colon)."""
    return f"{token}:{task_id}"


class ClusterRead:
    """``load_by_request_id`` in cluster mode: the entry's ``GET``, then the task's check."""

    script: LuaScript | None = None

    def __init__(self, keys: ClusterKeyLayout, request_id: str) -> None:
        self._keys = keys
        self._request_id = request_id

    def run(self, connections: LoopConnections) -> Awaitable[Any]:
        return self._run(routes_of(connections))

    async def _run(self, routes: ClusterRoutes) -> Any:
        entry = self._keys.request(self._request_id)
        value = await routes.execute(entry, "GET", entry)
        if value is None:
            return None
        named = bytes(value).partition(b":")[2].decode()
        task_keys = (self._keys.task(named), self._keys.task_requests(named))
        return await run_script(routes, LOAD_SCRIPT, task_keys, self._request_id)


class ClusterCalls:
    """Builds cluster mode's operations (the counterpart of ``ScriptCalls``)."""

    def __init__(
        self,
        keys: ClusterKeyLayout,
        ttl_seconds: int,
        receipt_seconds: int,
        stale_entries: StaleEntryRemovals,
    ) -> None:
        self.keys = keys
        self.stale_entries = stale_entries
        self._ttl = ttl_seconds
        self._receipt = str(receipt_seconds)

    def index_command(self, request_id: str, value: str) -> tuple[Any, ...]:
        entry = self.keys.request(request_id)
        if self._ttl > 0:
            return ("SET", entry, value, "EX", self._ttl)
        return ("SET", entry, value)

    def _write(
        self,
        script: LuaScript,
        task_id: str,
        token: str,
        seen: str,
        arguments: tuple[str, ...],
        request_ids: list[str],
    ) -> ClusterWrite:
        context = [str(self._ttl), self._receipt, token, seen]
        return ClusterWrite(self, task_id, script, context, arguments, request_ids)

    def create(
        self, task_id: str, task_json: str, request_ids: list[str], token: str
    ) -> ClusterWrite:
        ids = pack_strings(request_ids)
        return self._write(CREATE_SCRIPT, task_id, token, "", (ids, task_json), request_ids)

    def update(
        self,
        task_id: str,
        task_json: str,
        request_ids: list[str],
        token: str,
        seen_version: int | None,
    ) -> ClusterWrite:
        seen = "" if seen_version is None else str(seen_version)
        ids = pack_strings(request_ids)
        return self._write(UPDATE_SCRIPT, task_id, token, seen, (ids, task_json), request_ids)

    def delete(self, task_id: str, token: str) -> ClusterWrite:
        return self._write(DELETE_SCRIPT, task_id, token, "", (), [])

    def load_by_request_id(self, request_id: str) -> ClusterRead:
        return ClusterRead(self.keys, request_id)
