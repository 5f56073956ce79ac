"""kopf wiring: settings, and watch events that enqueue reconciles. Nothing here writes.

Only event handlers are registered, never kopf's create/update/resume/delete
handlers: those store progress and a last-handled configuration on the objects they
watch, which would be drift on users' Deployments and writes on every TaskStore. The
reconcile queue does the work (see :mod:`taskstore_operator.runtime.queue`).

An event does not enqueue a store whose reconciles have already read or written the
version of the object it carries (see :mod:`taskstore_operator.runtime.seen`): the echoes
of the operator's own writes, and, at start, the listed objects that a reconcile has read
already. The Deployment handler also keeps track of stray Deployments (see
:mod:`taskstore_operator.runtime.strays`) before it enqueues, so the reconcile it starts
reads the Deployment of that event. The handlers are coroutines: kopf runs them in its
event loop, where the queue lives (a plain function would run in kopf's thread pool,
and asyncio's queue is not thread-safe), and without a thread hop per event. Secrets are
not watched: the password Secrets the stores name are read now and then (see
:mod:`taskstore_operator.runtime.password_secrets`).
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Final, TypedDict

import kopf

from taskstore_operator.api.contract import GROUP, KIND, MANAGED_BY_LABELS
from taskstore_operator.api.kinds import (
    DEPLOYMENT,
    SECRET,
    TASKSTORE,
    WATCHED_MANAGED_KINDS,
    Kind,
)
from taskstore_operator.kube import connect
from taskstore_operator.plan.agents import stores_named_by, stray_injection
from taskstore_operator.plan.observed import ref_of
from taskstore_operator.runtime.managed_index import ManagedObjects
from taskstore_operator.runtime.password_secrets import PasswordSecrets, Read, secret_names
from taskstore_operator.runtime.queue import Key, ReconcileQueue
from taskstore_operator.runtime.reconciler import Reconciler
from taskstore_operator.runtime.seen import SeenVersions
from taskstore_operator.runtime.strays import StrayDeployments

log = logging.getLogger(__name__)

# kopf's own finalizer, for handlers that would need one (none do). It must differ from
# the operator's finalizer: kopf removes its finalizer from any object that no handler needs
# it for, so sharing the name would release TaskStores before their agents are cleaned.
KOPF_FINALIZER: Final = f"{GROUP}/kopf-finalizer"
# Reconciles at once, each in its own thread: a reconcile mostly waits on the API server,
# so more of them than cores keep it busy (the client's connection pool holds 10).
WORKERS: Final = 8
# Objects per page of a watch's first listing: the listing of every Deployment of a large
# cluster is held one page at a time, not all at once.
LIST_PAGE_SIZE: Final = 500
# How long kopf keeps an object's idle event worker, which holds the object's last body:
# not its 5 s, in which a burst of events (deleting many stores) would hold thousands.
WORKER_IDLE_SECONDS: Final = 0.5


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: only event handlers are registered, and they need none.

    kopf would otherwise deep-copy every object of every watch event to compare it
    with the last handled state, for handlers that do not exist.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        """An empty essence: nothing to compare."""
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """No last handled state, ever."""
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Keep nothing (and write nothing on the object)."""


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings: it writes nothing on the objects it watches, and lists in pages."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.finalizer = KOPF_FINALIZER
    # The operator records its own Events, on transitions only.
    settings.posting.enabled = False
    settings.watching.chunk_size = LIST_PAGE_SIZE
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    # The API server sends only the managed objects (by their label), not every
    # ConfigMap, Service, NetworkPolicy and StatefulSet of the cluster.
    selector = ",".join(f"{key}={value}" for key, value in MANAGED_BY_LABELS.items())
    for kind in WATCHED_MANAGED_KINDS:
        settings.watching.label_selectors[kind.group, kind.version, kind.plural] = selector


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    """Configure kopf and start the reconcile queue."""
    configure(settings)
    kube = connect()
    memo.managed = ManagedObjects()
    reconciler = Reconciler(kube, memo.settings, memo.managed)
    strays = StrayDeployments()

    # Its own threads: the loop's default executor has fewer than WORKERS on small machines.
    memo.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="reconcile")
    loop = asyncio.get_running_loop()

    async def reconcile(key: Key) -> None:
        # Read in the event loop, which is where the Deployment handler updates them.
        stray_names = strays.of(key)
        await loop.run_in_executor(memo.executor, reconciler.reconcile, *key, stray_names)

    memo.seen = reconciler.seen
    # The TaskStores the watch has shown and not seen deleted.
    memo.stores = set()
    memo.strays = strays
    memo.queue = ReconcileQueue(reconcile, workers=WORKERS)
    memo.queue_task = asyncio.create_task(memo.queue.run())
    memo.password_secrets = PasswordSecrets()

    def read_secret(namespace: str, name: str) -> Mapping[str, Any] | None:
        return kube.get(SECRET.api_version, SECRET.kind, namespace, name)

    memo.secrets_task = asyncio.create_task(
        check_password_secrets(memo.password_secrets, read_secret, memo, memo.secret_check_seconds)
    )


@kopf.on.cleanup()
async def stop(memo: Any, **_: Any) -> None:
    """Stop the reconcile queue and the Secret checks."""
    memo.queue_task.cancel()
    memo.secrets_task.cancel()
    memo.executor.shutdown(wait=False, cancel_futures=True)


class _Coordinates(TypedDict):
    group: str
    version: str
    plural: str


def _of(kind: Kind) -> _Coordinates:
    """kopf's coordinates of a kind, from the table of kinds."""
    return {"group": kind.group, "version": kind.version, "plural": kind.plural}


@kopf.on.event(**_of(TASKSTORE))
async def taskstore_event(
    body: kopf.Body, event: kopf.RawEvent, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """Any change of a TaskStore, including its first listing at start."""
    if namespace:
        key, stores = (namespace, name), memo.stores
        passwords: PasswordSecrets = memo.password_secrets
        gone = event.get("type") == "DELETED"
        passwords.update(key, () if gone else secret_names(body))
        if gone:
            stores.discard(key)
        else:
            stores.add(key)
    _enqueue(memo, namespace, {name}, KIND, body, event)


@kopf.on.event(**_of(DEPLOYMENT))
async def deployment_event(
    body: kopf.Body, event: kopf.RawEvent, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """A Deployment that names a store, or carries one's environment."""
    if namespace:
        strays: StrayDeployments = memo.strays
        gone = event.get("type") == "DELETED"
        strays.update(namespace, name, None if gone else stray_injection(body))
    _enqueue(memo, namespace, stores_named_by(body), "Deployment", body, event)


async def managed_object_event(
    body: kopf.Body, event: kopf.RawEvent, namespace: str | None, memo: Any, **_: Any
) -> None:
    """A managed Redis object changed (its StatefulSet became ready) or went.

    Only stores that exist are enqueued: the objects of a deleted store go with it (the
    garbage collector deletes them), and each deletion would otherwise reconcile the
    store again to find it gone. A store listed after its objects is enqueued by its own
    event, and its reconcile reads them.
    """
    managed: ManagedObjects = memo.managed
    if event.get("type") == "DELETED":
        managed.drop(ref_of(body))
    else:
        managed.put(body)
    kind = str(body.get("kind") or "managed")
    existing = {store for store in stores_named_by(body) if (namespace, store) in memo.stores}
    _enqueue(memo, namespace, existing, kind, body, event)


for _managed in WATCHED_MANAGED_KINDS:
    kopf.on.event(**_of(_managed), labels=MANAGED_BY_LABELS)(managed_object_event)


async def check_password_secrets(
    passwords: PasswordSecrets, read: Read, memo: Any, period: float
) -> None:
    """Every ``period`` seconds, enqueue the stores whose password Secret changed."""
    queue: ReconcileQueue = memo.queue
    seen: SeenVersions = memo.seen
    while True:
        await asyncio.sleep(period)
        try:
            changes = await asyncio.to_thread(passwords.changes, read)
        except asyncio.CancelledError:
            raise
        # The checks must outlive any one failure: the next period tries again, and each
        # reconcile reads its store's Secret meanwhile anyway.
        except Exception as error:
            log.warning(
                "could not check the password Secrets (%s: %s)", type(error).__name__, error
            )
            continue
        for key, version in changes:
            # A version a reconcile of the store has read already tells it nothing new.
            unless = partial(seen.seen, key, *version) if version is not None else None
            queue.enqueue(key, "Secret", unless)


def _enqueue(
    memo: Any,
    namespace: str | None,
    stores: set[str],
    kind: str,
    body: kopf.Body,
    event: kopf.RawEvent,
) -> None:
    """Enqueue the stores an event concerns, unless their reconciles saw this version already."""
    queue: ReconcileQueue = memo.queue
    seen: SeenVersions = memo.seen
    metadata = body.get("metadata") or {}
    uid, version = str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or "")
    if event.get("type") == "DELETED":
        seen.forget(uid)
    for store in stores:
        # Every watched kind is namespaced; the type allows None.
        if namespace:
            key = (namespace, store)
            queue.enqueue(key, kind, partial(seen.seen, key, uid, version))
