"""The API layer (against a recording fake of the client) and the reconciler's write order."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from taskstore_operator.handlers.reconciler import Reconciler
from taskstore_operator.kube import Kube, KubeError
from taskstore_operator.kube.api import resource_path
from taskstore_operator.reconcile import (
    FINALIZER,
    Event,
    EventType,
    ObjectRef,
    Observed,
    Plan,
)

Manifest = dict[str, Any]


class Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self._data = json.dumps(body).encode() if body is not None else b""

    def read(self) -> bytes:
        return self._data


class FakeClient:
    """Records each request; answers from a queue of (status, body)."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def param_serialize(self, **request: Any) -> tuple[Any, ...]:
        self.requests.append(request)
        return (request["method"], request["resource_path"], {}, request["body"], None)

    def call_api(self, *_: Any, **__: Any) -> Response:
        status, body = self.answers.pop(0) if self.answers else (200, {})
        return Response(status, body)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("v1", "Secret", "ns", "a"), "/api/v1/namespaces/ns/secrets/a"),
        (("apps/v1", "Deployment", "ns", None), "/apis/apps/v1/namespaces/ns/deployments"),
        (
            ("tealagents.io/v1alpha1", "TaskStore", "ns", "t", "status"),
            "/apis/tealagents.io/v1alpha1/namespaces/ns/taskstores/t/status",
        ),
    ],
)
def test_resource_path(args: tuple[Any, ...], path: str) -> None:
    assert resource_path(*args) == path


def test_get_answers_none_for_a_missing_object() -> None:
    kube = Kube(FakeClient((404, {"kind": "Status", "reason": "NotFound"})))  # type: ignore[arg-type]
    assert kube.get("v1", "Secret", "ns", "a") is None


def test_list_adds_api_version_and_kind_and_sends_the_selector() -> None:
    client = FakeClient((200, {"items": [{"metadata": {"name": "a"}}]}))
    items = Kube(client).list("v1", "PersistentVolumeClaim", "ns", "a=b")  # type: ignore[arg-type]
    assert items == [
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "a"}}
    ]
    assert client.requests[0]["query_params"] == [("labelSelector", "a=b")]


@pytest.mark.parametrize("force", [True, False])
def test_apply_is_a_server_side_apply_under_the_field_manager(force: bool) -> None:
    client = FakeClient()
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
    }

    Kube(client).apply(body, force=force)  # type: ignore[arg-type]

    [request] = client.requests
    assert request["method"] == "PATCH"
    assert request["header_params"]["Content-Type"] == "application/apply-patch+yaml"
    assert ("fieldManager", "taskstore-operator") in request["query_params"]
    assert (("force", "true") in request["query_params"]) == force


def test_finalizer_is_applied_as_a_set_item_and_removed_by_leaving_it_out() -> None:
    client = FakeClient()
    kube = Kube(client)  # type: ignore[arg-type]
    ref = ObjectRef("tealagents.io/v1alpha1", "TaskStore", "n", "t")

    kube.set_finalizer(ref, FINALIZER, present=True)
    kube.set_finalizer(ref, FINALIZER, present=False)

    added, removed = (request["body"]["metadata"] for request in client.requests)
    assert added == {"name": "t", "namespace": "n", "finalizers": [FINALIZER]}
    assert removed == {"name": "t", "namespace": "n"}


def test_errors_carry_the_reason_and_fields_never_the_body() -> None:
    status = {
        "kind": "Status",
        "reason": "Invalid",
        "message": "env[0].value: Invalid value: 'hunter2'",
        "details": {"causes": [{"field": "spec.template", "message": "hunter2"}]},
    }
    kube = Kube(FakeClient((422, status)))  # type: ignore[arg-type]

    with pytest.raises(KubeError) as raised:
        kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": "n"}})

    assert raised.value.status == 422
    assert str(raised.value) == "POST /api/v1/namespaces/n/secrets: 422 Invalid (spec.template)"
    assert "hunter2" not in str(raised.value)


def test_delete_of_a_missing_object_is_fine() -> None:
    kube = Kube(FakeClient((404, {"reason": "NotFound"})))  # type: ignore[arg-type]
    kube.delete(ObjectRef("v1", "PersistentVolumeClaim", "n", "c"))


# -- the reconciler's writes -------------------------------------------------------------------


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

    def _write(self, what: str, name: str) -> Manifest:
        self.writes.append(what)
        if what in self.fail:
            raise KubeError("PATCH", what, 422, "Invalid")
        return {"metadata": {"uid": name, "resourceVersion": str(len(self.writes))}}

    def set_finalizer(self, ref: ObjectRef, finalizer: str, *, present: bool) -> Manifest:
        return self._write(f"finalizer {present}", ref.name)

    def apply(self, manifest: Mapping[str, Any], *, force: bool) -> Manifest:
        name = manifest["metadata"]["name"]
        return self._write(f"apply {manifest['kind']} {name} {force}", name)

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
        return {"metadata": {"name": name}} if name in self.existing else None

    def list(
        self, api_version: str, kind: str, namespace: str, selector: str = ""
    ) -> list[Manifest]:
        self.reads.append(f"list {kind} {selector}")
        return list(self.deployments) if kind == "Deployment" else []


def body(kind: str, name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "n"}}


STORE: Manifest = {
    "apiVersion": "tealagents.io/v1alpha1",
    "kind": "TaskStore",
    "metadata": {"name": "t", "namespace": "n", "uid": "u", "generation": 1},
    "spec": {},
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_writes_follow_the_plan_order_and_the_finalizer_goes_last() -> None:
    kube = RecordingKube()
    plan = Plan(
        add_finalizer=True,
        apply=[body("ConfigMap", "c")],
        apply_deployments=[body("Deployment", "a")],
        strip_deployments=[body("Deployment", "b")],
        delete=[ObjectRef("v1", "PersistentVolumeClaim", "n", "c")],
        status={"conditions": [{"reason": "Reconciled"}]},
        events=[Event(ObjectRef("v1", "TaskStore", "n", "t"), EventType.NORMAL, "Reconciled", "")],
        remove_finalizer=True,
    )

    Reconciler(kube).execute(Observed(STORE, "n", "t", NOW), plan)  # type: ignore[arg-type]

    assert kube.writes == [
        "finalizer True",
        "apply ConfigMap c True",
        "apply Deployment a False",
        "apply Deployment b False",
        "delete PersistentVolumeClaim",
        "status Reconciled",
        "event Reconciled",
        "finalizer False",
    ]


def test_stripping_a_deployment_that_is_gone_is_fine_but_a_refusal_otherwise_is_not() -> None:
    kube = RecordingKube(fail={"apply Deployment b False"})
    reconciler = Reconciler(kube)  # type: ignore[arg-type]
    plan = Plan(strip_deployments=[body("Deployment", "b")])

    reconciler.execute(Observed(STORE, "n", "t", NOW), plan)

    kube.existing.add("b")
    with pytest.raises(KubeError):
        reconciler.execute(Observed(STORE, "n", "t", NOW), plan)


def test_deployment_warnings_are_sent_once_per_process() -> None:
    kube = RecordingKube()
    reconciler = Reconciler(kube)  # type: ignore[arg-type]
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
    kube = RecordingKube(fail={"finalizer True"})

    with pytest.raises(KubeError):
        Reconciler(kube).reconcile("n", "t")  # type: ignore[arg-type]

    assert kube.writes == ["finalizer True", "status ReconcileError"]


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

    observed = Reconciler(kube).observe("n", "t", strays={"a", "stray", "deleted"})  # type: ignore[arg-type]

    assert [d["metadata"]["name"] for d in observed.deployments] == ["a", "stray"]
    assert "list Deployment tealagents.io/taskstore=t" in kube.reads
    assert {"get Deployment stray", "get Deployment deleted"} <= set(kube.reads)
    assert "get Deployment a" not in kube.reads


def test_a_name_no_label_can_hold_lists_no_deployment() -> None:
    kube = RecordingKube()
    Reconciler(kube).observe("n", "x" * 64)  # type: ignore[arg-type]
    assert not [read for read in kube.reads if read.startswith("list Deployment")]


def test_the_versions_a_reconcile_reads_and_writes_are_seen_by_its_store() -> None:
    kube = RecordingKube()
    kube.store = {**STORE, "metadata": {**STORE["metadata"], "resourceVersion": "7"}}
    reconciler = Reconciler(kube)  # type: ignore[arg-type]
    plan = Plan(add_finalizer=True, apply_deployments=[body("Deployment", "a")])

    reconciler.execute(reconciler.observe("n", "t"), plan)

    # RecordingKube answers each write with the object's name as uid and a new version.
    assert reconciler.seen.seen(("n", "t"), "u", "7")
    assert reconciler.seen.seen(("n", "t"), "t", "1")
    assert reconciler.seen.seen(("n", "t"), "a", "2")
    assert not reconciler.seen.seen(("n", "other"), "a", "2")
