"""The external Redis forms on the control plane: Sentinel and Cluster.

The environment each form injects, the sentinels' password (a missing Secret blocks the
agents, its arrival and rotation roll them), and the schema refusing forms that could
never work (a sentinel store without sentinels, a cluster store with a database other
than 0).
"""

import base64
import json
from typing import Final

import pytest

from support.cluster import TIMEOUT, Kube
from support.samples import Manifest, taskstore
from taskstore_dev.envtest import ControlPlane
from taskstore_dev.envtest.pytest_plugin import wait_until
from teal_taskstore.framework import ENTRY_FILE_PATH

pytestmark = pytest.mark.e2e

STORES: Final = "/apis/tealagents.io/v1alpha1/namespaces/{namespace}/taskstores"
SENTINEL: Final[Manifest] = {
    "backend": "redis",
    "redis": {
        "external": {
            "mode": "sentinel",
            "sentinels": ["s0.data.svc:26379", "s1.data.svc:26379"],
            "masterName": "orders",
            "sentinelUsername": "watcher",
            "passwordSecretRef": {"name": "data-auth"},
            "sentinelPasswordSecretRef": {"name": "sentinel-auth", "key": "sentinel"},
        }
    },
}
CLUSTER: Final[Manifest] = {
    "backend": "redis",
    "redis": {"external": {"mode": "cluster", "host": "seed.data.svc", "port": 7000}},
}


def secret(name: str, key: str, value: str) -> Manifest:
    return {"metadata": {"name": name}, "data": {key: base64.b64encode(value.encode()).decode()}}


def secret_ref(name: str, key: str) -> dict[str, dict[str, str]]:
    return {"secretKeyRef": {"name": name, "key": key}}


def test_a_sentinel_store_injects_the_sentinels_and_their_password(
    k8s: Kube, namespace: str
) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create(f"/api/v1/namespaces/{namespace}/secrets", secret("data-auth", "password", "d1"))
    k8s.create_store(namespace, "tasks", SENTINEL)
    wait_until(
        "Ready=False SecretNotFound (the sentinels' Secret)",
        lambda: k8s.ready(namespace, "tasks", "False", "SecretNotFound"),
        timeout=TIMEOUT,
    )
    assert "sentinelPasswordSecretRef" in k8s.condition(namespace, "tasks")["message"]
    assert k8s.env(namespace, "planner") == {}

    secrets = f"/api/v1/namespaces/{namespace}/secrets"
    k8s.create(secrets, secret("sentinel-auth", "sentinel", "s1-secret"))
    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    assert k8s.env(namespace, "planner") == {
        "TA_PERSISTENCE_MODULE": ENTRY_FILE_PATH,
        "TA_PERSISTENCE_CLASS": "RedisTaskPersistenceManager",
        "TA_REDIS_MODE": "sentinel",
        "TA_REDIS_SENTINELS": "s0.data.svc:26379,s1.data.svc:26379",
        "TA_REDIS_SENTINEL_MASTER": "orders",
        "TA_REDIS_SENTINEL_PWD": secret_ref("sentinel-auth", "sentinel"),
        "TA_REDIS_SENTINEL_USERNAME": "watcher",
        "TA_REDIS_DB": "0",
        "TA_REDIS_TTL": "3600",
        "TA_REDIS_SSL": "false",
        "TA_REDIS_PWD": secret_ref("data-auth", "password"),
    }
    store = k8s.store(namespace, "tasks")
    assert store is not None
    endpoint = "master orders via sentinels s0.data.svc:26379,s1.data.svc:26379"
    assert store["status"]["endpoint"] == endpoint

    # A rotated sentinel password rolls the agents; its value is nowhere in what they see.
    before = k8s.config_hash(namespace, "planner")
    k8s.control_plane.request_json(
        "PUT", f"{secrets}/sentinel-auth", secret("sentinel-auth", "sentinel", "s2-secret")
    )
    wait_until("a new config hash", lambda: k8s.config_hash(namespace, "planner") != before)
    shown = json.dumps([k8s.deployment(namespace, "planner"), k8s.store(namespace, "tasks")])
    assert "s2-secret" not in shown
    assert base64.b64encode(b"s2-secret").decode() not in shown


def test_a_cluster_store_injects_the_mode_and_the_seed_node(k8s: Kube, namespace: str) -> None:
    k8s.create_deployment(namespace, "planner")
    k8s.create_store(namespace, "tasks", CLUSTER)
    wait_until("Ready=True", lambda: k8s.ready(namespace, "tasks"), timeout=TIMEOUT)
    wait_until("the agent configured", lambda: bool(k8s.config_hash(namespace, "planner")))
    env = k8s.env(namespace, "planner")
    assert env["TA_REDIS_MODE"] == "cluster"
    assert (env["TA_REDIS_HOST"], env["TA_REDIS_PORT"], env["TA_REDIS_DB"]) == (
        "seed.data.svc",
        "7000",
        "0",
    )
    store = k8s.store(namespace, "tasks")
    assert store is not None
    assert store["status"]["endpoint"] == "cluster seeded by seed.data.svc:7000"


@pytest.mark.parametrize(
    ("external", "field", "message"),
    [
        (
            {"mode": "sentinel", "masterName": "orders"},
            "spec.redis.external.sentinels",
            "mode sentinel needs sentinels",
        ),
        (
            {"mode": "sentinel", "sentinels": []},
            "spec.redis.external.sentinels",
            "mode sentinel needs sentinels",
        ),
        (
            {"mode": "cluster", "host": "seed", "db": 1},
            "spec.redis.external.db",
            "db must be 0 with mode cluster",
        ),
        ({"mode": "sentinel", "sentinels": ["s0"]}, "spec.redis.external.sentinels[0]", ""),
        ({}, "spec.redis.external.host", "host is required unless mode is sentinel"),
    ],
    ids=["sentinel-without-sentinels", "sentinel-empty", "cluster-db-1", "bad-entry", "no-host"],
)
def test_the_server_refuses_forms_that_cannot_work(
    control_plane: ControlPlane, namespace: str, external: Manifest, field: str, message: str
) -> None:
    body = taskstore("tasks", {"backend": "redis", "redis": {"external": external}})
    status, reply = control_plane.request("POST", STORES.format(namespace=namespace), body)
    assert status == 422, reply[:500]
    causes = json.loads(reply)["details"]["causes"]
    assert any(c["field"] == field and message in c["message"] for c in causes), causes
    assert control_plane.request_json("GET", STORES.format(namespace=namespace))["items"] == []
