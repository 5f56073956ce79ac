"""Cluster mode's key layout (version 2) and its operations, each a few routed commands.

Key layout, version 2, used only with ``TA_REDIS_MODE=cluster`` (``<prefix>`` is
``TA_REDIS_KEY_PREFIX``)::

    <prefix>taskstore:v2:{task:<task_id>}:task           STRING "<version>:<writer>:<JSON>"
    <prefix>taskstore:v2:{task:<task_id>}:requests       SET of the task's request ids
    <prefix>taskstore:v2:{task:<task_id>}:receipt:<tok>  STRING, what the write did
    <prefix>taskstore:v2:{request:<request_id>}          STRING, the id of the task that
                                                         wrote the request id last

A task's keys share the hash tag ``task:<task_id>`` (never empty, and cut at the first
``}`` the same way for each), so one script writes them atomically in their slot; every key
a script touches is in its ``KEYS``. Index entries live in their own slots, so they are
written apart, in this order: the entries of all the task's request ids first (``SET``, one
pipeline per master, the masters at once), then the task's script, then the removal of the
entries of request ids the task dropped (each only if it still names this task). A crash
between leaves entries naming a task without the id, which ``load_by_request_id`` treats as
absent; an acknowledged task's ids always have their entries.
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from teal_taskstore.persistence.redis_cluster_routing import ClusterRoutes
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


def routes_of(connections: LoopConnections) -> ClusterRoutes:
    """The loop's cluster routes (set on every loop's connections in cluster mode)."""
    routes = connections.cluster
    assert routes is not None, "cluster calls need cluster connections"
    return routes


async def run_script(
    routes: ClusterRoutes, script: LuaScript, keys: tuple[str, ...], *args: Any, write: bool
) -> Any:
    """``EVALSHA`` on the master of ``keys[0]``; a node without the script gets ``EVAL``."""
    try:
        return await routes.execute(
            keys[0], "EVALSHA", script.sha, len(keys), *keys, *args, write=write
        )
    except NoScriptError:
        return await routes.execute(
            keys[0], "EVAL", script.source, len(keys), *keys, *args, write=write
        )


class ClusterWrite:
    """One write: index entries, the task's script, stale entries removed; repeatable.

    Every attempt after the first tells the script it is a retry, so it answers from the
    receipt of an attempt that went through. The reply has the shape of layout v1's.
    """

    script: LuaScript | None = None  # each node's script cache is filled by run_script

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
        calls, keys = self._calls, self._calls.keys
        retry = "1" if self._retrying else "0"
        self._retrying = True
        if self._request_ids:
            await routes.execute_each(
                [
                    (keys.request(i), calls.index_command(i, self._task_id))
                    for i in self._request_ids
                ]
            )
        token = self._context[2]
        task_keys = (
            keys.task(self._task_id),
            keys.task_requests(self._task_id),
            keys.receipt(self._task_id, token),
        )
        reply = await run_script(
            routes,
            self._script,
            task_keys,
            pack_strings([*self._context, retry]),
            *self._arguments,
            write=True,
        )
        if not isinstance(reply, list):
            return reply
        result, dropped = int(reply[0]), [bytes(i).decode() for i in reply[1:]]
        if dropped:
            await routes.execute_each(
                [
                    (
                        keys.request(i),
                        (
                            "EVAL",
                            UNINDEX_SCRIPT.source,
                            1,
                            keys.request(i),
                            self._task_id,
                        ),
                    )
                    for i in dropped
                ]
            )
        return result


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
        task_id = await routes.execute(entry, "GET", entry)
        if task_id is None:
            return None
        named = bytes(task_id).decode()
        task_keys = (self._keys.task(named), self._keys.task_requests(named))
        return await run_script(routes, LOAD_SCRIPT, task_keys, self._request_id, write=False)


class ClusterCalls:
    """Builds cluster mode's operations (the counterpart of ``ScriptCalls``)."""

    def __init__(self, keys: ClusterKeyLayout, ttl_seconds: int, receipt_seconds: int) -> None:
        self.keys = keys
        self._ttl = ttl_seconds
        self._receipt = str(receipt_seconds)

    def index_command(self, request_id: str, task_id: str) -> tuple[Any, ...]:
        entry = self.keys.request(request_id)
        if self._ttl > 0:
            return ("SET", entry, task_id, "EX", self._ttl)
        return ("SET", entry, task_id)

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
