"""The kopf wiring: every watch derives from the table of kinds (api/kinds.py)."""

import kopf

import taskstore_operator.kopf_wiring  # noqa: F401 (registers the handlers)
from taskstore_operator.api.contract import MANAGED_BY_LABELS
from taskstore_operator.api.kinds import DEPLOYMENT, MANAGED_KINDS, SECRET, TASKSTORE


def test_the_watches_are_the_table_of_kinds_and_secrets_are_not_watched() -> None:
    handlers = kopf.get_default_registry()._watching.get_all_handlers()
    watched = {
        (h.selector.group, h.selector.version, h.selector.plural): (h.id, h.labels)
        for h in handlers
        if h.selector is not None
    }

    assert watched == {
        (TASKSTORE.group, TASKSTORE.version, TASKSTORE.plural): ("taskstore_event", None),
        (DEPLOYMENT.group, DEPLOYMENT.version, DEPLOYMENT.plural): ("deployment_event", None),
        **{
            (kind.group, kind.version, kind.plural): ("managed_object_event", MANAGED_BY_LABELS)
            for kind in MANAGED_KINDS
            if kind is not SECRET
        },
    }
