"""The generated CRD on a real API server: `kubectl explain` teaches the API from it."""

import subprocess

import pytest
import yaml
from pydantic import BaseModel

from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.pytest_plugin import wait_until
from taskstore_dev.paths import DEPLOY_CRD_PATH
from taskstore_operator.api.models import ExternalRedis, RedisSpec, TaskStoreSpec

pytestmark = pytest.mark.e2e


def explain(control_plane: ControlPlane, field: str) -> "subprocess.CompletedProcess[str]":
    return control_plane.kubectl("explain", field, "--api-version=tealagents.io/v1alpha1")


def description(model: type[BaseModel], field: str) -> str:
    """The field's description as the models declare it, first words only (kubectl wraps)."""
    return " ".join((model.model_fields[field].description or "").split()[:4])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("taskstore.spec", description(TaskStoreSpec, "backend")),
        ("taskstore.spec.redis", description(TaskStoreSpec, "redis")),
        ("taskstore.spec.redis.external", description(ExternalRedis, "host")),
        ("taskstore.spec.redis.external.mode", description(ExternalRedis, "mode")),
        ("taskstore.spec.redis.external.sentinels", description(ExternalRedis, "sentinels")),
        (
            "taskstore.spec.redis.external.sentinelPasswordSecretRef",
            description(ExternalRedis, "sentinel_password_secret_ref"),
        ),
        ("taskstore.spec.redis.keyPrefix", description(RedisSpec, "key_prefix")),
    ],
)
def test_kubectl_explain_shows_the_descriptions_of_the_models(
    control_plane: ControlPlane, path: str, expected: str
) -> None:
    control_plane.install_crd(yaml.safe_load(DEPLOY_CRD_PATH.read_text()))
    # The server publishes a new CRD's OpenAPI a moment after it is Established.
    wait_until(f"kubectl explain {path}", lambda: explain(control_plane, path).returncode == 0)
    shown = " ".join(explain(control_plane, path).stdout.split())
    assert expected in shown, shown
