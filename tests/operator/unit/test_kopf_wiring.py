"""The kopf wiring: every watch derives from the table of kinds (api/kinds.py)."""

import inspect

import kopf
from kopf._cogs.structs.references import Resource

from taskstore_operator.api.contract import MANAGED_BY_LABELS
from taskstore_operator.api.kinds import (
    DEPLOYMENT,
    MANAGED_KINDS,
    SECRET,
    TASKSTORE,
    WATCHED_MANAGED_KINDS,
)
from taskstore_operator.kopf_wiring import LIST_PAGE_SIZE, configure  # registers the handlers


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
