"""The reconciler (runtime/reconciler.py): what it reads, and its writes in the plan's order."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from taskstore_operator.api.contract import FINALIZER
from taskstore_operator.kube import KubeError
from taskstore_operator.plan.observed import (
    Event,
    EventType,
    ObjectRef,
    Observed,
    Plan,
    Settings,
    ref_of,
)
from taskstore_operator.runtime.managed_index import INDEXED_KINDS
from taskstore_operator.runtime.reconciler import Reconciler

Manifest = dict[str, Any]


class RecordingKube:
    """A Kube that records writes and refuses the ones it is told to (422, as for a gone object).

    Each write answers the object with a uid (its name) and a new resourceVersion.
    """

    def __init__(self, fail: set[str] | None = None) -> None:
        self.writes: list[str] = []
        self.reads: list[str] = []
        self.fail = fail or set()
        self.existing: set[str] = set()
        self.deployments: list[Manifest] = []
        self.store: Manifest = STORE

    def _write(self, what: str, name: str, kind: str = "TaskStore") -> Manifest:
        self.writes.append(what)
        if what in self.fail:
            raise KubeError("PATCH", what, 422, "Invalid")
        version = str(len(self.writes))
        return {"apiVersion": "v1", "kind": kind, "metadata": identity(name, version)}

    def set_finalizer(self, ref: ObjectRef, finalizer: str, *, present: bool) -> Manifest:
        return self._write(f"finalizer {present}", ref.name)

    def apply(self, manifest: Mapping[str, Any], *, force: bool) -> Manifest:
        name, kind = manifest["metadata"]["name"], manifest["kind"]
        return self._write(f"apply {kind} {name} {force}", name, kind)

    def create(self, manifest: Mapping[str, Any]) -> Manifest:
        name, kind = manifest["metadata"]["name"], manifest["kind"]
        return self._write(f"create {kind} {name}", name, kind)

    def apply_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> Manifest:
        return self._write(f"status {status['conditions'][-1]['reason']}", ref.name)

    def delete(self, ref: ObjectRef) -> None:
        self._write(f"delete {ref.kind}", ref.name)

    def post_event(self, event: Event) -> None:
        self._write(f"event {event.reason}", event.regarding.name)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Manifest | None:
        self.reads.append(f"get {kind} {name}")
        if kind == "TaskStore":
            return self.store
        if name not in self.existing:
            return None
        return {"apiVersion": api_version, "kind": kind, "metadata": identity(name, "1")}

    def list(
        self, api_version: str, kind: str, namespace: str, selector: str = ""
    ) -> list[Manifest]:
        self.reads.append(f"list {kind} {selector}")
        return list(self.deployments) if kind == "Deployment" else []


def identity(name: str, version: str) -> Manifest:
    """An object's metadata as the API answers it: its uid is its name here."""
    return {"name": name, "namespace": "n", "uid": name, "resourceVersion": version}


def body(kind: str, name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "n"}}


STORE: Manifest = {
    "apiVersion": "tealagents.io/v1alpha1",
    "kind": "TaskStore",
    "metadata": {"name": "t", "namespace": "n", "uid": "u", "generation": 1},
    "spec": {},
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = Settings(library_image="registry.example/teal-taskstore:1")


def test_writes_follow_the_plan_order_and_an_old_finalizer_goes_last() -> None:
    kube = RecordingKube()
    plan = Plan(
        apply=[body("ConfigMap", "c")],
        apply_deployments=[body("Deployment", "a")],
        strip_deployments=[body("Deployment", "b")],
        delete=[ObjectRef("v1", "ConfigMap", "n", "c")],
        status={"conditions": [{"reason": "Reconciled"}]},
        events=[Event(ObjectRef("v1", "TaskStore", "n", "t"), EventType.NORMAL, "Reconciled", "")],
        remove_finalizer=True,
    )

    Reconciler(kube, SETTINGS).execute(Observed(STORE, "n", "t", NOW), plan)  # type: ignore[arg-type]

    assert kube.writes == [
        "apply ConfigMap c True",
        "apply Deployment a False",
        "apply Deployment b False",
        "delete ConfigMap",
        "status Reconciled",
        "event Reconciled",
        "finalizer False",
    ]


def test_stripping_a_deployment_that_is_gone_is_fine_but_a_refusal_otherwise_is_not() -> None:
    kube = RecordingKube(fail={"apply Deployment b False"})
    reconciler = Reconciler(kube, SETTINGS)  # type: ignore[arg-type]
    plan = Plan(strip_deployments=[body("Deployment", "b")])

    reconciler.execute(Observed(STORE, "n", "t", NOW), plan)

    kube.existing.add("b")
    with pytest.raises(KubeError):
        reconciler.execute(Observed(STORE, "n", "t", NOW), plan)


def test_deployment_warnings_are_sent_once_per_process() -> None:
    kube = RecordingKube()
    reconciler = Reconciler(kube, SETTINGS)  # type: ignore[arg-type]
    warning = Event(
        ObjectRef("apps/v1", "Deployment", "n", "d", "uid-d"),
        EventType.WARNING,
        "TaskStoreNotFound",
        "",
    )

    for _ in range(3):
        reconciler.execute(Observed(None, "n", "t", NOW), Plan(events=[warning]))

    assert kube.writes == ["event TaskStoreNotFound"]


def test_a_failed_write_is_reported_on_status_and_raised_for_a_retry() -> None:
    kube = RecordingKube(fail={"finalizer False"})
    kube.store = {**STORE, "metadata": {**STORE["metadata"], "finalizers": [FINALIZER]}}

    with pytest.raises(KubeError):
        Reconciler(kube, SETTINGS).reconcile("n", "t")  # type: ignore[arg-type]

    assert kube.writes[-2:] == ["finalizer False", "status ReconcileError"]


def agent(name: str, labels: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "n", "labels": dict(labels)},
    }


def test_deployments_are_listed_by_label_and_strays_read_one_by_one() -> None:
    kube = RecordingKube()
    kube.deployments = [agent("a", {"tealagents.io/taskstore": "t"})]
    kube.existing = {"stray"}

    observed = Reconciler(kube, SETTINGS).observe("n", "t", strays={"a", "stray", "deleted"})  # type: ignore[arg-type]

    assert [d["metadata"]["name"] for d in observed.deployments] == ["a", "stray"]
    assert "list Deployment tealagents.io/taskstore=t" in kube.reads
    assert {"get Deployment stray", "get Deployment deleted"} <= set(kube.reads)
    assert "get Deployment a" not in kube.reads


def test_a_name_no_label_can_hold_lists_no_deployment() -> None:
    kube = RecordingKube()
    Reconciler(kube, SETTINGS).observe("n", "x" * 64)  # type: ignore[arg-type]
    assert not [read for read in kube.reads if read.startswith("list Deployment")]


def test_the_versions_a_reconcile_reads_and_writes_are_seen_by_its_store() -> None:
    kube = RecordingKube()
    kube.store = {**STORE, "metadata": {**STORE["metadata"], "resourceVersion": "7"}}
    reconciler = Reconciler(kube, SETTINGS)  # type: ignore[arg-type]
    plan = Plan(remove_finalizer=True, apply_deployments=[body("Deployment", "a")])

    reconciler.execute(reconciler.observe("n", "t"), plan)

    # RecordingKube answers each write with the object's name as uid and a new version.
    assert reconciler.seen.seen(("n", "t"), "u", "7")
    assert reconciler.seen.seen(("n", "t"), "a", "1")
    assert reconciler.seen.seen(("n", "t"), "t", "2")
    assert not reconciler.seen.seen(("n", "other"), "a", "1")


def test_one_deployment_failing_does_not_keep_the_others_from_their_writes() -> None:
    kube = RecordingKube(fail={"apply Deployment a True"})
    plan = Plan(
        apply_deployments=[body("Deployment", "a"), body("Deployment", "b")],
        force_deployments={"a"},
        strip_deployments=[body("Deployment", "c")],
        status={"conditions": [{"reason": "Reconciled"}]},
    )

    with pytest.raises(KubeError):
        Reconciler(kube, SETTINGS).execute(Observed(STORE, "n", "t", NOW), plan)  # type: ignore[arg-type]

    # b and c are written; the status that assumed a was configured is not.
    assert kube.writes == [
        "apply Deployment a True",
        "apply Deployment b False",
        "apply Deployment c False",
    ]


def test_the_stores_a_relabelled_deployment_moves_to_are_read() -> None:
    kube = RecordingKube()
    kube.deployments = [agent("a", {"tealagents.io/taskstore": "t"})]
    kube.existing = {"moved"}
    moved = agent("moved", {"tealagents.io/taskstore": "b"})
    kube.get = lambda api_version, kind, namespace, name: (  # type: ignore[method-assign]
        moved if kind == "Deployment" else kube.store if name in ("t", "b") else None
    )

    observed = Reconciler(kube, SETTINGS).observe("n", "t", strays={"moved"})  # type: ignore[arg-type]

    assert observed.other_stores == {"b"}


def owned_by_store(kind: str, name: str) -> Manifest:
    """A managed object as the index keeps it, owned by STORE."""
    metadata = {**identity(name, "3"), "ownerReferences": [{"uid": "u"}]}
    return {"apiVersion": "v1", "kind": kind, "metadata": metadata}


def test_without_a_managed_redis_only_the_secret_is_read_and_the_index_says_what_to_delete() -> (
    None
):
    kube = RecordingKube()
    kube.store = {**STORE, "spec": {"backend": "memory"}}
    reconciler = Reconciler(kube, SETTINGS)  # type: ignore[arg-type]
    leftover = owned_by_store("ConfigMap", "t-redis-config")
    reconciler.managed.put(leftover)

    observed = reconciler.observe("n", "t")
    reconciler.reconcile("n", "t")

    managed_reads = [read for read in kube.reads if read.split()[1] in INDEXED_KINDS]
    assert managed_reads == []
    assert "get Secret t-redis-auth" in kube.reads
    assert observed.managed == {"ConfigMap": leftover}
    assert "delete ConfigMap" in kube.writes
    assert reconciler.managed.get(ref_of(leftover)) is None


def test_a_managed_redis_is_read_whole_and_what_is_read_or_written_goes_to_the_index() -> None:
    kube = RecordingKube()
    kube.store = {**STORE, "spec": {"backend": "redis", "redis": {"managed": {}}}}
    reconciler = Reconciler(kube, SETTINGS)  # type: ignore[arg-type]
    stale = ObjectRef("apps/v1", "StatefulSet", "n", "t-redis")
    reconciler.managed.put(owned_by_store("StatefulSet", "t-redis"))

    reconciler.reconcile("n", "t")

    read_kinds = {read.split()[1] for read in kube.reads if read.startswith("get ")}
    assert read_kinds >= INDEXED_KINDS
    assert "apply ConfigMap t-redis-config True" in kube.writes
    config = reconciler.managed.get(ObjectRef("v1", "ConfigMap", "n", "t-redis-config"))
    assert config is not None
    assert config["metadata"]["resourceVersion"] == str(
        kube.writes.index("apply ConfigMap t-redis-config True") + 1
    )
    # The GET found no StatefulSet before the apply: the index followed, then the apply.
    applied = reconciler.managed.get(stale)
    assert applied is not None and applied["metadata"]["resourceVersion"] != "3"
