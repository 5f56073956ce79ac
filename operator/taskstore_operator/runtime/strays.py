"""Deployments that carry a store's injection though their label no longer names it.

A reconcile finds the Deployments that opt in to its store with a label selector; these
"strays" it must still strip, so the Deployment watch keeps track of them here and the
reconcile reads them one by one. Fed and read in the event loop only.
"""

from taskstore_operator.runtime.queue import Key


class StrayDeployments:
    """Stray Deployment names by store (namespace, name), from the Deployment watch."""

    def __init__(self) -> None:
        self._by_store: dict[Key, set[str]] = {}
        # (namespace, Deployment) -> the store whose injection it carries.
        self._store_of: dict[Key, str] = {}

    def update(self, namespace: str, name: str, store: str | None) -> None:
        """Record a Deployment's state: a stray of ``store``, or (None) not a stray (or gone)."""
        deployment = (namespace, name)
        previous = self._store_of.pop(deployment, None)
        if previous is not None:
            names = self._by_store[(namespace, previous)]
            names.discard(name)
            if not names:
                del self._by_store[(namespace, previous)]
        if store is not None:
            self._store_of[deployment] = store
            self._by_store.setdefault((namespace, store), set()).add(name)

    def of(self, key: Key) -> frozenset[str]:
        """The stray Deployments of a store."""
        return frozenset(self._by_store.get(key, ()))
