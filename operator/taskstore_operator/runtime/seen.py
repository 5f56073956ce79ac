"""Versions of objects each store's reconcile has read or written, so their events are skipped.

An event only tells a store something new if it carries a version of the object that
the store's reconciles have neither read nor written. The reconciler remembers the
resourceVersion of every object it reads and of every object its writes return, with
the store it reconciled; an event that carries exactly such a version does not enqueue
that store again (the other stores the object concerns are enqueued as usual). This
removes the reconciles that the operator's own writes would start (each would read
everything to find nothing to do: after its writes a store is converged, the generated
password Secret being planned around within the same reconcile), and the second
reconcile that a store's first listing at start would cause when a reconcile already
read the listed objects.

Only equal versions are compared, never their order: anyone else's change has a
version of its own and its own watch event (kopf hands every event of an object to the
handlers, in order), which enqueues as before, so a change made between a reconcile's
reads and its writes is never lost. The check waits for the end of a running reconcile
of the store (see :mod:`taskstore_operator.runtime.queue`): the watch often delivers
the event of a write before the write's response has been read and remembered.
"""

import threading
from collections.abc import Mapping
from typing import Any, Final

from taskstore_operator.runtime.queue import Key

# Versions remembered per object: one reconcile may write an object twice (a TaskStore's
# finalizer, then its status); older versions are dropped first.
MAX_VERSIONS: Final = 4


class SeenVersions:
    """By object uid: the versions read or written, each with the stores that saw it.

    Written from the reconcile threads, read from the event loop: guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, set[Key]]] = {}

    def record(self, key: Key, obj: Mapping[str, Any]) -> None:
        """Remember that ``key``'s reconcile read or wrote this version of ``obj``."""
        metadata = obj.get("metadata") or {}
        uid, version = metadata.get("uid"), metadata.get("resourceVersion")
        if not isinstance(uid, str) or not isinstance(version, str):
            return
        with self._lock:
            versions = self._seen.setdefault(uid, {})
            versions.setdefault(version, set()).add(key)
            if len(versions) > MAX_VERSIONS:
                del versions[next(iter(versions))]

    def seen(self, key: Key, uid: str, version: str) -> bool:
        """Whether ``key``'s reconcile read or wrote this version (then forgotten for it)."""
        with self._lock:
            versions = self._seen.get(uid)
            keys = versions.get(version) if versions is not None else None
            if versions is None or keys is None or key not in keys:
                return False
            keys.discard(key)
            if not keys:
                del versions[version]
            if not versions:
                del self._seen[uid]
            return True

    def forget(self, uid: str) -> None:
        """Forget a deleted object."""
        with self._lock:
            self._seen.pop(uid, None)
