"""The kopf wiring: every watch derives from the table of kinds (api/kinds.py)."""

import inspect
from types import SimpleNamespace
from typing import Any, cast

import kopf
from kopf._cogs.structs.references import Resource

from taskstore_operator.api.contract import MANAGED_BY_LABELS, TASKSTORE_LABEL
from taskstore_operator.api.kinds import (
    DEPLOYMENT,
    MANAGED_KINDS,
    SECRET,
    TASKSTORE,
    WATCHED_MANAGED_KINDS,
)
from taskstore_operator.kopf_wiring import (  # registers the handlers
    LIST_PAGE_SIZE,
    WORKER_IDLE_SECONDS,
    configure,
    managed_object_event,
    taskstore_event,
)
from taskstore_operator.plan.observed import ref_of
from taskstore_operator.runtime.managed_index import ManagedObjects
from taskstore_operator.runtime.password_secrets import PasswordSecrets
from taskstore_operator.runtime.seen import SeenVersions


def test_the_watches_are_the_table_of_kinds_and_secrets_are_not_watched() -> None:
    handlers = kopf.get_default_registry()._watching.get_all_handlers()
    watched = {
        (h.selector.group, h.selector.version, h.selector.plural): (h.id, h.labels)
        for h in handlers
        if h.selector is not None
    }

    # Run in kopf's event loop, where the reconcile queue lives: not in its thread pool.
    assert all(inspect.iscoroutinefunction(h.fn) for h in handlers)
    assert set(WATCHED_MANAGED_KINDS) == set(MANAGED_KINDS) - {SECRET}
    assert watched == {
        (TASKSTORE.group, TASKSTORE.version, TASKSTORE.plural): ("taskstore_event", None),
        (DEPLOYMENT.group, DEPLOYMENT.version, DEPLOYMENT.plural): ("deployment_event", None),
        **{
            (kind.group, kind.version, kind.plural): ("managed_object_event", MANAGED_BY_LABELS)
            for kind in WATCHED_MANAGED_KINDS
        },
    }


def test_only_the_managed_objects_are_sent_kopf_keeps_no_copies_and_lists_in_pages() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)

    selector = ",".join(f"{key}={value}" for key, value in MANAGED_BY_LABELS.items())
    for kind in (*MANAGED_KINDS, DEPLOYMENT, TASKSTORE):
        resource = Resource(kind.group, kind.version, kind.plural, namespaced=True)
        expected = [selector] if kind in WATCHED_MANAGED_KINDS else []
        assert list(settings.watching.label_selectors.collect(resource)) == expected
    body = kopf.Body({"metadata": {"name": "a"}, "spec": {"replicas": 1}})
    assert settings.persistence.diffbase_storage.build(body=body) == {}
    assert settings.persistence.diffbase_storage.fetch(body=body) is None
    assert settings.watching.chunk_size == LIST_PAGE_SIZE
    assert settings.queueing.idle_timeout == WORKER_IDLE_SECONDS


class RecordingQueue:
    """A reconcile queue that records what is enqueued."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []

    def enqueue(self, key: tuple[str, str], kind: str, unless: Any = None) -> None:
        self.keys.append(key)


def managed_object(store: str) -> dict[str, Any]:
    labels = {**MANAGED_BY_LABELS, TASKSTORE_LABEL: store}
    metadata = {"name": f"{store}-redis", "namespace": "n", "uid": "o", "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata}


async def deliver(handler: Any, kind: str, raw: dict[str, Any], memo: Any) -> None:
    """Call a watch handler as kopf does (keyword arguments), with the event's object."""
    meta = raw["metadata"]
    event = {"type": kind, "object": raw}
    await handler(
        body=kopf.Body(cast(Any, raw)),
        event=event,
        namespace=meta["namespace"],
        name=meta["name"],
        memo=memo,
    )


async def test_the_objects_of_a_deleted_store_do_not_reconcile_it_again() -> None:
    memo = SimpleNamespace(
        queue=RecordingQueue(),
        seen=SeenVersions(),
        stores=set(),
        managed=ManagedObjects(),
        password_secrets=PasswordSecrets(),
    )
    store = {"metadata": {"name": "cache", "namespace": "n", "uid": "s"}}
    await deliver(taskstore_event, "ADDED", store, memo)
    await deliver(managed_object_event, "ADDED", managed_object("cache"), memo)
    assert memo.queue.keys == [("n", "cache"), ("n", "cache")]

    await deliver(taskstore_event, "DELETED", store, memo)
    memo.queue.keys.clear()
    await deliver(managed_object_event, "DELETED", managed_object("cache"), memo)
    assert memo.queue.keys == []
    assert memo.managed.get(ref_of(managed_object("cache"))) is None
