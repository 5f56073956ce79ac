"""The Redis backend's key layout and Lua scripts, and the one place that builds their calls.

The scripts are the ``lua/*.lua`` files of this package, each headed by its KEYS, ARGV and
return values; :class:`ScriptCalls` builds the ``EVALSHA`` command of each from a task or an
id, in the order those headers give.

Key layout, version 1 (``<prefix>`` is ``TA_REDIS_KEY_PREFIX``, empty by default)::

    <prefix>taskstore:v1:task:<task_id>           STRING "<version>:<writer>:<task JSON>"
        version  1 on create, +1 on every update (optimistic concurrency)
        writer   hex token of the last write
    <prefix>taskstore:v1:task-requests:<task_id>  SET of the request ids the task contains
    <prefix>taskstore:v1:request:<request_id>     STRING, id of the task that wrote the
                                                  request id last
    <prefix>taskstore:v1:receipt:<token>          STRING, what the write with this token did
                                                  (created, new version, deleted); lives as
                                                  long as the writer may retry it
"""

import hashlib
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from teal_taskstore.persistence.redis_connections import LoopConnections

KEY_LAYOUT_VERSION = "v1"
# Where a write's packed context sits in its EVALSHA command (after the one key).
CONTEXT_ARGUMENT = 4


def lua_source(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class LuaScript:
    """A script's source and SHA-1, to run it with ``EVALSHA`` (loaded once per server)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())  # noqa: S324

    async def load_into(self, connections: LoopConnections) -> object:
        """Load the script into the server."""
        return await connections.execute("SCRIPT", "LOAD", self.source)

    @classmethod
    def load(cls, name: str, *, with_write_helpers: bool = False) -> "LuaScript":
        """The script ``lua/<name>.lua``, after the shared write helpers if asked."""
        helpers = with_helpers("write_helpers") if with_write_helpers else ""
        return cls(name, helpers + lua_source(name))


def with_helpers(helpers: str) -> str:
    """The helpers ``lua/<helpers>.lua`` with the string unpacking they use in front."""
    return lua_source("packing") + "\n" + lua_source(helpers) + "\n"


CREATE_SCRIPT = LuaScript.load("create", with_write_helpers=True)
UPDATE_SCRIPT = LuaScript.load("update", with_write_helpers=True)
DELETE_SCRIPT = LuaScript.load("delete", with_write_helpers=True)
LOAD_BY_REQUEST_SCRIPT = LuaScript.load("load_by_request_id")


def pack_strings(strings: Iterable[str]) -> str:
    """Pack strings into one script argument as ``<byte length>:<string>`` each (binary safe)."""
    return "".join([f"{len(i) if i.isascii() else len(i.encode())}:{i}" for i in strings])


@dataclass(frozen=True)
class KeyLayout:
    """Names of the keys of one store (see the module docstring)."""

    prefix: str = ""

    def _name(self, kind: str) -> str:
        return f"{self.prefix}taskstore:{KEY_LAYOUT_VERSION}:{kind}:"

    @cached_property
    def task_prefix(self) -> str:
        return self._name("task")

    @cached_property
    def task_requests_prefix(self) -> str:
        return self._name("task-requests")

    @cached_property
    def request_prefix(self) -> str:
        return self._name("request")

    def task(self, task_id: str) -> str:
        return self.task_prefix + task_id

    def task_requests(self, task_id: str) -> str:
        return self.task_requests_prefix + task_id

    def request(self, request_id: str) -> str:
        return self.request_prefix + request_id

    @cached_property
    def receipt_prefix(self) -> str:
        return self._name("receipt")


class ScriptCall:
    """One script run: the script (to load it on ``NOSCRIPT``) and its ``EVALSHA`` command.

    A write's context ends with its retry flag: every run after the first sends '1', so the
    script looks for the receipt of an earlier attempt only when there may be one.
    """

    __slots__ = ("command", "retrying", "script", "write")

    def __init__(self, script: LuaScript, command: tuple[str | int, ...], *, write: bool) -> None:
        self.script = script
        self.command = command
        self.write = write
        self.retrying = not write  # a read has no flag to change

    def run(self, connections: LoopConnections) -> Awaitable[Any]:
        """Send the command; the awaitable gives the script's reply."""
        if not self.retrying:
            self.retrying = True
            first_attempt = self.command
            context = str(first_attempt[CONTEXT_ARGUMENT])
            self.command = (
                *first_attempt[:CONTEXT_ARGUMENT],
                context[:-1] + "1",
                *first_attempt[CONTEXT_ARGUMENT + 1 :],
            )
            return connections.execute_write(*first_attempt)
        if self.write:
            return connections.execute_write(*self.command)
        return connections.execute(*self.command)


class ScriptCalls:
    """Builds each script's KEYS and ARGV, as its header in ``lua/`` lists them.

    Few arguments on purpose: redis-py packs each one separately, and at this call rate
    every argument costs measurable client time. So a write's context (key prefixes,
    expiries, task id, token) travels packed in one argument, its constant part packed once.
    """

    def __init__(self, keys: KeyLayout, ttl_seconds: int, receipt_seconds: int) -> None:
        self._keys = keys
        # The constant head of every write's context (see context() in write_helpers.lua).
        self._context_head = pack_strings(
            [
                keys.task_requests_prefix,
                keys.request_prefix,
                keys.receipt_prefix,
                str(ttl_seconds),
                str(receipt_seconds),
            ]
        )

    def _context(self, task_id: str, token: str, seen: str = "") -> str:
        # The retry flag last, one character: ScriptCall turns it to '1' for a retry.
        return self._context_head + pack_strings([task_id, token, seen, "0"])

    def create(
        self, task_id: str, task_json: str, request_ids: Iterable[str], token: str
    ) -> ScriptCall:
        context = self._context(task_id, token)
        return self._write(CREATE_SCRIPT, task_id, context, request_ids, task_json)

    def update(
        self,
        task_id: str,
        task_json: str,
        request_ids: Iterable[str],
        token: str,
        seen_version: int | None,
    ) -> ScriptCall:
        seen = "" if seen_version is None else str(seen_version)
        context = self._context(task_id, token, seen)
        return self._write(UPDATE_SCRIPT, task_id, context, request_ids, task_json)

    def _write(
        self,
        script: LuaScript,
        task_id: str,
        context: str,
        request_ids: Iterable[str],
        task_json: str,
    ) -> ScriptCall:
        """A create or update: the task's key, the context, its request ids, its JSON."""
        arguments = (context, pack_strings(request_ids), task_json)
        command = ("EVALSHA", script.sha, 1, self._keys.task(task_id), *arguments)
        return ScriptCall(script, command, write=True)

    def delete(self, task_id: str, token: str) -> ScriptCall:
        script = DELETE_SCRIPT
        context = self._context(task_id, token)
        return ScriptCall(
            script, ("EVALSHA", script.sha, 1, self._keys.task(task_id), context), write=True
        )

    def load_by_request_id(self, request_id: str) -> ScriptCall:
        keys, script = self._keys, LOAD_BY_REQUEST_SCRIPT
        return ScriptCall(
            script,
            (
                *("EVALSHA", script.sha, 1, keys.request(request_id)),
                *(keys.task_prefix, keys.task_requests_prefix, request_id),
            ),
            write=False,
        )
