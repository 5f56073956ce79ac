"""The managed Redis objects that exist, by name, as the watches and the operator's writes show.

A store without a managed Redis reads its managed objects only to delete those it still
owns (a former managed backend's). It reads them here, not with a GET per kind on every
reconcile. Only what that needs is kept of each object: its identity, version and owners.

The watches of the managed kinds (selected by the managed-by label) fill the index, and
the reconciler writes through it (what it creates, applies and deletes), so it is never
behind the operator's own writes. It may be behind a watch: an object that appears late
enqueues its store through its own event, which then deletes it; a stale entry costs a
deletion that finds the object gone (deletions name the uid, so never another object).
Secrets are not watched (see :mod:`taskstore_operator.runtime.password_secrets`) and are
never here.
"""

import threading
from collections.abc import Mapping
from typing import Any

from taskstore_operator.api.kinds import WATCHED_MANAGED_KINDS
from taskstore_operator.plan.observed import ObjectRef, ref_of

# The kinds the index holds: those watched.
INDEXED_KINDS = frozenset(kind.kind for kind in WATCHED_MANAGED_KINDS)
# The metadata kept of each object: enough to address it, to see whose it is, and to
# remember its version (runtime.seen).
KEPT_METADATA = ("name", "namespace", "uid", "resourceVersion", "ownerReferences")


class ManagedObjects:
    """By (kind, namespace, name): the object's identity, version and owners.

    Updated from the event loop and the reconcile threads: guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, manifest: Mapping[str, Any]) -> None:
        """Remember an object as it is now (from its watch event or a write's response)."""
        if manifest["kind"] not in INDEXED_KINDS:
            return
        metadata = manifest["metadata"]
        kept = {
            "apiVersion": manifest["apiVersion"],
            "kind": manifest["kind"],
            "metadata": {key: metadata[key] for key in KEPT_METADATA if key in metadata},
        }
        with self._lock:
            self._objects[_key(ref_of(manifest))] = kept

    def drop(self, ref: ObjectRef) -> None:
        """Forget an object that is gone."""
        with self._lock:
            self._objects.pop(_key(ref), None)

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """What is known of the object ``ref`` names, or None when it is not known to exist."""
        with self._lock:
            return self._objects.get(_key(ref))


def _key(ref: ObjectRef) -> tuple[str, str, str]:
    return (ref.kind, ref.namespace, ref.name)
