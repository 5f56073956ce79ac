"""``TaskVersions``: the store version each framework task object last saw, kept beside it.

The framework's task models have no private field to carry our optimistic-concurrency
version, and an extra attribute would change their equality and dumps. So the adapter
remembers versions per object, by identity, and forgets an entry when its object dies.
"""

import threading
import weakref
from collections.abc import Callable


class TaskVersions:
    """A weak, identity-keyed map from task objects to the store version they last saw."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[object], int]] = {}
        # Reentrant: an object may die (and its callback run) while this thread holds the lock.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, task: object) -> int | None:
        """The version ``task`` last saw, or ``None`` for an object this store never returned."""
        entry = self._entries.get(id(task))
        if entry is None or entry[0]() is not task:
            return None
        return entry[1]

    def remember(self, task: object, version: int | None) -> None:
        """Record that ``task`` now matches ``version`` (``None`` forgets it)."""
        key = id(task)
        with self._lock:
            if version is None:
                self._entries.pop(key, None)
                return
            entry = self._entries.get(key)
            if entry is not None and entry[0]() is task:
                self._entries[key] = (entry[0], version)
            else:
                self._entries[key] = (weakref.ref(task, self._forgetter(key)), version)

    def _forgetter(self, key: int) -> Callable[["weakref.ref[object]"], None]:
        entries, lock = self._entries, self._lock

        def forget(reference: "weakref.ref[object]") -> None:
            # Runs when the object dies; a newer object at the same address keeps its entry.
            with lock:
                entry = entries.get(key)
                if entry is not None and entry[0] is reference:
                    del entries[key]

        return forget
