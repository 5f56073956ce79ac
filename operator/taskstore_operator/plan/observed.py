"""The planner's input and output: what one reconcile observed, and the plan of its writes.

Plain values, shared by the planner (:mod:`taskstore_operator.plan`), the runtime that
gathers the :class:`Observed` state and carries out the :class:`Plan`, and the API
adapter (:mod:`taskstore_operator.kube`), which addresses objects by :class:`ObjectRef`
and posts :class:`Event` values.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import SecretStr

from taskstore_operator.api.contract import API_VERSION, KIND
from taskstore_operator.api.models import TaskStore
from taskstore_operator.api.validation import InvalidSpecError, parse_taskstore

Manifest = dict[str, Any]
# A TaskStore manifest parsed once per reconcile: the store, why it is refused, or None
# when there is no TaskStore.
Parsed = TaskStore | InvalidSpecError | None


class ObjectRef(NamedTuple):
    """Enough to address one namespaced object."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


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
class Settings:
    """The operator's settings that shape what it plans (flags and environment)."""

    # The image of the init container that copies the library into agent pods.
    library_image: str


@dataclass(frozen=True)
class PasswordSecret:
    """What the operator may know of a password Secret: that it exists, and a fingerprint."""

    # See taskstore_operator.plan.backend.password_fingerprint; None when the key is missing.
    fingerprint: str | None
    # The Secret's key names (never values), to say what is wrong when the key is missing.
    keys: tuple[str, ...] = ()
    # The same for the sentinels' password (sentinelPasswordSecretRef); None without one.
    sentinel_fingerprint: str | None = None


def parse(manifest: Mapping[str, Any] | None) -> Parsed:
    """The TaskStore in ``manifest``, the error that refuses it, or None without a manifest."""
    if manifest is None:
        return None
    try:
        return parse_taskstore(manifest)
    except InvalidSpecError as error:
        return error


@dataclass(frozen=True)
class Observed:
    """The state one reconcile reads from the API server."""

    # The TaskStore as read (metadata, spec, status); None when it does not exist.
    manifest: Mapping[str, Any] | None
    namespace: str
    name: str
    now: datetime
    # parse(manifest), done once by whoever gathered the state.
    parsed: Parsed = None
    # Managed objects by kind (see managed_object_refs), as they are; absent when missing.
    managed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The Secret agents read the password from (generated or passwordSecretRef); None if missing.
    password: PasswordSecret | None = None
    # The password the plan writes into the generated Secret: a fresh one, drawn by the
    # runtime when the Secret is missing (the plan creates the Secret with it and renders
    # what depends on it at once), or the one found under the only key of a Secret whose
    # key ``password`` was renamed (the plan restores the key).
    new_password: SecretStr | None = None
    redis_ready_replicas: int = 0
    # The Deployments of the namespace that opt in to the store or carry its injection
    # (others may be included: the plan ignores them).
    deployments: Sequence[Mapping[str, Any]] = ()
    # The other TaskStores named by the labels of those Deployments that exist and are not
    # being deleted: a Deployment moving to one of them is left for that store to take.
    other_stores: frozenset[str] = frozenset()

    @property
    def store(self) -> TaskStore | None:
        """The parsed TaskStore; None when it is missing or refused."""
        return self.parsed if isinstance(self.parsed, TaskStore) else None


@dataclass
class Plan:
    """What to write, in the order the caller should write it. Empty when converged."""

    # Objects to create, never to overwrite (the generated password Secret). Left out of
    # the repr: it holds the password.
    create: list[Manifest] = field(default_factory=list, repr=False)
    # Generated password Secrets to put back with their key restored: the live one (by
    # uid) is deleted, then the manifest created (Secrets are never patched). Not in the
    # repr: the manifests hold the password.
    restore: list[tuple[ObjectRef, Manifest]] = field(default_factory=list, repr=False)
    # Managed objects, applied (forced: the operator owns them).
    apply: list[Manifest] = field(default_factory=list)
    # Server-side-apply bodies for Deployments, forced only for the names in
    # force_deployments (those that carry the operator's injection: see plan.agents).
    apply_deployments: list[Manifest] = field(default_factory=list)
    force_deployments: set[str] = field(default_factory=set)
    # Removal bodies: the operator's fields go, everything else stays.
    strip_deployments: list[Manifest] = field(default_factory=list)
    delete: list[ObjectRef] = field(default_factory=list)
    # The whole status to write, when it differs from what was read.
    status: Manifest | None = None
    events: list[Event] = field(default_factory=list)
    # The finalizer of earlier versions, released (the operator adds none).
    remove_finalizer: bool = False

    @property
    def writes(self) -> int:
        """The number of write requests this plan makes (events included)."""
        return (
            len(self.create)
            + 2 * len(self.restore)
            + len(self.apply)
            + len(self.apply_deployments)
            + len(self.strip_deployments)
            + len(self.delete)
            + int(self.status is not None)
            + len(self.events)
            + int(self.remove_finalizer)
        )


def store_ref(namespace: str, name: str, uid: str = "") -> ObjectRef:
    """A reference to a TaskStore."""
    return ObjectRef(API_VERSION, KIND, namespace, name, uid)


def ref_of(manifest: Mapping[str, Any]) -> ObjectRef:
    """A reference to the object a manifest describes."""
    metadata = manifest["metadata"]
    return ObjectRef(
        manifest["apiVersion"],
        manifest["kind"],
        metadata["namespace"],
        metadata["name"],
        metadata.get("uid", ""),
    )
