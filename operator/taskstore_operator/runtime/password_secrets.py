"""The password Secrets the stores read, checked now and then instead of watched.

The operator does not watch Secrets: a Secret watch needs ``list`` and ``watch`` on every
Secret of the namespaces it serves, and streams them all into its memory. It only needs
the Secrets its stores name (a managed Redis's generated Secret, an external Redis's
``passwordSecretRef``), which each reconcile reads with a GET. Changes made between
reconciles are found by :meth:`PasswordSecrets.changes`: every period, one GET per store
that names a Secret; a store is enqueued when its Secret appeared, went, or has a new
version.
"""

import threading
from collections.abc import Callable, Mapping
from typing import Any

from taskstore_operator.plan.observed import parse
from taskstore_operator.render.agent_env import password_secret_ref
from taskstore_operator.runtime.queue import Key

# What a check saw of a Secret: (uid, resourceVersion), or None when it is missing.
Version = tuple[str, str] | None
Read = Callable[[str, str], Mapping[str, Any] | None]


def secret_name(manifest: Mapping[str, Any]) -> str | None:
    """The Secret a TaskStore's password comes from, if it names one and its spec parses."""
    store = parse(manifest)
    secret_ref = password_secret_ref(store) if not isinstance(store, Exception | None) else None
    return secret_ref.name if secret_ref is not None else None


class PasswordSecrets:
    """The Secret each store names, and the version the last check saw of it.

    Updated from the event loop, checked from a thread: guarded by a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[Key, str] = {}
        self._versions: dict[Key, Version] = {}

    def update(self, key: Key, secret: str | None) -> None:
        """The Secret store ``key`` names now (None: none, or the store is gone)."""
        with self._lock:
            if secret is None:
                self._names.pop(key, None)
            elif self._names.get(key) != secret:
                self._names[key] = secret
            else:
                return
            self._versions.pop(key, None)

    def changes(self, read: Read) -> list[tuple[Key, Version]]:
        """Read each named Secret (``read(namespace, name)``); the stores whose Secret changed.

        A store's first check counts as a change; the caller skips the versions its
        reconciles have seen already.
        """
        with self._lock:
            names = list(self._names.items())
        changed = []
        for key, name in names:
            live = read(key[0], name)
            metadata = (live or {}).get("metadata") or {}
            version: Version = (
                (str(metadata.get("uid")), str(metadata.get("resourceVersion")))
                if live is not None
                else None
            )
            with self._lock:
                if self._names.get(key) != name:
                    continue  # renamed or gone meanwhile
                if key in self._versions and self._versions[key] == version:
                    continue
                self._versions[key] = version
            changed.append((key, version))
        return changed

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)
