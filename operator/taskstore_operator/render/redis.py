"""The managed Redis of a TaskStore as plain manifests, ready for server-side apply.

Five objects, all named after the TaskStore ``<name>`` and owned by it: the Secret
``<name>-redis-auth`` (key ``password``), the ConfigMap ``<name>-redis-config``, and the
Service, StatefulSet and NetworkPolicy ``<name>-redis``. The builders are pure: the
password and its fingerprint come from the caller (see :func:`generate_password` and
:func:`taskstore_operator.render.hashing.secret_fingerprint`).
"""

import base64
import secrets
from fractions import Fraction
from typing import Any, Final

from pydantic import SecretStr

from taskstore_operator.api.contract import (
    API_VERSION,
    CONFIG_HASH_ANNOTATION,
    KIND,
    MANAGED_BY_LABELS,
    PASSWORD_KEY,
    REDIS_PORT,
    SPEC_HASH_ANNOTATION,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import ManagedRedis, TaskStore
from taskstore_operator.api.quantity import parse_quantity
from taskstore_operator.render.hashing import stable_hash

Manifest = dict[str, Any]

CONTAINER_NAME: Final = "redis"
PORT_NAME: Final = "redis"
CONFIG_FILE: Final = "redis.conf"
CONFIG_DIR: Final = "/etc/redis"
DATA_DIR: Final = "/data"
DATA_VOLUME: Final = "data"
# The uid and gid of the redis user in the official images, which own /data there.
REDIS_UID: Final = 999
# redis-cli reads the password from this variable, so probes never put it on a command line;
# the server's start command reads the same variable.
PASSWORD_ENV: Final = "REDISCLI_AUTH"  # noqa: S105 (a name, not a password)
# Redis needs headroom above maxmemory (buffers, fragmentation, the fork that rewrites the
# append-only file); past the limit the kernel kills it, while at maxmemory it refuses writes.
MAXMEMORY_RATIO: Final = Fraction(7, 10)
# A password of 32 random bytes: URL-safe base64, so it is safe in env vars and config files.
PASSWORD_BYTES: Final = 32

START_COMMAND: Final = (
    f': "${{{PASSWORD_ENV}:?the password is empty}}"; '
    f'exec redis-server {CONFIG_DIR}/{CONFIG_FILE} --requirepass "${PASSWORD_ENV}"'
)
# A Redis that is loading its data set answers LOADING: alive, but not ready for agents.
READINESS_COMMAND: Final = f"redis-cli -h 127.0.0.1 -p {REDIS_PORT} ping | grep -q '^PONG'"
LIVENESS_COMMAND: Final = (
    f"redis-cli -h 127.0.0.1 -p {REDIS_PORT} ping | grep -qE '^(PONG|LOADING)'"
)


def generate_password() -> SecretStr:
    """A new random Redis password. Not pure: the caller calls it once and passes it on."""
    return SecretStr(secrets.token_urlsafe(PASSWORD_BYTES))


def redis_name(store: TaskStore) -> str:
    """Name of the managed Redis Service, StatefulSet and NetworkPolicy."""
    return f"{store.metadata.name}-redis"


def redis_secret_name(store: TaskStore) -> str:
    """Name of the Secret holding the managed Redis password."""
    return f"{store.metadata.name}-redis-auth"


def redis_configmap_name(store: TaskStore) -> str:
    """Name of the ConfigMap holding redis.conf."""
    return f"{store.metadata.name}-redis-config"


def redis_host(store: TaskStore) -> str:
    """The managed Redis Service's host name, as agents in the namespace reach it."""
    return f"{redis_name(store)}.{store.metadata.namespace}.svc"


def managed_redis(store: TaskStore) -> ManagedRedis:
    """The store's managed Redis settings; ValueError if it has none."""
    managed = store.managed_redis
    if managed is None:
        raise ValueError(f"TaskStore {store.metadata.name} has no managed Redis")
    return managed


def selector_labels(store: TaskStore) -> dict[str, str]:
    """The labels that select the managed Redis pod."""
    return {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": store.metadata.name}


def redis_labels(store: TaskStore) -> dict[str, str]:
    """The recommended labels of every managed Redis object."""
    return {
        **selector_labels(store),
        **MANAGED_BY_LABELS,
        "app.kubernetes.io/part-of": "teal-agents",
    }


def owner_reference(store: TaskStore) -> dict[str, Any]:
    """An owner reference to the TaskStore, as its controller."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": store.metadata.name,
        "uid": store.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _object_meta(store: TaskStore, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": store.metadata.namespace,
        "labels": redis_labels(store),
        "ownerReferences": [owner_reference(store)],
    }


def _with_spec_hash(manifest: Manifest) -> Manifest:
    """``manifest`` with a hash of itself in an annotation, to compare with what is applied."""
    manifest["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: stable_hash(manifest)}
    return manifest


def maxmemory_bytes(managed: ManagedRedis) -> int | None:
    """Redis's maxmemory for the container's memory limit; None without a limit."""
    limit = managed.resources.limits.get("memory")
    if limit is None:
        return None
    return int(parse_quantity(limit) * MAXMEMORY_RATIO)


def render_redis_config(store: TaskStore) -> str:
    """The content of redis.conf (the password is not in it: it comes from the Secret)."""
    managed = managed_redis(store)
    lines = [
        f"# Generated by taskstore-operator for TaskStore {store.metadata.name}; edits are lost.",
        f"port {REDIS_PORT}",
        f"dir {DATA_DIR}",
        # Tasks must never be evicted to make room: a full store refuses writes instead.
        "maxmemory-policy noeviction",
    ]
    maxmemory = maxmemory_bytes(managed)
    if maxmemory is not None:
        lines.append(f"maxmemory {maxmemory}")
    if managed.storage is not None:
        lines.append("appendonly yes")
    else:
        # The data directory is an emptyDir: persistence files would not outlive the pod.
        lines += ["appendonly no", 'save ""']
    return "\n".join(lines) + "\n"


def render_redis_secret(store: TaskStore, password: SecretStr) -> Manifest:
    """The Secret ``<name>-redis-auth`` holding ``password`` under the key ``password``.

    Created once; the caller keeps the existing Secret's value rather than re-rendering it.
    """
    encoded = base64.b64encode(password.get_secret_value().encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _object_meta(store, redis_secret_name(store)),
        "type": "Opaque",
        "data": {PASSWORD_KEY: encoded},
    }


def render_redis_configmap(store: TaskStore) -> Manifest:
    """The ConfigMap ``<name>-redis-config`` holding redis.conf."""
    return _with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _object_meta(store, redis_configmap_name(store)),
            "data": {CONFIG_FILE: render_redis_config(store)},
        }
    )


def render_redis_service(store: TaskStore) -> Manifest:
    """The Service ``<name>-redis`` on port 6379."""
    return _with_spec_hash(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _object_meta(store, redis_name(store)),
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(store),
                "ports": [
                    {
                        "name": PORT_NAME,
                        "port": REDIS_PORT,
                        "targetPort": PORT_NAME,
                        "protocol": "TCP",
                    }
                ],
            },
        }
    )


def _exec_probe(command: str, *, initial_delay: int, period: int, failures: int) -> Manifest:
    return {
        "exec": {"command": ["sh", "-c", command]},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _redis_container(store: TaskStore, managed: ManagedRedis) -> Manifest:
    resources = {
        kind: dict(amounts)
        for kind, amounts in (
            ("requests", managed.resources.requests),
            ("limits", managed.resources.limits),
        )
        if amounts
    }
    return {
        "name": CONTAINER_NAME,
        "image": managed.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", START_COMMAND],
        "env": [
            {
                "name": PASSWORD_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": redis_secret_name(store), "key": PASSWORD_KEY}
                },
            }
        ],
        "ports": [{"name": PORT_NAME, "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "resources": resources,
        "readinessProbe": _exec_probe(READINESS_COMMAND, initial_delay=2, period=5, failures=3),
        "livenessProbe": _exec_probe(LIVENESS_COMMAND, initial_delay=15, period=10, failures=5),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": REDIS_UID,
            "runAsGroup": REDIS_UID,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            # The root filesystem is read-only; redis-cli and the shell may still need /tmp.
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        ],
    }


def render_redis_statefulset(store: TaskStore, password_fingerprint: str) -> Manifest:
    """The StatefulSet ``<name>-redis``: one password-protected, locked-down Redis.

    ``password_fingerprint`` (of the Secret's value) goes into the pod template's config
    hash with redis.conf, so a recreated password restarts Redis with it, as it rolls the
    agents. With ``storage`` the data lives in a volume claim per replica, kept or deleted
    with the StatefulSet as ``deletionPolicy`` says; without it, in an emptyDir.
    """
    managed = managed_redis(store)
    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": redis_configmap_name(store)}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    spec: Manifest = {
        "replicas": 1,
        "serviceName": redis_name(store),
        "selector": {"matchLabels": selector_labels(store)},
        "template": {
            "metadata": {
                "labels": redis_labels(store),
                "annotations": {
                    CONFIG_HASH_ANNOTATION: stable_hash(
                        {"config": render_redis_config(store), "password": password_fingerprint}
                    )
                },
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": REDIS_UID,
                    "runAsGroup": REDIS_UID,
                    "fsGroup": REDIS_UID,
                    "fsGroupChangePolicy": "OnRootMismatch",
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [_redis_container(store, managed)],
                "volumes": volumes,
            },
        },
    }
    if managed.storage is None:
        volumes.append({"name": DATA_VOLUME, "emptyDir": {}})
    else:
        claim_spec: Manifest = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": managed.storage.size}},
        }
        if managed.storage.storage_class_name is not None:
            claim_spec["storageClassName"] = managed.storage.storage_class_name
        spec["volumeClaimTemplates"] = [
            {"metadata": {"name": DATA_VOLUME, "labels": redis_labels(store)}, "spec": claim_spec}
        ]
        spec["persistentVolumeClaimRetentionPolicy"] = {
            # The API's policy names are the StatefulSet's own.
            "whenDeleted": managed.deletion_policy.value,
            "whenScaled": "Retain",
        }
    return _with_spec_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _object_meta(store, redis_name(store)),
            "spec": spec,
        }
    )


def render_redis_networkpolicy(store: TaskStore) -> Manifest:
    """The NetworkPolicy ``<name>-redis``: port 6379 open only to this store's agents."""
    return _with_spec_hash(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _object_meta(store, redis_name(store)),
            "spec": {
                "podSelector": {"matchLabels": selector_labels(store)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        # A podSelector without namespaceSelector: this namespace only.
                        "from": [
                            {"podSelector": {"matchLabels": {TASKSTORE_LABEL: store.metadata.name}}}
                        ],
                        "ports": [{"protocol": "TCP", "port": REDIS_PORT}],
                    }
                ],
            },
        }
    )
