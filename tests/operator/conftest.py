"""Fixtures for the operator's unit tests: TaskStore and Deployment manifests built from parts."""

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pytest

from taskstore_operator.api.models import TaskStore
from taskstore_operator.api.validation import parse_taskstore

Manifest = dict[str, Any]


class StoreFactory(Protocol):
    """Builds a validated TaskStore from a spec."""

    def __call__(
        self, spec: Mapping[str, Any] | None = None, *, name: str = "tasks"
    ) -> TaskStore: ...


def taskstore_manifest(spec: Mapping[str, Any] | None, name: str = "tasks") -> Manifest:
    """A TaskStore as the API server returns it, in namespace ``agents``."""
    manifest: Manifest = {
        "apiVersion": "tealagents.io/v1alpha1",
        "kind": "TaskStore",
        "metadata": {"name": name, "namespace": "agents", "uid": "uid-1234", "generation": 3},
    }
    if spec is not None:
        manifest["spec"] = dict(spec)
    return manifest


@pytest.fixture
def make_store() -> StoreFactory:
    """Build a TaskStore through the operator's own parser, so every test input is valid."""

    def build(spec: Mapping[str, Any] | None = None, *, name: str = "tasks") -> TaskStore:
        return parse_taskstore(taskstore_manifest(spec, name))

    return build


@pytest.fixture
def make_manifest() -> Callable[..., Manifest]:
    """Build a TaskStore manifest (for tests of parsing and refusal)."""
    return taskstore_manifest


MANAGED = {"backend": "redis", "redis": {"managed": {}}}
EXTERNAL = {
    "backend": "redis",
    "redis": {"external": {"host": "redis.example.internal"}},
}
CUSTOM = {"backend": "custom", "custom": {"module": "/app/my_store.py", "className": "MyStore"}}


@pytest.fixture(params=["memory", "managed", "external", "custom"])
def any_backend_spec(request: pytest.FixtureRequest) -> Manifest:
    """A minimal valid spec of each backend."""
    specs: dict[str, Manifest] = {
        "memory": {},
        "managed": MANAGED,
        "external": EXTERNAL,
        "custom": CUSTOM,
    }
    return specs[request.param]


def deployment(
    containers: list[Manifest] | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
    managed_fields: list[Manifest] | None = None,
    init_containers: list[Manifest] | None = None,
) -> Manifest:
    """An opted-in Deployment ``planner`` in namespace ``agents``."""
    metadata: Manifest = {
        "name": "planner",
        "namespace": "agents",
        "labels": {"tealagents.io/taskstore": "tasks"},
        "annotations": dict(annotations or {}),
    }
    if managed_fields is not None:
        metadata["managedFields"] = managed_fields
    pod_spec: Manifest = {
        "containers": containers
        if containers is not None
        else [{"name": "agent", "image": "agent:1"}, {"name": "sidecar", "image": "proxy:1"}]
    }
    if init_containers is not None:
        pod_spec["initContainers"] = init_containers
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": {"app": "planner"}},
            "template": {"metadata": {"labels": {"app": "planner"}}, "spec": pod_spec},
        },
    }


@pytest.fixture
def make_deployment() -> Callable[..., Manifest]:
    """Build an opted-in Deployment manifest."""
    return deployment
