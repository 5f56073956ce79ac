"""The kopf wiring: every watch derives from the table of kinds (api/kinds.py)."""

from collections.abc import Callable
from typing import cast

import kopf

import taskstore_operator.kopf_wiring  # noqa: F401 (registers the handlers)
from taskstore_operator.api.contract import MANAGED_BY_LABELS
from taskstore_operator.api.kinds import DEPLOYMENT, MANAGED_KINDS, SECRET, TASKSTORE
from taskstore_operator.kopf_wiring import password_secrets as password_secrets_handler


def test_the_watches_are_the_table_of_kinds() -> None:
    handlers = kopf.get_default_registry()._watching.get_all_handlers()
    watched = {
        (h.selector.group, h.selector.version, h.selector.plural): (h.id, h.labels)
        for h in handlers
        if h.selector is not None
    }

    assert watched == {
        (TASKSTORE.group, TASKSTORE.version, TASKSTORE.plural): ("taskstore_event", None),
        (DEPLOYMENT.group, DEPLOYMENT.version, DEPLOYMENT.plural): ("deployment_event", None),
        (SECRET.group, SECRET.version, SECRET.plural): ("secret_event", None),
        **{
            (kind.group, kind.version, kind.plural): ("managed_object_event", MANAGED_BY_LABELS)
            for kind in MANAGED_KINDS
            if kind is not SECRET
        },
    }


def test_the_secret_index_names_the_data_and_the_sentinel_password_secrets() -> None:
    # kopf types the decorated function as its handler protocol; called here as written.
    password_secrets = cast(Callable[..., object], password_secrets_handler)
    spec = {
        "redis": {
            "external": {
                "passwordSecretRef": {"name": "data-auth"},
                "sentinelPasswordSecretRef": {"name": "sentinel-auth"},
            }
        }
    }
    assert password_secrets(namespace="ns", name="tasks", spec=spec) == {
        ("ns", "data-auth"): "tasks",
        ("ns", "sentinel-auth"): "tasks",
    }
    assert password_secrets(namespace="ns", name="tasks", spec={"redis": {"managed": {}}}) == {}
