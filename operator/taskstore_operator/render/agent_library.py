"""The library injected into agent pods: an init container, a volume, read-only mounts.

For the memory and redis backends an unmodified Teal Agents image must load our
framework adapter from a file (see ``teal-agents-integration.md``), so the operator adds
to the pod template, as the OpenTelemetry Operator's Python auto-instrumentation does:

* the volume ``teal-taskstore-library`` (an ``emptyDir`` of at most 64Mi);
* the init container ``teal-taskstore-library``, running the library image's
  ``python -m teal_taskstore copy-library /opt/teal-taskstore`` with the volume mounted
  read-write, under the ``restricted`` Pod Security Standard, with small resources;
* in each selected container, the volume mounted read-only at ``/opt/teal-taskstore``.

The names and the command are the library's (:mod:`teal_taskstore.framework`), so the
operator and the pod agree on them.
"""

import copy
from typing import Any, Final

from teal_taskstore.framework import COPY_LIBRARY_COMMAND, LIBRARY_MOUNT_PATH, LIBRARY_VOLUME

Manifest = dict[str, Any]

# The library is a few hundred kilobytes of Python; the limit only guards the node.
VOLUME_SIZE_LIMIT: Final = "64Mi"
# Python starting, importing the library's package metadata and copying files.
INIT_RESOURCES: Final[Manifest] = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}
# The restricted Pod Security Standard, for this container whatever the pod sets.
RESTRICTED_SECURITY_CONTEXT: Final[Manifest] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def render_library_volume() -> Manifest:
    """The pod volume the library is copied into."""
    return {"name": LIBRARY_VOLUME, "emptyDir": {"sizeLimit": VOLUME_SIZE_LIMIT}}


def render_library_init_container(image: str) -> Manifest:
    """The init container that copies the library from ``image`` into the volume."""
    return {
        "name": LIBRARY_VOLUME,
        "image": image,
        "command": list(COPY_LIBRARY_COMMAND),
        "volumeMounts": [{"name": LIBRARY_VOLUME, "mountPath": LIBRARY_MOUNT_PATH}],
        "resources": copy.deepcopy(INIT_RESOURCES),
        "securityContext": copy.deepcopy(RESTRICTED_SECURITY_CONTEXT),
    }


def render_library_mount() -> Manifest:
    """The read-only mount of the library in a selected agent container."""
    return {"name": LIBRARY_VOLUME, "mountPath": LIBRARY_MOUNT_PATH, "readOnly": True}
