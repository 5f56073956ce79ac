"""The store's backend: its managed Redis objects (or their removal), or its external Secret.

:func:`plan_backend` says whether agents may be pointed at the store now
(:class:`Availability`) and which password fingerprint their config hash carries. The
generated password Secret is created in the same plan as everything that depends on it:
the runtime draws a new password into the observation when the Secret is missing, and
its fingerprint is keyed by the TaskStore's uid, which is known before the Secret
exists (see :func:`password_fingerprint`).
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import SecretStr

from taskstore_operator.api.contract import PASSWORD_KEY, SPEC_HASH_ANNOTATION
from taskstore_operator.api.kinds import CONFIG_MAP, MANAGED_KINDS, SECRET
from taskstore_operator.api.models import ConditionStatus, TaskStore
from taskstore_operator.plan.observed import (
    Event,
    EventType,
    ObjectRef,
    Observed,
    PasswordSecret,
    Plan,
    ref_of,
    store_ref,
)
from taskstore_operator.plan.ownership import changed_by_others
from taskstore_operator.render.agent_env import (
    endpoint,
    password_secret_ref,
    sentinel_password_secret_ref,
)
from taskstore_operator.render.conditions import Reason
from taskstore_operator.render.hashing import secret_fingerprint
from taskstore_operator.render.redis import (
    redis_configmap_name,
    redis_name,
    redis_secret_name,
    render_redis_configmap,
    render_redis_networkpolicy,
    render_redis_secret,
    render_redis_service,
    render_redis_statefulset,
)

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


class Availability(NamedTuple):
    """Whether agents may be pointed at the store now (RedisAvailable), and why not."""

    # RedisAvailable's status; None off the redis backend, which has no such condition.
    status: ConditionStatus | None
    reason: Reason
    message: str
    # The password's fingerprint for the agents' config hash; None without a password.
    fingerprint: str | None = None

    @property
    def ready(self) -> bool:
        """Whether agents may be given the store's environment."""
        return self.status != FALSE


def managed_object_refs(store: TaskStore) -> list[ObjectRef]:
    """Where the managed Redis objects of ``store`` are (or would be)."""
    names = {
        SECRET.kind: redis_secret_name(store),
        CONFIG_MAP.kind: redis_configmap_name(store),
    }
    namespace = store.metadata.namespace
    return [
        ObjectRef(kind.api_version, kind.kind, namespace, names.get(kind.kind, redis_name(store)))
        for kind in MANAGED_KINDS
    ]


def owned_by(live: Mapping[str, Any], store: TaskStore) -> bool:
    """Whether ``live`` was created by this TaskStore (an ownerReference to its uid)."""
    owners = live["metadata"].get("ownerReferences") or []
    return any(owner.get("uid") == store.metadata.uid for owner in owners)


def password_fingerprint(store: TaskStore, secret: Mapping[str, Any]) -> PasswordSecret:
    """What the plan may know of the password in ``secret`` (generated or passwordSecretRef).

    A keyed hash of the value, which never reveals it: the fingerprint ends up in pod
    template annotations, which more people can read than the Secret. The generated
    password (32 random bytes) is keyed by the TaskStore's uid, known before the Secret
    is created; an external one, which may be weak, by its Secret's uid, which only
    those who can read the Secret see. A new value gives a new fingerprint either way.
    """
    secret_ref = password_secret_ref(store)
    data = secret.get("data") or {}
    value = data.get(secret_ref.key) if secret_ref is not None else None
    if not isinstance(value, str):
        return PasswordSecret(fingerprint=None, keys=tuple(sorted(data)))
    generated = store.managed_redis is not None
    key = store.metadata.uid if generated else str(secret["metadata"]["uid"])
    return PasswordSecret(fingerprint=secret_fingerprint(key, value))


def sentinel_fingerprint(store: TaskStore, secret: Mapping[str, Any]) -> str | None:
    """The fingerprint of the sentinels' password in ``secret``, keyed like an external one."""
    secret_ref = sentinel_password_secret_ref(store)
    value = (secret.get("data") or {}).get(secret_ref.key) if secret_ref is not None else None
    if not isinstance(value, str):
        return None
    return secret_fingerprint(str(secret["metadata"]["uid"]), value)


def plan_backend(plan: Plan, observed: Observed, store: TaskStore) -> Availability:
    """Plan the managed Redis objects (or their removal) and say whether agents may use it."""
    if store.managed_redis is not None:
        return _plan_managed(plan, observed, store)
    plan.delete.extend(_owned_managed_objects(observed, store))
    if store.external_redis is None:
        return Availability(None, Reason.RECONCILED, "")
    secret_ref = password_secret_ref(store)
    fingerprint = observed.password.fingerprint if observed.password is not None else None
    if secret_ref is not None and fingerprint is None:
        message = (
            f"Secret {secret_ref.name} with key {secret_ref.key} "
            "(spec.redis.external.passwordSecretRef) not found"
        )
        return Availability(FALSE, Reason.SECRET_NOT_FOUND, message)
    sentinel_ref = sentinel_password_secret_ref(store)
    if sentinel_ref is not None:
        sentinel = observed.password.sentinel_fingerprint if observed.password else None
        if sentinel is None:
            message = (
                f"Secret {sentinel_ref.name} with key {sentinel_ref.key} "
                "(spec.redis.external.sentinelPasswordSecretRef) not found"
            )
            return Availability(FALSE, Reason.SECRET_NOT_FOUND, message)
        # Both passwords roll the agents; without a sentinel one the value is as before.
        fingerprint = f"{fingerprint or ''}+{sentinel}"
    return Availability(
        TRUE, Reason.EXTERNAL_CONFIGURED, f"external Redis at {endpoint(store)}", fingerprint
    )


def _plan_managed(plan: Plan, observed: Observed, store: TaskStore) -> Availability:
    """The managed Redis: the password Secret if missing, then the objects that differ.

    Nothing is written while an object of a managed name is not this store's own: it is
    never adopted, and the store says which it is.
    """
    foreign = [
        f"{kind} {live['metadata']['name']}"
        for kind, live in sorted(observed.managed.items())
        if not owned_by(live, store)
    ]
    if foreign:
        message = (
            f"{', '.join(foreign)} already exist{'s' if len(foreign) == 1 else ''} and "
            "belong to someone else; the operator leaves them alone: rename or delete them"
        )
        return Availability(FALSE, Reason.NAME_IN_USE, message)
    password = observed.password
    if password is None:
        if observed.new_password is None:
            raise ValueError("a managed Redis without its Secret needs a new password drawn")
        password = _create_password_secret(plan, store, observed.new_password)
    elif password.fingerprint is None:
        if observed.new_password is None:
            return _password_key_missing(store, password)
        # The key was renamed: the Secret is ours, restore it with the password it holds.
        secret = render_redis_secret(store, observed.new_password)
        plan.restore.append((ref_of(observed.managed[SECRET.kind]), secret))
        password = password_fingerprint(store, secret)
    fingerprint = password.fingerprint
    if fingerprint is None:
        return _provisioning(store)
    desired = (
        render_redis_configmap(store),
        render_redis_service(store),
        render_redis_networkpolicy(store),
        render_redis_statefulset(store, fingerprint),
    )
    for manifest in desired:
        live = observed.managed.get(manifest["kind"])
        # A new rendering, or a hand edit of what is rendered: applied (forced) again.
        if (
            live is None
            or _spec_hash(live) != _spec_hash(manifest)
            or changed_by_others(live, manifest)
        ):
            plan.apply.append(manifest)
    if observed.redis_ready_replicas < 1:
        return _provisioning(store, fingerprint)
    return Availability(
        TRUE, Reason.REDIS_READY, f"Redis at {endpoint(store)} is ready", fingerprint
    )


def _create_password_secret(plan: Plan, store: TaskStore, password: SecretStr) -> PasswordSecret:
    """Plan the generated Secret's creation; the fingerprint of what it will hold."""
    secret = render_redis_secret(store, password)
    plan.create.append(secret)
    metadata = store.metadata
    plan.events.append(
        Event(
            store_ref(metadata.namespace, metadata.name, metadata.uid),
            EventType.NORMAL,
            "PasswordCreated",
            f"Secret {redis_secret_name(store)}",
        )
    )
    return password_fingerprint(store, secret)


def _owned_managed_objects(observed: Observed, store: TaskStore) -> list[ObjectRef]:
    """Managed Redis objects this TaskStore owns, to delete when it no longer asks for one."""
    refs = []
    for kind, live in observed.managed.items():
        metadata = live["metadata"]
        if owned_by(live, store):
            # With the uid: the deletion must not reach an object that took the name since.
            namespace, name, uid = metadata["namespace"], metadata["name"], metadata.get("uid", "")
            refs.append(ObjectRef(live["apiVersion"], kind, namespace, name, uid))
    return refs


def _password_key_missing(store: TaskStore, password: PasswordSecret) -> Availability:
    keys = ", ".join(password.keys) or "none"
    message = (
        f"Secret {redis_secret_name(store)} has no key {PASSWORD_KEY} (its keys: {keys}), and "
        f"the password cannot be told from them: put it back under {PASSWORD_KEY}, or "
        "delete the Secret to generate a new password"
    )
    return Availability(FALSE, Reason.PASSWORD_KEY_MISSING, message)


def _spec_hash(manifest: Mapping[str, Any] | None) -> str | None:
    if manifest is None:
        return None
    annotations = manifest["metadata"].get("annotations") or {}
    value = annotations.get(SPEC_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


def _provisioning(store: TaskStore, fingerprint: str | None = None) -> Availability:
    # One message from the Secret's creation to the first ready replica: one status write.
    return Availability(
        FALSE,
        Reason.PROVISIONING,
        f"StatefulSet {redis_name(store)} has no ready replica yet",
        fingerprint,
    )
