"""Running inside the Teal Agents framework: the names the operator and the pod agree on.

The operator copies this library into agent pods (an init container runs
``COPY_LIBRARY_COMMAND``) and points ``TA_PERSISTENCE_MODULE`` at the entry file, which the
framework's own loader accepts (a ``.py`` file; classes subclassing its base class).
Nothing here imports ``sk_agents``.
"""

from typing import Final

# Where the init container copies the library, and where agent containers mount it.
LIBRARY_MOUNT_PATH: Final = "/opt/teal-taskstore"
LIBRARY_VOLUME: Final = "teal-taskstore-library"
# The file TA_PERSISTENCE_MODULE names; its stem is the module name the framework registers.
ENTRY_FILE_NAME: Final = "teal_taskstore_entry.py"
ENTRY_FILE_PATH: Final = f"{LIBRARY_MOUNT_PATH}/{ENTRY_FILE_NAME}"
# The init container's command (run by the image that holds the library).
COPY_LIBRARY_COMMAND: Final = (
    "python",
    "-m",
    "teal_taskstore",
    "copy-library",
    LIBRARY_MOUNT_PATH,
)
# TA_PERSISTENCE_CLASS for each backend, in the entry file and in teal_taskstore alike.
IN_MEMORY_CLASS: Final = "InMemoryPersistenceManager"
REDIS_CLASS: Final = "RedisTaskPersistenceManager"

__all__ = [
    "COPY_LIBRARY_COMMAND",
    "ENTRY_FILE_NAME",
    "ENTRY_FILE_PATH",
    "IN_MEMORY_CLASS",
    "LIBRARY_MOUNT_PATH",
    "LIBRARY_VOLUME",
    "REDIS_CLASS",
]
