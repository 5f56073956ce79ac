"""What the operator owns on a Deployment, read from ``managedFields``, and whether it holds.

Server-side apply records, per field manager, the fields it set. The operator's entries
say which variables and library parts are its own (so a body that no longer lists them
removes them, and a same-named variable it does not own is someone else's), and
:func:`holds` says whether the live pod template still has every value of an apply body.
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
