"""The operator's decisions, as a pure function: (TaskStore, observed state) -> plan.

:func:`plan_reconcile` reads nothing and writes nothing. The caller gathers the
:class:`Observed` state (the TaskStore manifest as read, its managed objects, the
password Secret's fingerprint, never its value, and the Deployments of its namespace
that opt in to it or carry its injection),
carries out the :class:`Plan`, and calls again until the plan is empty. Every object
in the plan differs from what was observed, so a converged store plans no write at all:
managed objects are compared by their ``tealagents.io/spec-hash`` annotation,
Deployments by the fields the operator owns, and status as a whole.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from taskstore_operator.api.contract import (
    API_VERSION,
    CONFIG_HASH_ANNOTATION,
    FIELD_MANAGER,
    GROUP,
    KIND,
    SPEC_HASH_ANNOTATION,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import (
    MAX_NAME_LENGTH,
    AgentsStatus,
    Backend,
    ConditionStatus,
    DeletionPolicy,
    TaskStore,
    TaskStoreStatus,
)
from taskstore_operator.api.validation import InvalidSpecError, parse_taskstore
from taskstore_operator.render.agent_env import (
    agent_env,
    config_hash,
    endpoint,
    env_conflicts,
    owned_env_names,
    password_secret_ref,
    render_agent_deployment_patch,
    render_agent_removal_patch,
    select_containers,
)
from taskstore_operator.render.conditions import (
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)
from taskstore_operator.render.redis import (
    redis_configmap_name,
    redis_name,
    redis_secret_name,
    render_redis_configmap,
    render_redis_networkpolicy,
    render_redis_service,
    render_redis_statefulset,
)

Manifest = dict[str, Any]

# On TaskStores: the operator's own finalizer, added and removed by the operator itself.
FINALIZER: Final = f"{GROUP}/finalizer"

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


class ObjectRef(NamedTuple):
    """Enough to address one namespaced object."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


# The API versions of the managed Redis objects, by kind.
MANAGED_KINDS: Final = {
    "Secret": "v1",
    "ConfigMap": "v1",
    "Service": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "StatefulSet": "apps/v1",
}


class EventType(StrEnum):
    """The two types of Kubernetes Events."""

    NORMAL = "Normal"
    WARNING = "Warning"


class Event(NamedTuple):
    """One Kubernetes Event to emit about ``regarding``."""

    regarding: ObjectRef
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class PasswordSecret:
    """What the operator may know of a password Secret: that it exists, and a fingerprint."""

    # secret_fingerprint() of the value under the key; None when the key is missing.
    fingerprint: str | None


@dataclass(frozen=True)
class Observed:
    """The state one reconcile reads from the API server."""

    # The TaskStore as read (metadata, spec, status); None when it does not exist.
    manifest: Mapping[str, Any] | None
    namespace: str
    name: str
    now: datetime
    # Managed objects by kind (see managed_object_refs), as they are; absent when missing.
    managed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The Secret agents read the password from (generated or passwordSecretRef); None if missing.
    password: PasswordSecret | None = None
    redis_ready_replicas: int = 0
    # The Deployments of the namespace that opt in to the store or carry its injection
    # (others may be included: the plan ignores them).
    deployments: Sequence[Mapping[str, Any]] = ()
    # PersistentVolumeClaims of the managed Redis (created by the StatefulSet controller).
    claims: Sequence[ObjectRef] = ()


@dataclass
class Plan:
    """What to write, in the order the caller should write it. Empty when converged."""

    add_finalizer: bool = False
    # Create the generated password Secret (the caller draws the password); then plan again.
    create_password_secret: TaskStore | None = None
    # Managed objects, applied (forced: the operator owns them).
    apply: list[Manifest] = field(default_factory=list)
    # Server-side-apply bodies for Deployments, never forced.
    apply_deployments: list[Manifest] = field(default_factory=list)
    # Removal bodies: the operator's fields go, everything else stays.
    strip_deployments: list[Manifest] = field(default_factory=list)
    delete: list[ObjectRef] = field(default_factory=list)
    # The whole status to write, when it differs from what was read.
    status: Manifest | None = None
    events: list[Event] = field(default_factory=list)
    remove_finalizer: bool = False

    @property
    def writes(self) -> int:
        """The number of write requests this plan makes (events included)."""
        return (
            int(self.add_finalizer)
            + int(self.create_password_secret is not None)
            + len(self.apply)
            + len(self.apply_deployments)
            + len(self.strip_deployments)
            + len(self.delete)
            + int(self.status is not None)
            + len(self.events)
            + int(self.remove_finalizer)
        )


class _Availability(NamedTuple):
    """Whether agents may be pointed at the store now (RedisAvailable), and why not."""

    # RedisAvailable's status; None off the redis backend, which has no such condition.
    status: ConditionStatus | None
    reason: Reason
    message: str

    @property
    def ready(self) -> bool:
        return self.status != FALSE


def plan_reconcile(observed: Observed) -> Plan:
    """The writes that bring the cluster to what the TaskStore asks for (see module doc)."""
    manifest = observed.manifest
    if manifest is None:
        return _plan_missing(observed)
    metadata = manifest.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return _plan_deletion(observed, manifest)
    plan = Plan(add_finalizer=FINALIZER not in (metadata.get("finalizers") or []))
    try:
        store = parse_taskstore(manifest)
    except InvalidSpecError as error:
        _plan_invalid(plan, observed, manifest, error)
        return plan
    availability = _plan_backend(plan, observed, store)
    if plan.create_password_secret is not None:
        # Nothing else can be rendered before the password has a fingerprint.
        _plan_status(plan, observed, manifest, store, availability, _AgentsOutcome())
        return plan
    agents = _plan_agents(plan, observed, store, availability.ready)
    _plan_status(plan, observed, manifest, store, availability, agents)
    return plan


def managed_object_refs(store: TaskStore) -> list[ObjectRef]:
    """Where the managed Redis objects of ``store`` are (or would be)."""
    names = {
        "Secret": redis_secret_name(store),
        "ConfigMap": redis_configmap_name(store),
    }
    namespace = store.metadata.namespace
    return [
        ObjectRef(api_version, kind, namespace, names.get(kind, redis_name(store)))
        for kind, api_version in MANAGED_KINDS.items()
    ]


def plan_error_status(manifest: Mapping[str, Any], message: str, now: datetime) -> Manifest | None:
    """The status after a failed API call (Ready=False, ReconcileError); None if already so."""
    generation = int(manifest["metadata"].get("generation") or 0)
    old = _read_status(manifest)
    conditions = set_condition(
        old.conditions, ConditionType.READY, FALSE, Reason.RECONCILE_ERROR, message, generation, now
    )
    new = old.model_copy(update={"conditions": conditions})
    if new == old:
        return None
    return new.model_dump(mode="json", by_alias=True, exclude_none=True)


def stores_named_by(obj: Mapping[str, Any]) -> set[str]:
    """The TaskStores of the object's namespace that an event on the object concerns.

    A Deployment concerns the store its label names and the store whose environment it
    carries (its pod template's label), which differ after the label changed; a managed
    object concerns its owner.
    """
    metadata = obj.get("metadata") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    names = {
        labels[TASKSTORE_LABEL]
        for labels in (metadata.get("labels"), (template.get("metadata") or {}).get("labels"))
        if labels and labels.get(TASKSTORE_LABEL)
    }
    names.update(
        owner["name"]
        for owner in metadata.get("ownerReferences") or []
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION
    )
    return names


def store_ref(namespace: str, name: str, uid: str = "") -> ObjectRef:
    """A reference to a TaskStore."""
    return ObjectRef(API_VERSION, KIND, namespace, name, uid)


def deployment_ref(deployment: Mapping[str, Any]) -> ObjectRef:
    """A reference to a Deployment."""
    metadata = deployment["metadata"]
    return ObjectRef(
        "apps/v1", "Deployment", metadata["namespace"], metadata["name"], metadata.get("uid", "")
    )


def carries_injection(deployment: Mapping[str, Any], store_name: str) -> bool:
    """Whether the operator injected ``store_name``'s environment into the Deployment."""
    return injected_store(deployment) == store_name


def injected_store(deployment: Mapping[str, Any]) -> str | None:
    """The store whose environment the operator injected into the Deployment, if any.

    That is the pod template's label, provided the operator's field manager has fields
    on the Deployment (a copied template label alone is not an injection).
    """
    metadata = deployment.get("metadata") or {}
    managers = {entry.get("manager") for entry in metadata.get("managedFields") or []}
    if FIELD_MANAGER not in managers:
        return None
    template = (deployment.get("spec") or {}).get("template") or {}
    name = ((template.get("metadata") or {}).get("labels") or {}).get(TASKSTORE_LABEL)
    return name if isinstance(name, str) and name else None


def stray_injection(deployment: Mapping[str, Any]) -> str | None:
    """The store whose injection the Deployment carries though its own label no longer names it.

    Such a Deployment is not found by the label selector of :func:`opt_in_selector`, yet
    the store's reconcile must strip it.
    """
    injected = injected_store(deployment)
    return None if injected is None or opted_in(deployment, injected) else injected


def opt_in_selector(store_name: str) -> str | None:
    """The label selector of the Deployments that opt in to ``store_name``.

    None when no Deployment can name the store: a label value holds at most 63 characters.
    """
    if len(store_name) > MAX_NAME_LENGTH:
        return None
    return f"{TASKSTORE_LABEL}={store_name}"


def opted_in(deployment: Mapping[str, Any], store_name: str) -> bool:
    """Whether the Deployment's own label names ``store_name``."""
    return (deployment["metadata"].get("labels") or {}).get(TASKSTORE_LABEL) == store_name


# -- the TaskStore is gone, going, or unreadable --------------------------------------------


def _plan_missing(observed: Observed) -> Plan:
    """No TaskStore: take back what was injected, and tell the Deployments that name it."""
    plan = Plan()
    for deployment in observed.deployments:
        if carries_injection(deployment, observed.name):
            plan.strip_deployments.append(render_agent_removal_patch(deployment))
        elif opted_in(deployment, observed.name):
            plan.events.append(
                Event(
                    deployment_ref(deployment),
                    EventType.WARNING,
                    "TaskStoreNotFound",
                    f"no TaskStore {observed.name} in namespace {observed.namespace}",
                )
            )
    return plan


def _plan_deletion(observed: Observed, manifest: Mapping[str, Any]) -> Plan:
    """A TaskStore being deleted: strip the agents and drop claims, then release the finalizer.

    Owned objects go with the TaskStore (garbage collection of owner references).
    """
    if FINALIZER not in (manifest["metadata"].get("finalizers") or []):
        return Plan()
    plan = Plan(remove_finalizer=True)
    plan.strip_deployments = [
        render_agent_removal_patch(deployment)
        for deployment in observed.deployments
        if carries_injection(deployment, observed.name)
    ]
    if _deletion_policy(manifest) == DeletionPolicy.DELETE:
        plan.delete.extend(observed.claims)
    return plan


def _deletion_policy(manifest: Mapping[str, Any]) -> DeletionPolicy:
    """The managed Redis's deletionPolicy; Retain when it cannot be read (never lose data)."""
    try:
        store = parse_taskstore(manifest)
    except InvalidSpecError:
        return DeletionPolicy.RETAIN
    redis = store.spec.redis
    if redis is None or redis.managed is None:
        return DeletionPolicy.RETAIN
    return redis.managed.deletion_policy


def _plan_invalid(
    plan: Plan, observed: Observed, manifest: Mapping[str, Any], error: InvalidSpecError
) -> None:
    """A spec the operator refuses: say which field and why, and change nothing else."""
    generation = int(manifest["metadata"].get("generation") or 0)
    old = _read_status(manifest)
    message = f"invalid spec: {error}"
    conditions = set_condition(
        old.conditions,
        ConditionType.READY,
        FALSE,
        Reason.INVALID_SPEC,
        message,
        generation,
        observed.now,
    )
    new = old.model_copy(update={"observed_generation": generation, "conditions": conditions})
    _finish_status(plan, observed, manifest, old, new)


# -- the backend: the managed Redis, or the external Secret ---------------------------------


def _plan_backend(plan: Plan, observed: Observed, store: TaskStore) -> _Availability:
    """Plan the managed Redis objects (or their removal) and say whether agents may use it."""
    redis = store.spec.redis if store.spec.backend == Backend.REDIS else None
    if redis is not None and redis.managed is not None:
        return _plan_managed(plan, observed, store)
    plan.delete.extend(_owned_managed_objects(observed, store))
    if redis is None:
        return _Availability(None, Reason.RECONCILED, "")
    secret_ref = password_secret_ref(store)
    if secret_ref is not None and (
        observed.password is None or observed.password.fingerprint is None
    ):
        message = (
            f"Secret {secret_ref.name} with key {secret_ref.key} "
            "(spec.redis.external.passwordSecretRef) not found"
        )
        return _unavailable(Reason.SECRET_NOT_FOUND, message)
    return _available(Reason.EXTERNAL_CONFIGURED, f"external Redis at {endpoint(store)}")


def _plan_managed(plan: Plan, observed: Observed, store: TaskStore) -> _Availability:
    """The managed Redis: Secret first, then the other objects when they differ."""
    if observed.password is None or observed.password.fingerprint is None:
        if observed.password is None:
            plan.create_password_secret = store
            plan.events.append(
                _store_event(
                    store, EventType.NORMAL, "PasswordCreated", f"Secret {redis_secret_name(store)}"
                )
            )
        return _provisioning(store)
    desired = (
        render_redis_configmap(store),
        render_redis_service(store),
        render_redis_networkpolicy(store),
        render_redis_statefulset(store, observed.password.fingerprint),
    )
    for manifest in desired:
        live = observed.managed.get(manifest["kind"])
        if _spec_hash(live) != _spec_hash(manifest):
            plan.apply.append(manifest)
    if observed.redis_ready_replicas < 1:
        return _provisioning(store)
    return _available(Reason.REDIS_READY, f"Redis at {endpoint(store)} is ready")


def _owned_managed_objects(observed: Observed, store: TaskStore) -> list[ObjectRef]:
    """Managed Redis objects this TaskStore owns, to delete when it no longer asks for one."""
    refs = []
    for kind, live in observed.managed.items():
        metadata = live["metadata"]
        owners = {owner.get("uid") for owner in metadata.get("ownerReferences") or []}
        if store.metadata.uid in owners:
            refs.append(
                ObjectRef(live["apiVersion"], kind, metadata["namespace"], metadata["name"])
            )
    return refs


def _spec_hash(manifest: Mapping[str, Any] | None) -> str | None:
    if manifest is None:
        return None
    annotations = manifest["metadata"].get("annotations") or {}
    value = annotations.get(SPEC_HASH_ANNOTATION)
    return value if isinstance(value, str) else None


def _available(reason: Reason, message: str) -> _Availability:
    return _Availability(TRUE, reason, message)


def _unavailable(reason: Reason, message: str) -> _Availability:
    return _Availability(FALSE, reason, message)


def _provisioning(store: TaskStore) -> _Availability:
    # One message from the Secret's creation to the first ready replica: one status write.
    return _unavailable(
        Reason.PROVISIONING, f"StatefulSet {redis_name(store)} has no ready replica yet"
    )


# -- the agents --------------------------------------------------------------------------------


@dataclass
class _AgentsOutcome:
    """The opted-in Deployments after the plan: configured and conflicting, by name."""

    names: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def _plan_agents(
    plan: Plan, observed: Observed, store: TaskStore, available: bool
) -> _AgentsOutcome:
    """Apply the environment where it differs, strip it where it no longer belongs."""
    name = store.metadata.name
    env = agent_env(store)
    fingerprint = observed.password.fingerprint if observed.password is not None else None
    desired_hash = config_hash(env, fingerprint)
    outcome = _AgentsOutcome()
    for deployment in sorted(observed.deployments, key=lambda d: str(d["metadata"]["name"])):
        deployment_name = str(deployment["metadata"]["name"])
        carries = carries_injection(deployment, name)
        if not opted_in(deployment, name):
            if carries:
                plan.strip_deployments.append(render_agent_removal_patch(deployment))
            continue
        owned = owned_env_names(deployment) if carries else {}
        if env_conflicts(deployment, env, owned):
            outcome.conflicts.append(deployment_name)
            if carries:
                outcome.names.append(deployment_name)
            continue
        if not available:
            # Until the Redis is there, agents keep what they had.
            if carries:
                outcome.names.append(deployment_name)
            continue
        if not _configured(deployment, name, env, desired_hash, owned):
            plan.apply_deployments.append(
                render_agent_deployment_patch(deployment, store, env, desired_hash)
            )
        outcome.names.append(deployment_name)
    return outcome


def _configured(
    deployment: Mapping[str, Any],
    store_name: str,
    env: Sequence[Mapping[str, Any]],
    desired_hash: str,
    owned: Mapping[str, frozenset[str]],
) -> bool:
    """Whether the Deployment already carries exactly what the operator would apply.

    The config hash covers the env values, and a value someone else changed would move
    its ownership away from the operator, so the label, the hash and the owned names
    decide without comparing values (which the server may have defaulted).
    """
    template = deployment.get("spec", {}).get("template", {}).get("metadata") or {}
    if (template.get("labels") or {}).get(TASKSTORE_LABEL) != store_name:
        return False
    if (template.get("annotations") or {}).get(CONFIG_HASH_ANNOTATION) != desired_hash:
        return False
    names = frozenset(variable["name"] for variable in env)
    wanted = dict.fromkeys(select_containers(deployment).names, names)
    return {container: got for container, got in owned.items() if got} == wanted


# -- status and events -------------------------------------------------------------------------


def _plan_status(
    plan: Plan,
    observed: Observed,
    manifest: Mapping[str, Any],
    store: TaskStore,
    availability: _Availability,
    agents: _AgentsOutcome,
) -> None:
    """The status the plan leads to, and the Events of its transitions."""
    generation = store.metadata.generation
    old = _read_status(manifest)
    conditions = list(old.conditions)
    if availability.status is None:
        conditions = remove_condition(conditions, ConditionType.REDIS_AVAILABLE)
    else:
        conditions = set_condition(
            conditions,
            ConditionType.REDIS_AVAILABLE,
            availability.status,
            availability.reason,
            availability.message,
            generation,
            observed.now,
        )
    if agents.conflicts:
        agents_status, agents_reason = FALSE, Reason.AGENTS_CONFLICT
        agents_message = "hand-set variables in Deployments: " + ", ".join(agents.conflicts)
    elif not availability.ready:
        agents_status, agents_reason = FALSE, Reason.WAITING_FOR_REDIS
        agents_message = "agents keep their environment until the Redis is available"
    else:
        agents_status, agents_reason = TRUE, Reason.INJECTED
        agents_message = f"{len(agents.names)} Deployment(s) configured"
    conditions = set_condition(
        conditions,
        ConditionType.AGENTS_CONFIGURED,
        agents_status,
        agents_reason,
        agents_message,
        generation,
        observed.now,
    )
    if not availability.ready:
        ready = (FALSE, availability.reason, availability.message)
    elif agents.conflicts:
        ready = (FALSE, Reason.AGENTS_CONFLICT, agents_message)
    else:
        ready = (TRUE, Reason.RECONCILED, "")
    conditions = set_condition(conditions, ConditionType.READY, *ready, generation, observed.now)
    redis = store.spec.redis
    new = TaskStoreStatus(
        observed_generation=generation,
        endpoint=endpoint(store),
        secret_name=redis_secret_name(store)
        if store.spec.backend == Backend.REDIS and redis is not None and redis.managed is not None
        else None,
        agents=AgentsStatus(
            injected=len(agents.names), names=agents.names, conflicts=agents.conflicts
        ),
        conditions=conditions,
    )
    _finish_status(plan, observed, manifest, old, new)


def _read_status(manifest: Mapping[str, Any]) -> TaskStoreStatus:
    """The status as read; an unreadable one is rewritten from scratch, never a failure."""
    try:
        return TaskStoreStatus.model_validate(manifest.get("status") or {})
    except ValidationError:
        return TaskStoreStatus()


def _finish_status(
    plan: Plan,
    observed: Observed,
    manifest: Mapping[str, Any],
    old: TaskStoreStatus,
    new: TaskStoreStatus,
) -> None:
    """Write the status only when it changed; emit an Event when Ready changes."""
    if new != old or not manifest.get("status"):
        plan.status = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    if _transitioned(old, new):
        ready = find_condition(new.conditions, ConditionType.READY)
        assert ready is not None  # every path sets Ready
        metadata = manifest["metadata"]
        plan.events.append(
            Event(
                store_ref(observed.namespace, observed.name, metadata.get("uid", "")),
                EventType.NORMAL if ready.status == TRUE else EventType.WARNING,
                ready.reason,
                ready.message or "the TaskStore is ready",
            )
        )


def _transitioned(old: TaskStoreStatus, new: TaskStoreStatus) -> bool:
    """Whether Ready's status or reason changed."""
    before = find_condition(old.conditions, ConditionType.READY)
    after = find_condition(new.conditions, ConditionType.READY)
    if after is None:
        return False
    return before is None or (before.status, before.reason) != (after.status, after.reason)


def _store_event(store: TaskStore, type_: EventType, reason: str, message: str) -> Event:
    metadata = store.metadata
    return Event(store_ref(metadata.namespace, metadata.name, metadata.uid), type_, reason, message)
