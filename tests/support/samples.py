"""The TaskStore specs and the objects around them that the e2e and delivery tests (and the
operator benchmark) create: one set, so a scenario reads as the spec it names."""

from typing import Any, Final

from taskstore_operator.api.contract import API_VERSION, KIND, TASKSTORE_LABEL

Manifest = dict[str, Any]

# A spec with every field defaulted: the memory backend.
DEFAULTS: Final[Manifest] = {}
MEMORY: Final[Manifest] = {"backend": "memory"}
# A managed Redis without storage (ephemeral).
MANAGED: Final[Manifest] = {"backend": "redis", "redis": {"managed": {}}}
EXTERNAL: Final[Manifest] = {
    "backend": "redis",
    "ttlSeconds": 60,
    "redis": {
        "keyPrefix": "team-a",
        "external": {"host": "redis.example.internal", "port": 6380, "db": 2, "tls": True},
    },
}
CUSTOM: Final[Manifest] = {
    "backend": "custom",
    "custom": {
        "module": "my_company.stores",
        "className": "Store",
        "env": [{"name": "STORE_URL", "value": "http://store"}],
    },
}
AGENT_IMAGE: Final = "registry.invalid/agent:1"  # never pulled: no kubelet runs


def managed_with_storage(deletion_policy: str) -> Manifest:
    """A managed Redis with a 1Gi volume claim, kept or deleted with the store."""
    managed = {"storage": {"size": "1Gi"}, "deletionPolicy": deletion_policy}
    return {"backend": "redis", "redis": {"managed": managed}}


def external_with_password(secret: str, host: str = "redis.example.internal") -> Manifest:
    """An external Redis whose password is key ``password`` of Secret ``secret``."""
    external = {"host": host, "passwordSecretRef": {"name": secret, "key": "password"}}
    return {"backend": "redis", "redis": {"external": external}}


def taskstore(name: str, spec: Manifest) -> Manifest:
    """A TaskStore manifest (the namespace is the request's)."""
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


def password_secret(name: str, password: str) -> Manifest:
    """A Secret holding ``password`` under the key ``password``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"password": password},
    }


def agent_deployment(
    name: str,
    store: str | None,
    containers: tuple[str, ...] = ("agent",),
    env: list[Manifest] | None = None,
) -> Manifest:
    """An agent Deployment that opts in to ``store`` (None: opts in to nothing)."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {TASKSTORE_LABEL: store} if store else {}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": c, "image": AGENT_IMAGE, "env": env or []} for c in containers
                    ]
                },
            },
        },
    }


def redis_volume_claim(store: str, statefulset: Manifest | None = None) -> Manifest:
    """The claim the StatefulSet controller would create for a managed Redis with storage.

    Under ``persistentVolumeClaimRetentionPolicy.whenDeleted: Delete`` that controller
    makes the claim owned by ``statefulset`` (the live object), so it goes with it.
    """
    labels = {
        "app.kubernetes.io/name": "redis",
        "app.kubernetes.io/instance": store,
        "app.kubernetes.io/managed-by": "taskstore-operator",
        "app.kubernetes.io/part-of": "teal-agents",
    }
    policy = ((statefulset or {}).get("spec") or {}).get("persistentVolumeClaimRetentionPolicy")
    owners: Manifest = {}
    if statefulset is not None and (policy or {}).get("whenDeleted") == "Delete":
        metadata = statefulset["metadata"]
        owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "controller": True}
        owners["ownerReferences"] = [owner | {"name": metadata["name"], "uid": metadata["uid"]}]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"data-{store}-redis-0", "labels": labels, **owners},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
