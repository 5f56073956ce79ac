"""Names fixed by the TaskStore contract (docs: ``taskstore-api.md``), kept in one place.

The API coordinates, the labels and annotations the operator reads and writes, the
environment variables it injects into agents and the library entry points they name.
"""

from typing import Final

GROUP: Final = "tealagents.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "TaskStore"
PLURAL: Final = "taskstores"
SINGULAR: Final = "taskstore"
SHORT_NAMES: Final = ("tstore",)
CATEGORIES: Final = ("teal",)

# On a Deployment (opt-in) and on its pod template (NetworkPolicy peer selector).
TASKSTORE_LABEL: Final = f"{GROUP}/taskstore"
# On a Deployment: the comma-separated container names that get the environment.
CONTAINERS_ANNOTATION: Final = f"{GROUP}/containers"
# On agent and managed Redis pod templates: changes when the configuration or password does.
CONFIG_HASH_ANNOTATION: Final = f"{GROUP}/config-hash"
# On every managed object: a hash of the rendered manifest, so unchanged objects are not re-applied.
SPEC_HASH_ANNOTATION: Final = f"{GROUP}/spec-hash"

FIELD_MANAGER: Final = "taskstore-operator"
# On every managed Redis object: what the operator's watches of those kinds select.
MANAGED_BY_LABELS: Final = {"app.kubernetes.io/managed-by": "taskstore-operator"}
# On TaskStores: the operator's own finalizer, added and removed by the operator itself.
FINALIZER: Final = f"{GROUP}/finalizer"

# The library's entry file, classes, mount path and copy command are the library's own
# names: see teal_taskstore.framework.

# Injected environment variables, as the library reads them.
ENV_PERSISTENCE_MODULE: Final = "TA_PERSISTENCE_MODULE"
ENV_PERSISTENCE_CLASS: Final = "TA_PERSISTENCE_CLASS"
ENV_REDIS_HOST: Final = "TA_REDIS_HOST"
ENV_REDIS_PORT: Final = "TA_REDIS_PORT"
ENV_REDIS_DB: Final = "TA_REDIS_DB"
ENV_REDIS_TTL: Final = "TA_REDIS_TTL"
ENV_REDIS_SSL: Final = "TA_REDIS_SSL"
ENV_REDIS_PASSWORD: Final = "TA_REDIS_PWD"  # noqa: S105 (a name, not a password)
ENV_REDIS_USERNAME: Final = "TA_REDIS_USERNAME"
ENV_REDIS_KEY_PREFIX: Final = "TA_REDIS_KEY_PREFIX"
ENV_REDIS_MODE: Final = "TA_REDIS_MODE"
ENV_REDIS_SENTINELS: Final = "TA_REDIS_SENTINELS"
ENV_REDIS_SENTINEL_MASTER: Final = "TA_REDIS_SENTINEL_MASTER"
ENV_REDIS_SENTINEL_PASSWORD: Final = "TA_REDIS_SENTINEL_PWD"  # noqa: S105 (a name)
ENV_REDIS_SENTINEL_USERNAME: Final = "TA_REDIS_SENTINEL_USERNAME"
# The framework's JSON objects of variables, copied over the environment when it starts.
ENV_OVERRIDE_STORES: Final = ("TA_ENV_STORE", "TA_ENV_GLOBAL_STORE")

REDIS_PORT: Final = 6379
# The key in the generated Secret ``<name>-redis-auth`` and the default key of passwordSecretRef.
PASSWORD_KEY: Final = "password"  # noqa: S105 (a name, not a password)
