"""The password Secrets the stores read, checked now and then instead of watched.

The operator does not watch Secrets: a Secret watch needs ``list`` and ``watch`` on every
Secret of the namespaces it serves, and streams them all into its memory. It only needs
the Secrets its stores name (a managed Redis's generated Secret, an external Redis's
``passwordSecretRef`` and, with Sentinel, its ``sentinelPasswordSecretRef``), which each
reconcile reads with a GET. Changes made between reconciles are found by
:meth:`PasswordSecrets.changes`: every period, one GET per Secret a store names; a store
is enqueued when one of its Secrets appeared, went, or has a new version.
"""

import threading
from collections.abc import Callable, Mapping
from typing import Any

from taskstore_operator.plan.observed import parse
from taskstore_operator.render.agent_env import password_secret_ref, sentinel_password_secret_ref
from taskstore_operator.runtime.queue import Key

# What a check saw of a Secret: (uid, resourceVersion), or None when it is missing.
Version = tuple[str, str] | None
Read = Callable[[str, str], Mapping[str, Any] | None]


def secret_names(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The Secrets a TaskStore's passwords come from, if its spec parses and names any."""
    store = parse(manifest)
    if isinstance(store, Exception | None):
        return ()
    refs = (password_secret_ref(store), sentinel_password_secret_ref(store))
    return tuple(dict.fromkeys(ref.name for ref in refs if ref is not None))


class PasswordSecrets:
    """The Secrets each store names, and the version the last check saw of each.

    Updated from the event loop, checked from a thread: guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[Key, tuple[str, ...]] = {}
        self._versions: dict[tuple[Key, str], Version] = {}

    def update(self, key: Key, secrets: tuple[str, ...]) -> None:
        """The Secrets store ``key`` names now (none: it names none, or it is gone)."""
        with self._lock:
            if self._names.get(key, ()) == secrets:
                return
            for name in self._names.pop(key, ()):
                self._versions.pop((key, name), None)
            if secrets:
                self._names[key] = secrets

    def changes(self, read: Read) -> list[tuple[Key, Version]]:
        """Read each named Secret (``read(namespace, name)``); the stores whose Secret changed.

        A Secret's first check counts as a change; the caller skips the versions its
        reconciles have seen already.
        """
        with self._lock:
            named = [(key, name) for key, names in self._names.items() for name in names]
        changed = []
        for key, name in named:
            live = read(key[0], name)
            metadata = (live or {}).get("metadata") or {}
            version: Version = (
                (str(metadata.get("uid")), str(metadata.get("resourceVersion")))
                if live is not None
                else None
            )
            with self._lock:
                if name not in self._names.get(key, ()):
                    continue  # renamed or gone meanwhile
                if (key, name) in self._versions and self._versions[(key, name)] == version:
                    continue
                self._versions[(key, name)] = version
            changed.append((key, version))
        return changed

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)
