"""A hand edit of a managed object is told from managedFields: another manager owns a
field the operator renders (status writes and fields it does not render do not count)."""

from typing import Any

from taskstore_operator.plan.ownership import changed_by_others

DESIRED: dict[str, Any] = {
    "spec": {
        "selector": {"app": "redis"},
        "ports": [{"port": 6379, "name": "redis"}],
        "template": {"spec": {"containers": [{"name": "redis", "image": "redis:7.2"}]}},
    }
}


def _live(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"managedFields": list(entries)}, **DESIRED}


def _entry(fields: dict[str, Any], manager: str = "kubectl-edit", **extra: Any) -> dict[str, Any]:
    return {"manager": manager, "operation": "Update", "fieldsV1": fields, **extra}


def test_a_rendered_value_set_by_another_manager_is_a_hand_edit() -> None:
    image: dict[str, Any] = {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        'k:{"name":"redis"}': {"f:image": {}}
    }}}}}  # fmt: skip
    assert changed_by_others(_live(_entry(image)), DESIRED)
    assert changed_by_others(_live(_entry({"f:spec": {"f:selector": {"f:app": {}}}})), DESIRED)
    # A list item keyed by a field the body leaves to its default still matches.
    port: dict[str, Any] = {
        "f:spec": {"f:ports": {'k:{"port":6379,"protocol":"TCP"}': {"f:name": {}}}}
    }
    assert changed_by_others(_live(_entry(port)), DESIRED)


def test_the_operator_status_writes_and_unrendered_fields_are_not() -> None:
    image: dict[str, Any] = {"f:spec": {"f:selector": {"f:app": {}}}}
    assert not changed_by_others(_live(_entry(image, manager="taskstore-operator")), DESIRED)
    assert not changed_by_others(_live(_entry(image, subresource="status")), DESIRED)
    extra: dict[str, Any] = {"f:spec": {"f:selector": {".": {}, "f:extra": {}}, "f:type": {}}}
    assert not changed_by_others(_live(_entry(extra)), DESIRED)
    other: dict[str, Any] = {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        'k:{"name":"sidecar"}': {"f:image": {}}
    }}}}}  # fmt: skip
    assert not changed_by_others(_live(_entry(other)), DESIRED)
