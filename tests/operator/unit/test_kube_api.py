"""The API adapter (kube/api.py) against a recording fake of the client."""

import json
from typing import Any

import pytest

from taskstore_operator.api.contract import FINALIZER
from taskstore_operator.kube import Kube, KubeError
from taskstore_operator.kube.api import resource_path
from taskstore_operator.plan.observed import ObjectRef

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
    items = Kube(client).list("v1", "ConfigMap", "ns", "a=b")  # type: ignore[arg-type]
    assert items == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]
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
    kube.delete(ObjectRef("v1", "ConfigMap", "n", "c"))
