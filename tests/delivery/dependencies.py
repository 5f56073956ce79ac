"""The installed distributions the operator image runs: ``teal-taskstore-operator`` and below."""

import sys
from collections.abc import Set as AbstractSet
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

PROJECT = "teal-taskstore-operator"
# Built from this repository beside the operator, so never pinned: its dependencies are.
LIBRARY = canonicalize_name("teal-taskstore")


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    """Whether a requirement applies on the image's platform (Linux, this Python) for ``extras``."""
    if requirement.marker is None:
        return True
    environment: dict[str, str | AbstractSet[str]] = {
        key: str(value) for key, value in default_environment().items()
    }
    environment |= {"sys_platform": "linux", "platform_system": "Linux"}
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras | {""}
    )


def runtime_closure() -> dict[NormalizedName, list[Requirement]]:
    """Every distribution the operator needs (the library's too), with the requirements on it."""
    found: dict[NormalizedName, list[Requirement]] = {}
    pending: list[tuple[str, frozenset[str]]] = [(PROJECT, frozenset())]
    visited: set[tuple[NormalizedName, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), extras)
        if key in visited:
            continue
        visited.add(key)
        for raw in metadata.distribution(name).requires or []:
            requirement = Requirement(raw)
            if not _applies(requirement, extras):
                continue
            if canonicalize_name(requirement.name) != LIBRARY:
                found.setdefault(canonicalize_name(requirement.name), []).append(requirement)
            pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def installed_version(name: str) -> str:
    """The version installed in this environment."""
    return metadata.version(name)


if __name__ == "__main__":  # print the pins of this environment, to refresh constraints.txt
    for dist in sorted(runtime_closure()):
        sys.stdout.write(f"{dist}=={installed_version(dist)}\n")
