"""Passwords: an external store whose Secret is missing recovers once it exists, and no
Secret value ever reaches the operator's log (this module's operator handled both)."""

import base64
import json

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import MANAGED, external_with_password
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
