"""One reconcile of one TaskStore: one observation, one plan (pure), the writes it lists.

The reads are plain GETs and LISTs, so a reconcile sees the latest state, and a
converged store costs reads only: no write request at all. The one exception: a store
without a managed Redis finds the managed objects it still owns (to delete them) in the
index the watches keep (see :mod:`taskstore_operator.runtime.managed_index`).
Deployments are read by the store's opt-in label selector, plus, one by one, the few
that carry the store's
injection but whose label no longer names it (the watch knows them: see
:mod:`taskstore_operator.runtime.strays`). The version of every object read or written
is remembered in :class:`SeenVersions`, so its watch event does not start a reconcile
of the same store again.

The spec is parsed once, here, and handed to the planner in the observation. When a
managed Redis's generated password Secret is missing, a new password is drawn into the
observation, and the plan creates the Secret along with everything that depends on it.
"""

import base64
import binascii
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import SecretStr

from taskstore_operator.api.contract import API_VERSION, FINALIZER, KIND
from taskstore_operator.api.models import TaskStore
from taskstore_operator.kube import Kube, KubeError
from taskstore_operator.metrics import INJECTED_AGENTS, WRITES
from taskstore_operator.plan.agents import label_of, opt_in_selector
from taskstore_operator.plan.backend import (
    managed_object_refs,
    owned_by,
    password_fingerprint,
    sentinel_fingerprint,
)
from taskstore_operator.plan.observed import (
    Event,
    ObjectRef,
    Observed,
    PasswordSecret,
    Plan,
    Settings,
    parse,
    ref_of,
    store_ref,
)
from taskstore_operator.plan.reconcile import plan_reconcile
from taskstore_operator.plan.status import plan_error_status
from taskstore_operator.render.agent_env import password_secret_ref, sentinel_password_secret_ref
from taskstore_operator.render.redis import generate_password
from taskstore_operator.runtime.managed_index import INDEXED_KINDS, ManagedObjects
from taskstore_operator.runtime.queue import Key
from taskstore_operator.runtime.seen import SeenVersions

log = logging.getLogger(__name__)

# Warnings on Deployments cannot be tied to a status transition; they are sent once per process.
ONCE_PER_PROCESS_REASONS: Final = frozenset({"TaskStoreNotFound"})


class Reconciler:
    """Reconciles TaskStores through :class:`Kube` (synchronous: run it in a thread)."""

    def __init__(
        self, kube: Kube, settings: Settings, managed: ManagedObjects | None = None
    ) -> None:
        self._kube = kube
        self._settings = settings
        self.managed = managed if managed is not None else ManagedObjects()
        self._warned: set[tuple[str, str]] = set()
        self.seen = SeenVersions()

    def reconcile(self, namespace: str, name: str, strays: Collection[str] = ()) -> None:
        """Bring one TaskStore and its agents to what its spec asks for.

        ``strays`` names the Deployments known to carry the store's injection though their
        label no longer names it.
        """
        observed = self.observe(namespace, name, strays)
        plan = plan_reconcile(observed, self._settings)
        if plan.writes:
            try:
                self.execute(observed, plan)
            except KubeError as error:
                self._report_error(observed, error)
                raise
        self._record_agents(observed, plan)

    def observe(self, namespace: str, name: str, strays: Collection[str] = ()) -> Observed:
        """Read everything one reconcile of ``namespace/name`` needs (``strays``: see reconcile)."""
        kube = self._kube
        key = (namespace, name)
        now = datetime.now(UTC)
        manifest = kube.get(API_VERSION, KIND, namespace, name)
        deployments = self._deployments(namespace, name, strays)
        for read in (manifest or {}, *deployments):
            self.seen.record(key, read)
        other_stores = self._other_stores(namespace, name, deployments)
        parsed = parse(manifest)
        store = parsed if isinstance(parsed, TaskStore) else None
        if manifest is None or store is None:
            return Observed(
                manifest,
                namespace,
                name,
                now,
                parsed,
                deployments=deployments,
                other_stores=other_stores,
            )
        deleting = bool(manifest["metadata"].get("deletionTimestamp"))
        # A managed Redis is compared with what is rendered: read whole. Without one, its
        # objects are only deleted if owned: the index knows them (its module says why).
        wants_redis = store.managed_redis is not None and not deleting
        managed = {
            ref.kind: live
            for ref in managed_object_refs(store)
            if (live := self._read_managed(ref, whole=wants_redis)) is not None
        }
        for read in managed.values():
            self.seen.record(key, read)
        statefulset = managed.get("StatefulSet") or {}
        generated = managed.get("Secret")
        if generated is not None and not owned_by(generated, store):
            generated = None  # someone else's Secret: never the password (plan says NameInUse)
        password = self._password(key, store, generated)
        new_password = None
        if wants_redis:
            if password is None:
                # Drawn here, the only place that may be random; the plan creates the Secret.
                new_password = generate_password()
            elif password.fingerprint is None and generated is not None:
                new_password = _only_value(generated)
        return Observed(
            manifest,
            namespace,
            name,
            now,
            parsed,
            managed=managed,
            password=password,
            new_password=new_password,
            redis_ready_replicas=int((statefulset.get("status") or {}).get("readyReplicas") or 0),
            deployments=deployments,
            other_stores=other_stores,
        )

    def execute(self, observed: Observed, plan: Plan) -> None:
        """Make the plan's writes, in its order (an old finalizer is released last)."""
        kube = self._kube
        key = (observed.namespace, observed.name)
        record = self.seen.record
        uid = (observed.manifest or {}).get("metadata", {}).get("uid", "")
        ref = store_ref(observed.namespace, observed.name, uid)
        managed = self.managed
        for manifest in plan.create:
            self._write("create", ref_of(manifest))
            # A 409 (created meanwhile) fails the reconcile: the rest of the plan assumed
            # the value this manifest holds. The retry reads the Secret that exists.
            created = kube.create(manifest)
            record(key, created)
            managed.put(created)
        for live, manifest in plan.restore:
            self._write("restore", live)
            kube.delete(live)  # by uid: only the Secret that was read
            record(key, kube.create(manifest))
        for manifest in plan.apply:
            self._write("managed", ref_of(manifest))
            applied = kube.apply(manifest, force=True)
            record(key, applied)
            managed.put(applied)
        # One Deployment's failure must not keep the others from converging: each is
        # tried, and the first failure is raised once all are (status reports it).
        failures: list[KubeError] = []
        for body in plan.apply_deployments:
            force = body["metadata"]["name"] in plan.force_deployments
            self._isolated(failures, self._apply_deployment, key, body, force)
        for body in plan.strip_deployments:
            self._isolated(failures, self._strip, key, body)
        for gone in plan.delete:
            self._write("delete", gone)
            kube.delete(gone)
            managed.drop(gone)
        if failures:
            raise failures[0]
        if plan.status is not None:
            self._write("status", ref)
            record(key, kube.apply_status(ref, plan.status))
        for event in plan.events:
            self._post_event(event)
        if plan.remove_finalizer:
            self._write("finalizer", ref)
            record(key, kube.set_finalizer(ref, FINALIZER, present=False))

    def _read_managed(self, ref: ObjectRef, *, whole: bool) -> dict[str, Any] | None:
        """A managed object: GET when ``whole`` is needed or it is a Secret, else the index."""
        if not whole and ref.kind in INDEXED_KINDS:
            return self.managed.get(ref)
        live = self._kube.get(ref.api_version, ref.kind, ref.namespace, ref.name)
        if ref.kind in INDEXED_KINDS:
            if live is None:
                self.managed.drop(ref)
            else:
                self.managed.put(live)
        return live

    def _deployments(
        self, namespace: str, name: str, strays: Collection[str]
    ) -> list[dict[str, Any]]:
        """The Deployments that opt in to the store, and those of ``strays`` that still exist."""
        kube = self._kube
        selector = opt_in_selector(name)
        found = kube.list("apps/v1", "Deployment", namespace, selector) if selector else []
        listed = {deployment["metadata"]["name"] for deployment in found}
        for stray in sorted(set(strays) - listed):
            deployment = kube.get("apps/v1", "Deployment", namespace, stray)
            if deployment is not None:
                found.append(deployment)
        return found

    def _other_stores(
        self, namespace: str, name: str, deployments: Collection[Mapping[str, Any]]
    ) -> frozenset[str]:
        """The other stores the Deployments' labels name that exist and are not going."""
        labels = {label_of(deployment) for deployment in deployments} - {name, None}
        found = set()
        for other in sorted(label for label in labels if label is not None):
            store = self._kube.get(API_VERSION, KIND, namespace, other)
            if store is not None and not store["metadata"].get("deletionTimestamp"):
                found.add(other)
        return frozenset(found)

    def _password(
        self, key: Key, store: TaskStore, generated: Mapping[str, Any] | None
    ) -> PasswordSecret | None:
        """The fingerprints of the passwords agents use; the values themselves go no further."""
        password = self._data_password(key, store, generated)
        sentinel_ref = sentinel_password_secret_ref(store)
        if sentinel_ref is None:
            return password
        secret = self._kube.get("v1", "Secret", store.metadata.namespace, sentinel_ref.name)
        if secret is not None:
            self.seen.record(key, secret)
        return replace(
            password or PasswordSecret(fingerprint=None),
            sentinel_fingerprint=sentinel_fingerprint(store, secret) if secret else None,
        )

    def _data_password(
        self, key: Key, store: TaskStore, generated: Mapping[str, Any] | None
    ) -> PasswordSecret | None:
        secret_ref = password_secret_ref(store)
        if secret_ref is None:
            return None
        secret = generated
        if store.external_redis is not None:
            secret = self._kube.get("v1", "Secret", store.metadata.namespace, secret_ref.name)
        if secret is None:
            return None
        self.seen.record(key, secret)
        return password_fingerprint(store, secret)

    @staticmethod
    def _isolated(failures: list[KubeError], write: Callable[..., None], *args: Any) -> None:
        """Make one Deployment write; a failure is logged and kept, not raised."""
        try:
            write(*args)
        except KubeError as error:
            log.warning("%s", error)
            failures.append(error)

    def _apply_deployment(self, key: Key, body: Mapping[str, Any], force: bool) -> None:
        self._write("deployment", ref_of(body))
        self.seen.record(key, self._kube.apply(body, force=force))

    def _strip(self, key: Key, body: Mapping[str, Any]) -> None:
        ref = ref_of(body)
        self._write("deployment", ref)
        try:
            self.seen.record(key, self._kube.apply(body, force=False))
        except KubeError as error:
            # A removal body applied to a Deployment that is gone is refused as invalid.
            gone = self._kube.get(ref.api_version, ref.kind, ref.namespace, ref.name) is None
            if error.status not in (404, 422) or not gone:
                raise

    def _post_event(self, event: Event) -> None:
        """Events are best effort: a failure is logged, never a reason to retry the reconcile."""
        if event.reason in ONCE_PER_PROCESS_REASONS:
            once = (event.regarding.uid or event.regarding.name, event.reason)
            if once in self._warned:
                return
            self._warned.add(once)
        self._write("event", event.regarding)
        try:
            self._kube.post_event(event)
        except KubeError as error:
            log.warning("could not record Event %s: %s", event.reason, error)

    def _report_error(self, observed: Observed, error: KubeError) -> None:
        """Put a failed write on status (Ready=False, ReconcileError), if the store is there."""
        manifest = observed.manifest
        if manifest is None or manifest["metadata"].get("deletionTimestamp"):
            return
        status = plan_error_status(manifest, str(error), datetime.now(UTC))
        if status is None:
            return
        ref = store_ref(observed.namespace, observed.name)
        try:
            self._write("status", ref)
            written = self._kube.apply_status(ref, status)
        except KubeError as status_error:
            log.warning("could not report the error on status: %s", status_error)
        else:
            self.seen.record((observed.namespace, observed.name), written)

    def _record_agents(self, observed: Observed, plan: Plan) -> None:
        gauge = INJECTED_AGENTS
        manifest = observed.manifest
        if manifest is None or manifest["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(KeyError):  # never set in this process
                gauge.remove(observed.namespace, observed.name)
            return
        status = plan.status if plan.status is not None else manifest.get("status") or {}
        injected = (status.get("agents") or {}).get("injected") or 0
        gauge.labels(observed.namespace, observed.name).set(injected)

    @staticmethod
    def _write(what: str, ref: ObjectRef) -> None:
        WRITES.labels(what).inc()
        log.info("write %s: %s %s/%s", what, ref.kind, ref.namespace, ref.name)


def _only_value(secret: Mapping[str, Any]) -> SecretStr | None:
    """The password of a generated Secret whose key was renamed: its only value, if any."""
    values = list((secret.get("data") or {}).values())
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    try:
        return SecretStr(base64.b64decode(values[0], validate=True).decode())
    except (binascii.Error, UnicodeDecodeError):
        return None
