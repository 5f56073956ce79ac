"""The environment injected into opted-in agent Deployments, and the apply bodies carrying it.

Every write to a Deployment is a server-side apply under the field manager
``taskstore-operator`` (``FIELD_MANAGER``), never forced:

* :func:`render_agent_deployment_patch` lists exactly the fields the operator owns: the
  pod template's ``tealagents.io/taskstore`` label and ``tealagents.io/config-hash``
  annotation, and ``env`` entries (keyed by name) of the selected containers. The
  server merges them into the Deployment and records this manager as their owner;
  other managers' fields, image and replicas included, are untouched.
* :func:`render_agent_removal_patch` lists none of them. Applying it makes the server
  remove every field this manager owned and no other manager also owns, which is how
  the label, the annotation and each injected variable go away when the label is
  removed, the TaskStore is deleted, or the backend changes (then the new body simply
  no longer lists the old variables). Against a Deployment that is gone, the body is
  refused as invalid (no selector, no template), so it never creates one.
* A variable with an injected name that someone set by hand is owned by another
  manager. An unforced apply would fail on a different value, and on an equal one would
  share ownership, so removal would then leave it in place; :func:`env_conflicts` finds
  such variables first, so the Deployment is reported instead of half-configured.
"""

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from taskstore_operator.api.contract import (
    CONFIG_HASH_ANNOTATION,
    CONTAINERS_ANNOTATION,
    ENV_PERSISTENCE_CLASS,
    ENV_PERSISTENCE_MODULE,
    ENV_REDIS_DB,
    ENV_REDIS_HOST,
    ENV_REDIS_KEY_PREFIX,
    ENV_REDIS_PASSWORD,
    ENV_REDIS_PORT,
    ENV_REDIS_SSL,
    ENV_REDIS_TTL,
    ENV_REDIS_USERNAME,
    FIELD_MANAGER,
    IN_MEMORY_CLASS,
    IN_MEMORY_MODULE,
    REDIS_CLASS,
    REDIS_MODULE,
    REDIS_PORT,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import Backend, PasswordSecretRef, RedisSpec, TaskStore
from taskstore_operator.render.hashing import stable_hash
from taskstore_operator.render.redis import redis_host, redis_secret_name

EnvVar = dict[str, Any]
Manifest = dict[str, Any]

_CONTAINERS_FIELDS: Final = ("f:spec", "f:template", "f:spec", "f:containers")


class ContainerSelection(NamedTuple):
    """The containers of a Deployment that get the environment."""

    # In pod template order.
    names: tuple[str, ...]
    # Named by the tealagents.io/containers annotation but not in the pod template.
    unknown: tuple[str, ...]


class EnvConflict(NamedTuple):
    """A variable with an injected name that a container sets by hand."""

    container: str
    variable: str


def password_secret_ref(store: TaskStore) -> PasswordSecretRef | None:
    """The Secret key agents read TA_REDIS_PWD from: generated (managed) or given (external)."""
    redis = store.spec.redis
    if store.spec.backend != Backend.REDIS or redis is None:
        return None
    if redis.managed is not None:
        return PasswordSecretRef(name=redis_secret_name(store))
    return redis.external.password_secret_ref if redis.external is not None else None


def endpoint(store: TaskStore) -> str:
    """``host:port`` of the Redis agents use, for status; empty for the other backends."""
    redis = store.spec.redis
    if store.spec.backend != Backend.REDIS or redis is None:
        return ""
    host, port = _redis_address(store, redis)
    return f"{host}:{port}"


def agent_env(store: TaskStore) -> list[EnvVar]:
    """The ordered EnvVar list for the store's agents, per the contract's table.

    The password is only ever a ``secretKeyRef``; no Secret content is read here.
    """
    spec = store.spec
    if spec.backend == Backend.MEMORY:
        return [
            _literal(ENV_PERSISTENCE_MODULE, IN_MEMORY_MODULE),
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


def config_hash(env: Sequence[EnvVar], secret_fingerprint: str | None) -> str:
    """The pod template's ``tealagents.io/config-hash``: of the env and the password's fingerprint.

    ``secret_fingerprint`` comes from :func:`taskstore_operator.render.hashing.secret_fingerprint`
    (None without a password), so a rotated password rolls the agents while the hash
    reveals nothing about it.
    """
    return stable_hash({"env": list(env), "passwordFingerprint": secret_fingerprint})


def select_containers(deployment: Mapping[str, Any]) -> ContainerSelection:
    """Every container of the pod template, or those the ``tealagents.io/containers`` names.

    Init containers never get the environment. A blank annotation counts as absent.
    """
    present = [container["name"] for container in _containers(deployment)]
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    wanted = [name.strip() for name in annotations.get(CONTAINERS_ANNOTATION, "").split(",")]
    wanted = [name for name in wanted if name]
    if not wanted:
        return ContainerSelection(tuple(present), ())
    return ContainerSelection(
        names=tuple(name for name in present if name in wanted),
        unknown=tuple(name for name in wanted if name not in present),
    )


def render_agent_deployment_patch(
    deployment: Mapping[str, Any], store: TaskStore, env: Sequence[EnvVar], config_hash: str
) -> Manifest:
    """The server-side-apply body that configures an opted-in Deployment (see module doc)."""
    template: Manifest = {
        "metadata": {
            "labels": {TASKSTORE_LABEL: store.metadata.name},
            "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
        }
    }
    names = select_containers(deployment).names
    if names:
        template["spec"] = {
            "containers": [{"name": name, "env": copy.deepcopy(list(env))} for name in names]
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


def owned_env_names(
    deployment: Mapping[str, Any], field_manager: str = FIELD_MANAGER
) -> dict[str, frozenset[str]]:
    """Per container, the env variable names ``field_manager`` owns, read from managedFields."""
    owned: dict[str, set[str]] = {}
    for entry in deployment.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != field_manager:
            continue
        containers: Mapping[str, Any] = entry.get("fieldsV1") or {}
        for step in _CONTAINERS_FIELDS:
            containers = containers.get(step) or {}
        for container_key, container_fields in containers.items():
            container = _list_key_name(container_key)
            if container is None:
                continue
            names = owned.setdefault(container, set())
            for env_key in (container_fields or {}).get("f:env") or {}:
                variable = _list_key_name(env_key)
                if variable is not None:
                    names.add(variable)
    return {container: frozenset(names) for container, names in owned.items()}


def env_conflicts(
    deployment: Mapping[str, Any],
    env: Sequence[EnvVar],
    owned: Mapping[str, frozenset[str]],
) -> list[EnvConflict]:
    """Variables in the selected containers with names from ``env`` that we do not own.

    ``owned`` is :func:`owned_env_names` of the same Deployment. Any result makes the
    Deployment a conflict: it is reported on the TaskStore's status, not overwritten.
    """
    injected = {variable["name"] for variable in env}
    selected = set(select_containers(deployment).names)
    return [
        EnvConflict(container["name"], variable["name"])
        for container in _containers(deployment)
        if container["name"] in selected
        for variable in container.get("env") or []
        if variable["name"] in injected
        and variable["name"] not in owned.get(container["name"], frozenset())
    ]


def _literal(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def _redis_address(store: TaskStore, redis: RedisSpec) -> tuple[str, int]:
    if redis.external is not None:
        return redis.external.host, redis.external.port
    return redis_host(store), REDIS_PORT


def _redis_env(store: TaskStore, redis: RedisSpec) -> list[EnvVar]:
    host, port = _redis_address(store, redis)
    external = redis.external
    env = [
        _literal(ENV_PERSISTENCE_MODULE, REDIS_MODULE),
        _literal(ENV_PERSISTENCE_CLASS, REDIS_CLASS),
        _literal(ENV_REDIS_HOST, host),
        _literal(ENV_REDIS_PORT, str(port)),
        _literal(ENV_REDIS_DB, str(external.db if external is not None else 0)),
        _literal(ENV_REDIS_TTL, str(store.spec.ttl_seconds)),
        _literal(ENV_REDIS_SSL, "true" if external is not None and external.tls else "false"),
    ]
    secret = password_secret_ref(store)
    if secret is not None:
        env.append(
            {
                "name": ENV_REDIS_PASSWORD,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    if external is not None and external.username is not None:
        env.append(_literal(ENV_REDIS_USERNAME, external.username))
    if redis.key_prefix:
        env.append(_literal(ENV_REDIS_KEY_PREFIX, redis.key_prefix))
    return env


def _containers(deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    template_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    containers: list[Mapping[str, Any]] = template_spec.get("containers") or []
    return containers


def _list_key_name(key: str) -> str | None:
    """The ``name`` of a managedFields list-map key such as ``k:{"name":"app"}``."""
    if not key.startswith("k:"):
        return None
    name = json.loads(key[2:]).get("name")
    return name if isinstance(name, str) else None
