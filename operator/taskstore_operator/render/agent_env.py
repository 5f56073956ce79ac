"""The environment injected into opted-in agent Deployments, and the apply bodies carrying it.

Every write to a Deployment is a server-side apply under the field manager
``taskstore-operator`` (``FIELD_MANAGER``), forced only to take back the operator's own
values (see :mod:`taskstore_operator.plan.agents`):

* :func:`render_agent_deployment_patch` lists exactly the fields the operator owns: the
  pod template's ``tealagents.io/taskstore`` label and ``tealagents.io/config-hash``
  annotation, ``env`` entries (keyed by name) of the selected containers, and for memory
  and redis the library (:mod:`taskstore_operator.render.agent_library`). The
  server merges them into the Deployment and records this manager as their owner;
  other managers' fields, image and replicas included, are untouched.
* :func:`render_agent_removal_patch` lists none of them. Applying it makes the server
  remove every field this manager owned and no other manager also owns, which is how
  the label, the annotation and each injected variable go away when the label is
  removed, the TaskStore is deleted, or the backend changes (then the new body simply
  no longer lists the old variables). Against a Deployment that is gone, the body is
  refused as invalid (no selector, no template), so it never creates one.
* Which Deployments and containers get the environment, and which conflict with it, is
  decided in :mod:`taskstore_operator.plan.agents`; this module only renders.
"""

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from taskstore_operator.api.contract import (
    CONFIG_HASH_ANNOTATION,
    ENV_PERSISTENCE_CLASS,
    ENV_PERSISTENCE_MODULE,
    ENV_REDIS_DB,
    ENV_REDIS_HOST,
    ENV_REDIS_KEY_PREFIX,
    ENV_REDIS_MODE,
    ENV_REDIS_PASSWORD,
    ENV_REDIS_PORT,
    ENV_REDIS_SENTINEL_MASTER,
    ENV_REDIS_SENTINEL_PASSWORD,
    ENV_REDIS_SENTINEL_USERNAME,
    ENV_REDIS_SENTINELS,
    ENV_REDIS_SSL,
    ENV_REDIS_TTL,
    ENV_REDIS_USERNAME,
    REDIS_PORT,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import (
    Backend,
    ExternalRedis,
    PasswordSecretRef,
    RedisMode,
    RedisSpec,
    TaskStore,
)
from taskstore_operator.render.agent_library import (
    render_library_init_container,
    render_library_mount,
    render_library_volume,
)
from taskstore_operator.render.hashing import stable_hash
from taskstore_operator.render.redis import redis_host, redis_secret_name
from teal_taskstore.framework import ENTRY_FILE_PATH, IN_MEMORY_CLASS, REDIS_CLASS
from teal_taskstore.persistence.redis_settings import DEFAULT_SENTINEL_MASTER, MAX_INT32

EnvVar = dict[str, Any]
Manifest = dict[str, Any]

# TA_REDIS_TTL for ttlSeconds 0 ("never expire"): the framework's own Redis components
# read the same variable and pass it to SETEX / ex=, which refuse 0. 2**31 - 1 seconds
# (68 years, the largest ttlSeconds) is accepted by every reader and never expires in practice.
NEVER_EXPIRE_TTL_SECONDS: Final = MAX_INT32


def password_secret_ref(store: TaskStore) -> PasswordSecretRef | None:
    """The Secret key agents read TA_REDIS_PWD from: generated (managed) or given (external)."""
    if store.managed_redis is not None:
        return PasswordSecretRef(name=redis_secret_name(store))
    external = store.external_redis
    return external.password_secret_ref if external is not None else None


def sentinel_password_secret_ref(store: TaskStore) -> PasswordSecretRef | None:
    """The Secret key agents read TA_REDIS_SENTINEL_PWD from (external sentinel mode only)."""
    external = store.external_redis
    if external is None or external.mode != RedisMode.SENTINEL:
        return None
    return external.sentinel_password_secret_ref


def endpoint(store: TaskStore) -> str:
    """Where agents find the Redis, for status; empty for the other backends.

    ``host:port``; with Sentinel, the master's name and the sentinels; with Cluster, the
    seed node.
    """
    redis = store.spec.redis
    if store.spec.backend != Backend.REDIS or redis is None:
        return ""
    external = redis.external
    if external is not None and external.mode == RedisMode.SENTINEL:
        return f"master {_master_name(external)} via sentinels {','.join(external.sentinels or [])}"
    host, port = _redis_address(store, redis)
    cluster = (
        "cluster seeded by " if external is not None and external.mode == RedisMode.CLUSTER else ""
    )
    return f"{cluster}{host}:{port}"


def agent_env(store: TaskStore) -> list[EnvVar]:
    """The ordered EnvVar list for the store's agents, per the contract's table.

    The password is only ever a ``secretKeyRef``; no Secret content is read here.
    """
    spec = store.spec
    if spec.backend == Backend.MEMORY:
        return [
            _literal(ENV_PERSISTENCE_MODULE, ENTRY_FILE_PATH),
            _literal(ENV_PERSISTENCE_CLASS, IN_MEMORY_CLASS),
        ]
    if spec.backend == Backend.REDIS and spec.redis is not None:
        return _redis_env(store, spec.redis)
    if spec.backend == Backend.CUSTOM and spec.custom is not None:
        return [
            _literal(ENV_PERSISTENCE_MODULE, spec.custom.module),
            _literal(ENV_PERSISTENCE_CLASS, spec.custom.class_name),
            *(env.model_dump(mode="json", exclude_none=True) for env in spec.custom.env),
        ]
    # validate_taskstore refuses these; reaching here means the caller skipped it.
    raise ValueError(f"TaskStore {store.metadata.name}: backend {spec.backend} has no settings")


def injects_library(store: TaskStore) -> bool:
    """Whether agents of the store get the library (memory and redis; custom brings its own)."""
    return store.spec.backend in (Backend.MEMORY, Backend.REDIS)


def config_hash(
    env: Sequence[EnvVar], secret_fingerprint: str | None, library_image: str | None = None
) -> str:
    """The pod template's ``tealagents.io/config-hash``: of the env, password and library image.

    ``secret_fingerprint`` comes from :func:`taskstore_operator.render.hashing.secret_fingerprint`
    (None without a password), so a rotated password rolls the agents while the hash
    reveals nothing about it. ``library_image`` (None when no library is injected) is in
    it so that the operator notices a new image and re-applies: the init container's
    image is part of the pod template, so the agents roll with it.
    """
    recipe: dict[str, Any] = {"env": list(env), "passwordFingerprint": secret_fingerprint}
    if library_image is not None:
        recipe["libraryImage"] = library_image
    return stable_hash(recipe)


def render_agent_deployment_patch(
    deployment: Mapping[str, Any],
    store: TaskStore,
    containers: Sequence[str],
    env: Sequence[EnvVar],
    config_hash: str,
    library_image: str | None = None,
) -> Manifest:
    """The server-side-apply body that gives ``containers`` the environment (see module doc).

    With ``library_image``, the body also carries the library's volume, init container and
    read-only mounts (see :mod:`taskstore_operator.render.agent_library`), unless no
    container is selected: then nothing would read it.
    """
    template: Manifest = {
        "metadata": {
            "labels": {TASKSTORE_LABEL: store.metadata.name},
            "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
        }
    }
    if containers:
        selected: list[Manifest] = [
            {"name": name, "env": copy.deepcopy(list(env))} for name in containers
        ]
        template["spec"] = {"containers": selected}
        if library_image is not None:
            for container in selected:
                container["volumeMounts"] = [render_library_mount()]
            template["spec"] = {
                "volumes": [render_library_volume()],
                "initContainers": [render_library_init_container(library_image)],
                "containers": selected,
            }
    return {**render_agent_removal_patch(deployment), "spec": {"template": template}}


def render_agent_removal_patch(deployment: Mapping[str, Any]) -> Manifest:
    """The server-side-apply body that removes everything the operator set (see module doc)."""
    metadata = deployment["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
    }


def _literal(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def _redis_address(store: TaskStore, redis: RedisSpec) -> tuple[str, int]:
    if redis.external is not None:
        # Sentinel mode has no host; its callers use the sentinels instead.
        return redis.external.host or "", redis.external.port
    return redis_host(store), REDIS_PORT


def _master_name(external: ExternalRedis) -> str:
    return external.master_name or DEFAULT_SENTINEL_MASTER


def _secret_env(name: str, secret: PasswordSecretRef) -> EnvVar:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}}


def _address_env(store: TaskStore, redis: RedisSpec) -> list[EnvVar]:
    """Where the Redis is: host and port, or (Sentinel) the sentinels and their credentials.

    Standalone stores get no TA_REDIS_MODE (the library's default), so their environment,
    and with it their agents' config hash, is what it was before modes existed.
    """
    external = redis.external
    if external is None or external.mode == RedisMode.STANDALONE:
        host, port = _redis_address(store, redis)
        return [_literal(ENV_REDIS_HOST, host), _literal(ENV_REDIS_PORT, str(port))]
    if external.mode == RedisMode.CLUSTER:
        return [
            _literal(ENV_REDIS_MODE, external.mode.value),
            _literal(ENV_REDIS_HOST, external.host or ""),
            _literal(ENV_REDIS_PORT, str(external.port)),
        ]
    env = [
        _literal(ENV_REDIS_MODE, external.mode.value),
        _literal(ENV_REDIS_SENTINELS, ",".join(external.sentinels or [])),
        _literal(ENV_REDIS_SENTINEL_MASTER, _master_name(external)),
    ]
    secret = sentinel_password_secret_ref(store)
    if secret is not None:
        env.append(_secret_env(ENV_REDIS_SENTINEL_PASSWORD, secret))
    if external.sentinel_username is not None:
        env.append(_literal(ENV_REDIS_SENTINEL_USERNAME, external.sentinel_username))
    return env


def _redis_env(store: TaskStore, redis: RedisSpec) -> list[EnvVar]:
    external = redis.external
    env = [
        _literal(ENV_PERSISTENCE_MODULE, ENTRY_FILE_PATH),
        _literal(ENV_PERSISTENCE_CLASS, REDIS_CLASS),
        *_address_env(store, redis),
        _literal(ENV_REDIS_DB, str(external.db if external is not None else 0)),
        _literal(ENV_REDIS_TTL, str(store.spec.ttl_seconds or NEVER_EXPIRE_TTL_SECONDS)),
        _literal(ENV_REDIS_SSL, "true" if external is not None and external.tls else "false"),
    ]
    secret = password_secret_ref(store)
    if secret is not None:
        env.append(_secret_env(ENV_REDIS_PASSWORD, secret))
    if external is not None and external.username is not None:
        env.append(_literal(ENV_REDIS_USERNAME, external.username))
    if redis.key_prefix:
        env.append(_literal(ENV_REDIS_KEY_PREFIX, redis.key_prefix))
    return env


def containers_of(deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of the Deployment's pod template (init containers excluded)."""
    template_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    containers: list[Mapping[str, Any]] = template_spec.get("containers") or []
    return containers
