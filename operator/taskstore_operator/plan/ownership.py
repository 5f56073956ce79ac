"""What the operator owns, read from ``managedFields``, and whether it holds.

Server-side apply records, per field manager, the fields it set. The operator's entries
say which variables and library parts are its own (so a body that no longer lists them
removes them, and a same-named variable it does not own is someone else's), and
:func:`holds` says whether the live pod template still has every value of an apply body.
Other managers' entries tell a hand edit of a managed Redis object
(:func:`changed_by_others`).
"""

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from taskstore_operator.api.contract import FIELD_MANAGER

_POD_FIELDS: Final = ("f:spec", "f:template", "f:spec")


class OwnedLibrary(NamedTuple):
    """The parts of the injected library the operator's field manager owns."""

    volumes: frozenset[str] = frozenset()
    init_containers: frozenset[str] = frozenset()
    # Mount paths, by container.
    mounts: Mapping[str, frozenset[str]] = MappingProxyType({})


def owned_env_names(
    deployment: Mapping[str, Any], field_manager: str = FIELD_MANAGER
) -> dict[str, frozenset[str]]:
    """Per container, the env variable names ``field_manager`` owns, read from managedFields."""
    owned: dict[str, set[str]] = {}
    for pod in _owned_pod_fields(deployment, field_manager):
        for container, fields in _keyed(pod.get("f:containers"), "name"):
            owned.setdefault(container, set()).update(
                name for name, _ in _keyed(fields.get("f:env"), "name")
            )
    return {container: frozenset(names) for container, names in owned.items()}


def owned_library(
    deployment: Mapping[str, Any], field_manager: str = FIELD_MANAGER
) -> OwnedLibrary:
    """The library volume, init container and mounts ``field_manager`` owns (managedFields)."""
    volumes: set[str] = set()
    init_containers: set[str] = set()
    mounts: dict[str, set[str]] = {}
    for pod in _owned_pod_fields(deployment, field_manager):
        volumes.update(name for name, _ in _keyed(pod.get("f:volumes"), "name"))
        init_containers.update(name for name, _ in _keyed(pod.get("f:initContainers"), "name"))
        for container, fields in _keyed(pod.get("f:containers"), "name"):
            paths = {path for path, _ in _keyed(fields.get("f:volumeMounts"), "mountPath")}
            if paths:
                mounts.setdefault(container, set()).update(paths)
    return OwnedLibrary(
        frozenset(volumes),
        frozenset(init_containers),
        {container: frozenset(paths) for container, paths in mounts.items()},
    )


def _owned_pod_fields(deployment: Mapping[str, Any], field_manager: str) -> list[Mapping[str, Any]]:
    """The pod template spec's fields (``fieldsV1``) of each managedFields entry of a manager."""
    pods = []
    for entry in deployment.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != field_manager:
            continue
        fields: Mapping[str, Any] = entry.get("fieldsV1") or {}
        for step in _POD_FIELDS:
            fields = fields.get(step) or {}
        pods.append(fields)
    return pods


def _keyed(fields: Mapping[str, Any] | None, key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The items of a managedFields list map (``k:{"name":"app"}``) by their ``key`` field."""
    items = []
    for item_key, item_fields in (fields or {}).items():
        if not item_key.startswith("k:"):
            continue
        value = json.loads(item_key[2:]).get(key)
        if isinstance(value, str):
            items.append((value, item_fields or {}))
    return items


# The keys of the list maps of a pod template, by list name.
_LIST_KEYS: Final = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
}


def holds(live: Any, desired: Any, list_name: str = "") -> bool:
    """Whether ``live`` holds every value of ``desired`` (extra live fields are fine).

    Items of the pod template's list maps are matched by their key; other lists must be
    equal.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and holds(live[key], value, key) for key, value in desired.items())
    if isinstance(desired, list) and list_name in _LIST_KEYS:
        if not isinstance(live, list):
            return False
        key = _LIST_KEYS[list_name]
        by_key = {item.get(key): item for item in live if isinstance(item, Mapping)}
        return all(
            item[key] in by_key and holds(by_key[item[key]], item, list_name) for item in desired
        )
    return bool(live == desired)


def changed_by_others(
    live: Mapping[str, Any], desired: Mapping[str, Any], field_manager: str = FIELD_MANAGER
) -> bool:
    """Whether another field manager set a field of ``desired`` on ``live`` (a hand edit).

    Any write of a field by another client records that client as the field's manager in
    ``managedFields``, so a hand edit of a rendered value is seen from the object itself,
    also after a restart. Status writes (a subresource) do not count; fields the operator
    does not render are someone else's business.
    """
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == field_manager or entry.get("subresource"):
            continue
        if _overlaps(entry.get("fieldsV1") or {}, desired):
            return True
    return False


def _overlaps(fields: Mapping[str, Any], value: Any) -> bool:
    """Whether a ``fieldsV1`` tree names a field that ``value`` sets."""
    for key, sub in fields.items():
        if key.startswith("f:"):
            name = key[2:]
            if not isinstance(value, Mapping) or name not in value:
                continue
            child = value[name]
            # An empty tree is a leaf (or an atomic value): owned whole.
            if not sub or not isinstance(child, Mapping | list) or _overlaps(sub, child):
                return True
        elif key.startswith("k:") and isinstance(value, list):
            wanted = json.loads(key[2:])
            for item in value:
                # A key field the body leaves to its default (a port's protocol) matches.
                matches = isinstance(item, Mapping) and all(
                    item.get(field, expected) == expected for field, expected in wanted.items()
                )
                if matches and _overlaps(sub, item):
                    return True
        elif key.startswith("v:") and isinstance(value, list) and json.loads(key[2:]) in value:
            return True
    return False
