"""Passwords: an external store whose Secret is missing recovers once it exists, a new
password rolls the agents though Secrets are read by name (never listed or watched), and
no Secret value ever reaches the operator's log (this module's operator handled them)."""

import base64
import json

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import MANAGED, external_with_password, password_secret
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.controlplane import requests_between
from taskstore_dev.envtest.operator_process import OperatorProcess
from taskstore_dev.envtest.pytest_plugin import wait_until

pytestmark = pytest.mark.e2e


def test_a_missing_external_secret_recovers_by_itself(k8s: Kube, namespace: str) -> None:
    spec = external_with_password("auth", host="redis.example")
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", spec)
    wait_until(
        "Ready=False SecretNotFound",
        lambda: k8s.ready(namespace, "tasks", "False", "SecretNotFound"),
        timeout=TIMEOUT,
    )
    assert k8s.env(namespace, "planner") == {}

    secret = {
        "metadata": {"name": "auth"},
        "data": {"password": base64.b64encode(b"s3cret-external").decode()},
    }
    k8s.create(f"/api/v1/namespaces/{namespace}/secrets", secret)

    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("env", lambda: "TA_REDIS_PWD" in k8s.env(namespace, "planner"))


def test_no_secret_value_in_the_operator_log(
    k8s: Kube, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create_store(namespace, "tasks", MANAGED)
    wait_until(
        "the password Secret",
        lambda: k8s.exists(k8s.core.read_namespaced_secret, "tasks-redis-auth", namespace),
        timeout=TIMEOUT,
    )
    secret = k8s.plain(k8s.core.read_namespaced_secret("tasks-redis-auth", namespace))
    encoded = secret["data"]["password"]
    log = operator.log()
    assert encoded not in log
    assert base64.b64decode(encoded).decode() not in log
    assert "s3cret-external" not in log
    assert json.dumps(secret["data"]) not in log


def test_secrets_are_read_by_name_never_listed_and_a_rotation_still_rolls_the_agents(
    k8s: Kube, control_plane: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    k8s.create(f"/api/v1/namespaces/{namespace}/secrets", password_secret("auth", "first"))
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", external_with_password("auth", host="redis.example"))
    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    wait_until("the operator idle", operator.idle, timeout=TIMEOUT)

    operator.stop()
    before = control_plane.request_totals()
    operator.start()
    wait_until(
        "every TaskStore reconciled",
        lambda: (
            operator.metrics().get("taskstore_operator_reconciles_total", 0)
            >= len(k8s.all_stores())
            and operator.idle()
        ),
        timeout=TIMEOUT,
    )
    served = requests_between(before, control_plane.request_totals())
    assert not [kind for kind in served if kind.resource == "secrets" and kind.verb == "LIST"]

    # Not watched, still noticed: a new password rolls the agents.
    config_hash = k8s.config_hash(namespace, "planner")
    control_plane.request_json(
        "PUT", f"/api/v1/namespaces/{namespace}/secrets/auth", password_secret("auth", "second")
    )
    wait_until(
        "a new config hash",
        lambda: k8s.config_hash(namespace, "planner") != config_hash,
        timeout=TIMEOUT,
    )
