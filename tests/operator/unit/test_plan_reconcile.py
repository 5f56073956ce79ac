"""The pure reconcile: observed state in, the writes that converge it; none once converged."""

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from taskstore_operator.api.contract import (
    CONFIG_HASH_ANNOTATION,
    CONTAINERS_ANNOTATION,
    FIELD_MANAGER,
    FINALIZER,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import ConditionStatus
from taskstore_operator.api.validation import parse_taskstore
from taskstore_operator.plan.agents import (
    carries_injection,
    opt_in_selector,
    stores_named_by,
    stray_injection,
)
from taskstore_operator.plan.backend import managed_object_refs, password_fingerprint
from taskstore_operator.plan.observed import (
    EventType,
    ObjectRef,
    Observed,
    PasswordSecret,
    Plan,
    Settings,
    parse,
)
from taskstore_operator.plan.reconcile import plan_reconcile as plan_with
from taskstore_operator.plan.status import plan_error_status
from taskstore_operator.render.conditions import ConditionType, Reason

Manifest = dict[str, Any]

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
UID = "uid-1234"

MEMORY: Manifest = {}
MANAGED: Manifest = {"backend": "redis", "redis": {"managed": {}}}
MANAGED_DELETE: Manifest = {
    "backend": "redis",
    "redis": {"managed": {"storage": {"size": "1Gi"}, "deletionPolicy": "Delete"}},
}
EXTERNAL: Manifest = {"backend": "redis", "redis": {"external": {"host": "redis.example"}}}
EXTERNAL_WITH_SECRET: Manifest = {
    "backend": "redis",
    "redis": {"external": {"host": "redis.example", "passwordSecretRef": {"name": "auth"}}},
}
CUSTOM: Manifest = {"backend": "custom", "custom": {"module": "my.store", "className": "Store"}}
BACKENDS = {
    "memory": MEMORY,
    "managed": MANAGED,
    "external": EXTERNAL,
    "external-secret": EXTERNAL_WITH_SECRET,
    "custom": CUSTOM,
}
SECRET = PasswordSecret(fingerprint="f1")
NEW_PASSWORD = SecretStr("a-new-password-drawn-by-the-runtime")
SETTINGS = Settings(library_image="registry.example/teal-taskstore:1")


def plan_reconcile(state: Observed) -> Plan:
    """The plan, with the operator's settings of these tests."""
    return plan_with(state, SETTINGS)


def store(
    spec: Manifest | None = None,
    *,
    status: Manifest | None = None,
    finalizers: tuple[str, ...] = (),
    deleting: bool = False,
    generation: int = 1,
) -> Manifest:
    """A TaskStore ``tasks`` in namespace ``agents`` as read from the API server."""
    metadata: Manifest = {
        "name": "tasks",
        "namespace": "agents",
        "uid": UID,
        "generation": generation,
        "finalizers": list(finalizers),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-02T03:04:05Z"
    manifest: Manifest = {"apiVersion": "tealagents.io/v1alpha1", "kind": "TaskStore"}
    manifest |= {"metadata": metadata, "spec": copy.deepcopy(spec or {})}
    if status is not None:
        manifest["status"] = status
    return manifest


def deployment(
    name: str = "planner",
    *,
    label: str | None = "tasks",
    containers: tuple[str, ...] = ("agent",),
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """A Deployment in namespace ``agents``, opted in to ``label``."""
    labels = {} if label is None else {TASKSTORE_LABEL: label}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "agents",
            "uid": f"uid-{name}",
            "labels": labels,
            "annotations": dict(annotations or {}),
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": c, "image": "agent:1"} for c in containers]},
            }
        },
    }


def observed(manifest: Manifest | None, **fields: Any) -> Observed:
    parsed = parse(manifest)
    return Observed(manifest, namespace="agents", name="tasks", now=T0, parsed=parsed, **fields)


def with_manifest(state: Observed, manifest: Manifest | None, **fields: Any) -> Observed:
    """``state`` with another TaskStore manifest, parsed as the runtime would."""
    return replace(state, manifest=manifest, parsed=parse(manifest), **fields)


# -- a tiny model of the API server, enough to feed a plan's writes back in -------------------


def key(**fields: str) -> str:
    """A managedFields list-map key, as the API server writes it."""
    return "k:" + json.dumps(fields, separators=(",", ":"))


def apply_deployment(live: Mapping[str, Any], body: Manifest) -> Manifest:
    """Server-side apply of an operator body: its fields replace what the operator owned."""
    result = strip_deployment(live)
    template = body.get("spec", {}).get("template")
    if template is None:
        return result
    meta = result["spec"]["template"]["metadata"]
    meta.setdefault("labels", {}).update(template["metadata"]["labels"])
    meta.setdefault("annotations", {}).update(template["metadata"]["annotations"])
    pod = result["spec"]["template"]["spec"]
    wanted_pod = template.get("spec", {})
    owned: Manifest = {}
    for wanted in wanted_pod.get("containers", []):
        container = next(c for c in pod["containers"] if c["name"] == wanted["name"])
        container["env"] = [*container.get("env", []), *copy.deepcopy(wanted["env"])]
        mounts = copy.deepcopy(wanted.get("volumeMounts", []))
        container["volumeMounts"] = [*container.get("volumeMounts", []), *mounts]
        owned[key(name=wanted["name"])] = {
            "f:env": {key(name=variable["name"]): {} for variable in wanted["env"]},
            "f:volumeMounts": {key(mountPath=mount["mountPath"]): {} for mount in mounts},
        }
    pod_fields: Manifest = {"f:containers": owned}
    for field in ("volumes", "initContainers"):
        items = copy.deepcopy(wanted_pod.get(field, []))
        pod[field] = [*pod.get(field, []), *items]
        pod_fields[f"f:{field}"] = {key(name=item["name"]): {} for item in items}
    fields = {"f:spec": {"f:template": {"f:spec": pod_fields}}}
    result["metadata"]["managedFields"].append(
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}
    )
    return result


def strip_deployment(live: Mapping[str, Any]) -> Manifest:
    """Server-side apply of a removal body: every field the operator owned goes."""
    result = dict(copy.deepcopy(live))
    owned: dict[str, set[str]] = {"env": set(), "mounts": set(), "pod": set()}
    for entry in result["metadata"]["managedFields"]:
        if entry["manager"] == FIELD_MANAGER:
            pod_fields = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
            for fields in pod_fields["f:containers"].values():
                owned["env"] |= {json.loads(k[2:])["name"] for k in fields["f:env"]}
                mounts = fields.get("f:volumeMounts", {})
                owned["mounts"] |= {json.loads(k[2:])["mountPath"] for k in mounts}
            for field in ("f:volumes", "f:initContainers"):
                owned["pod"] |= {json.loads(k[2:])["name"] for k in pod_fields.get(field, {})}
    if any(entry["manager"] == FIELD_MANAGER for entry in result["metadata"]["managedFields"]):
        meta = result["spec"]["template"]["metadata"]
        meta.get("labels", {}).pop(TASKSTORE_LABEL, None)
        meta.get("annotations", {}).pop(CONFIG_HASH_ANNOTATION, None)
        pod = result["spec"]["template"]["spec"]
        for container in pod["containers"]:
            container["env"] = [
                v for v in container.get("env", []) if v["name"] not in owned["env"]
            ]
            container["volumeMounts"] = [
                m
                for m in container.get("volumeMounts", [])
                if m["mountPath"] not in owned["mounts"]
            ]
        for field in ("volumes", "initContainers"):
            pod[field] = [item for item in pod.get(field, []) if item["name"] not in owned["pod"]]
    result["metadata"]["managedFields"] = [
        entry for entry in result["metadata"]["managedFields"] if entry["manager"] != FIELD_MANAGER
    ]
    return result


def carry_out(state: Observed, plan: Plan) -> Observed:
    """The observed state after the plan's writes (as far as the plan can see them)."""
    assert state.manifest is not None
    manifest = dict(copy.deepcopy(state.manifest))
    if plan.remove_finalizer:
        manifest["metadata"]["finalizers"].remove(FINALIZER)
    if plan.status is not None:
        manifest["status"] = json.loads(json.dumps(plan.status))
    managed: dict[str, Mapping[str, Any]] = dict(state.managed)
    for applied in plan.apply:
        managed[applied["kind"]] = applied
    password = state.password
    for created in plan.create:
        assert state.store is not None
        password = password_fingerprint(state.store, created)
    by_name = {d["metadata"]["name"]: d for d in state.deployments}
    for body in plan.apply_deployments:
        by_name[body["metadata"]["name"]] = apply_deployment(
            by_name[body["metadata"]["name"]], body
        )
    for body in plan.strip_deployments:
        by_name[body["metadata"]["name"]] = strip_deployment(by_name[body["metadata"]["name"]])
    return replace(
        state,
        manifest=manifest,
        parsed=parse(manifest),
        managed=managed,
        password=password,
        new_password=None,
        deployments=list(by_name.values()),
        now=state.now + timedelta(seconds=1),
    )


def converge(state: Observed, *, rounds: int = 4) -> Observed:
    """Reconcile until nothing is left to write; fail if that takes too long."""
    for _ in range(rounds):
        plan = plan_reconcile(state)
        if plan.writes == 0:
            return state
        state = carry_out(state, plan)
    raise AssertionError(f"no convergence after {rounds} rounds: {plan}")


def condition(plan_or_status: Plan | Manifest | None, type_: str) -> Manifest:
    status = plan_or_status.status if isinstance(plan_or_status, Plan) else plan_or_status
    assert status is not None
    return next(c for c in status["conditions"] if c["type"] == type_)


def env_of(live: Mapping[str, Any], container: str = "agent") -> dict[str, Any]:
    containers = live["spec"]["template"]["spec"]["containers"]
    found = next(c for c in containers if c["name"] == container)
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in found.get("env", [])}


def ready_state(spec: Manifest, *deployments: Manifest) -> Observed:
    """A store of ``spec`` whose Redis (if any) is ready and whose password Secret exists."""
    needs_secret = spec in (MANAGED, MANAGED_DELETE, EXTERNAL_WITH_SECRET)
    return observed(
        store(spec),
        deployments=list(deployments),
        password=SECRET if needs_secret else None,
        redis_ready_replicas=1,
    )


# -- convergence and idempotence ---------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_converged_store_plans_no_write(backend: str) -> None:
    state = converge(ready_state(BACKENDS[backend], deployment("a"), deployment("b")))

    plan = plan_reconcile(state)

    assert plan.writes == 0
    assert plan.status is None
    assert state.manifest is not None
    status = state.manifest["status"]
    assert status["agents"] == {"injected": 2, "names": ["a", "b"], "conflicts": []}
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["reason"] == "Reconciled"
    assert condition(status, "AgentsConfigured")["reason"] == "Injected"
    has_redis = any(c["type"] == "RedisAvailable" for c in status["conditions"])
    assert has_redis == (backend in ("managed", "external", "external-secret"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_opted_in_deployment_gets_the_environment_in_one_plan(backend: str) -> None:
    state = ready_state(BACKENDS[backend], deployment("a"), deployment("b"))
    if backend == "managed":
        state = replace(state, password=SECRET)

    plan = plan_reconcile(state)

    assert [body["metadata"]["name"] for body in plan.apply_deployments] == ["a", "b"]
    body = plan.apply_deployments[0]
    template = body["spec"]["template"]
    assert template["metadata"]["labels"] == {TASKSTORE_LABEL: "tasks"}
    assert CONFIG_HASH_ANNOTATION in template["metadata"]["annotations"]
    assert [c["name"] for c in template["spec"]["containers"]] == ["agent"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_plan_carried_out_leaves_nothing_to_write(backend: str) -> None:
    # The operator does not reconcile a store again for the events of its own writes.
    state = ready_state(BACKENDS[backend], deployment("a"), deployment("b"))
    state = carry_out(state, plan_reconcile(state))
    assert plan_reconcile(state).writes == 0

    relabelled = copy.deepcopy(state.deployments[0])
    relabelled["metadata"]["labels"] = {}
    state = replace(state, deployments=[relabelled, state.deployments[1]])
    plan = plan_reconcile(state)
    assert len(plan.strip_deployments) == 1
    assert plan_reconcile(carry_out(state, plan)).writes == 0


def test_no_finalizer_is_added_and_an_old_one_is_released() -> None:
    plan = plan_reconcile(observed(store()))
    assert not plan.remove_finalizer
    assert plan_reconcile(carry_out(observed(store()), plan)).writes == 0

    assert plan_reconcile(observed(store(finalizers=(FINALIZER,)))).remove_finalizer


def test_status_holds_generation_endpoint_and_secret_name() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    assert state.manifest is not None

    status = state.manifest["status"]

    assert status["observedGeneration"] == 1
    assert status["endpoint"] == "tasks-redis.agents.svc:6379"
    assert status["secretName"] == "tasks-redis-auth"
    assert {c["observedGeneration"] for c in status["conditions"]} == {1}


def test_memory_store_has_no_endpoint_nor_secret_name() -> None:
    status = plan_reconcile(observed(store())).status
    assert status is not None
    assert status["endpoint"] == ""
    assert "secretName" not in status


def test_last_transition_time_stays_unless_the_status_flips() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    assert state.manifest is not None
    status = state.manifest["status"]
    before = condition(status, "Ready")["lastTransitionTime"]

    same = plan_reconcile(with_manifest(state, store(status=status, generation=2), now=T1))
    flipped = plan_reconcile(
        with_manifest(state, store({"backend": "redis"}, status=status), now=T1)
    )

    assert condition(same, "Ready")["observedGeneration"] == 2
    assert condition(same, "Ready")["lastTransitionTime"] == before
    assert condition(flipped, "Ready")["lastTransitionTime"] == "2026-01-02T03:05:05Z"
    assert condition(flipped, "AgentsConfigured")["lastTransitionTime"] == before


def test_a_generation_change_rewrites_status_only() -> None:
    state = converge(ready_state(CUSTOM, deployment()))
    assert state.manifest is not None
    bumped = with_manifest(state, store(CUSTOM, status=state.manifest["status"], generation=5))

    plan = plan_reconcile(bumped)

    assert plan.status is not None
    assert plan.status["observedGeneration"] == 5
    assert plan.writes == 1


# -- the managed Redis -------------------------------------------------------------------------


def test_a_new_managed_store_is_planned_whole_in_one_pass() -> None:
    state = observed(store(MANAGED), deployments=[deployment()], new_password=NEW_PASSWORD)

    plan = plan_reconcile(state)

    [secret] = plan.create
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", "tasks-redis-auth")
    assert [m["kind"] for m in plan.apply] == [
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "StatefulSet",
    ]
    assert plan.apply_deployments == []
    assert condition(plan, "Ready")["reason"] == "Provisioning"
    assert [event.reason for event in plan.events] == ["PasswordCreated", "Provisioning"]
    assert NEW_PASSWORD.get_secret_value() not in repr(plan)
    # Carried out, the same plan leaves nothing to write: the fingerprint it used is the
    # one the created Secret gives.
    assert plan_reconcile(carry_out(state, plan)).writes == 0


def test_a_managed_store_without_its_secret_needs_a_drawn_password() -> None:
    with pytest.raises(ValueError, match="new password"):
        plan_reconcile(observed(store(MANAGED)))


def test_managed_objects_are_applied_and_agents_wait_for_a_ready_replica() -> None:
    state = observed(store(MANAGED), deployments=[deployment()], password=SECRET)

    plan = plan_reconcile(state)

    assert [m["kind"] for m in plan.apply] == [
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "StatefulSet",
    ]
    assert plan.apply_deployments == []
    assert condition(plan, "Ready") | {"lastTransitionTime": None} == {
        "type": "Ready",
        "status": "False",
        "reason": "Provisioning",
        "message": "StatefulSet tasks-redis has no ready replica yet",
        "observedGeneration": 1,
        "lastTransitionTime": None,
    }
    assert condition(plan, "RedisAvailable")["reason"] == "Provisioning"
    assert condition(plan, "AgentsConfigured")["reason"] == "WaitingForRedis"


def test_agents_keep_their_environment_while_the_redis_is_not_ready() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    assert state.manifest is not None
    switched = with_manifest(
        state, store(MANAGED, status=state.manifest["status"]), password=SECRET
    )
    switched = replace(switched, redis_ready_replicas=0)

    plan = plan_reconcile(switched)

    assert plan.apply_deployments == []
    assert plan.strip_deployments == []
    assert plan.status is not None
    assert plan.status["agents"]["names"] == ["planner"]
    assert condition(plan, "Ready")["status"] == "False"

    ready = plan_reconcile(replace(carry_out(switched, plan), redis_ready_replicas=1))
    assert [body["metadata"]["name"] for body in ready.apply_deployments] == ["planner"]
    assert condition(ready, "Ready")["status"] == "True"


def test_only_the_managed_objects_that_differ_are_applied() -> None:
    state = converge(ready_state(MANAGED))
    stale = dict(state.managed)
    stale["Service"] = copy.deepcopy(stale["Service"])
    stale["Service"]["metadata"]["annotations"]["tealagents.io/spec-hash"] = "old"

    plan = plan_reconcile(replace(state, managed=stale))

    assert [m["kind"] for m in plan.apply] == ["Service"]


def test_a_recreated_password_rolls_the_redis_and_the_agents() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    before = state.deployments[0]["spec"]["template"]["metadata"]["annotations"]

    plan = plan_reconcile(replace(state, password=PasswordSecret(fingerprint="f2")))

    assert [m["kind"] for m in plan.apply] == ["StatefulSet"]
    [body] = plan.apply_deployments
    after = body["spec"]["template"]["metadata"]["annotations"]
    assert after[CONFIG_HASH_ANNOTATION] != before[CONFIG_HASH_ANNOTATION]


def test_a_deleted_password_secret_is_created_again() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    before = state.deployments[0]["spec"]["template"]["metadata"]["annotations"]

    plan = plan_reconcile(replace(state, password=None, new_password=NEW_PASSWORD))

    assert [secret["metadata"]["name"] for secret in plan.create] == ["tasks-redis-auth"]
    assert [m["kind"] for m in plan.apply] == ["StatefulSet"]
    # In the same plan: the agents roll onto the new password, and the status, which
    # does not change, is not written; no Warning.
    [body] = plan.apply_deployments
    after = body["spec"]["template"]["metadata"]["annotations"]
    assert after[CONFIG_HASH_ANNOTATION] != before[CONFIG_HASH_ANNOTATION]
    assert plan.status is None
    assert [(event.type, event.reason) for event in plan.events] == [
        (EventType.NORMAL, "PasswordCreated")
    ]
    assert plan_reconcile(carry_out(replace(state, password=None), plan)).writes == 0


def test_leaving_the_managed_backend_deletes_the_owned_redis_objects() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    foreign = {"apiVersion": "v1", "metadata": {"name": "x", "namespace": "agents"}}
    secret = {
        "apiVersion": "v1",
        "metadata": {
            "name": "tasks-redis-auth",
            "namespace": "agents",
            "ownerReferences": [{"uid": UID}],
        },
    }
    managed = {**state.managed, "Secret": secret, "PersistentVolumeClaim": foreign}
    assert state.manifest is not None

    plan = plan_reconcile(
        with_manifest(state, store(MEMORY, status=state.manifest["status"]), managed=managed)
    )

    assert sorted(ref.kind for ref in plan.delete) == [
        "ConfigMap",
        "NetworkPolicy",
        "Secret",
        "Service",
        "StatefulSet",
    ]
    assert plan.status is not None
    assert [c["type"] for c in plan.status["conditions"]] == ["AgentsConfigured", "Ready"]


def test_objects_of_managed_names_it_did_not_create_are_left_alone() -> None:
    users = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tasks-redis-config", "namespace": "agents"},
    }
    state = observed(
        store(MANAGED),
        deployments=[deployment()],
        managed={"ConfigMap": users},
        new_password=NEW_PASSWORD,
    )

    plan = plan_reconcile(state)

    assert plan.create == plan.apply == plan.apply_deployments == []
    assert plan.delete == []
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameInUse")
    assert "ConfigMap tasks-redis-config" in ready["message"]
    # Leaving the managed backend deletes none of it either.
    assert plan_reconcile(with_manifest(state, store(MEMORY))).delete == []


def test_a_renamed_password_key_is_restored_or_reported() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    owned = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "tasks-redis-auth",
            "namespace": "agents",
            "uid": "secret-uid",
            "ownerReferences": [{"uid": UID}],
        },
    }
    managed = {**state.managed, "Secret": owned}
    renamed = replace(state, managed=managed, password=PasswordSecret(None, ("pass",)))

    restored = plan_reconcile(replace(renamed, new_password=NEW_PASSWORD))

    [(live, secret)] = restored.restore
    assert (live.name, live.uid) == ("tasks-redis-auth", "secret-uid")
    assert list(secret["data"]) == ["password"]
    assert "a-new-password" not in repr(restored)

    unknown = plan_reconcile(replace(renamed, password=PasswordSecret(None, ("a", "b"))))

    assert unknown.restore == []
    ready = condition(unknown, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PasswordKeyMissing")
    assert "tasks-redis-auth" in ready["message"]
    assert "a, b" in ready["message"]


# -- the external Redis ------------------------------------------------------------------------


def test_a_missing_external_secret_is_reported_and_agents_are_left_alone() -> None:
    plan = plan_reconcile(observed(store(EXTERNAL_WITH_SECRET), deployments=[deployment()]))

    assert plan.apply_deployments == []
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert "Secret auth with key password" in ready["message"]
    assert "passwordSecretRef" in ready["message"]


def test_an_external_secret_without_the_key_counts_as_missing() -> None:
    state = observed(store(EXTERNAL_WITH_SECRET), password=PasswordSecret(fingerprint=None))
    assert condition(plan_reconcile(state), "Ready")["reason"] == "SecretNotFound"


def test_the_store_recovers_when_the_external_secret_appears() -> None:
    missing = converge(observed(store(EXTERNAL_WITH_SECRET), deployments=[deployment()]))

    plan = plan_reconcile(replace(missing, password=SECRET))

    assert len(plan.apply_deployments) == 1
    assert condition(plan, "Ready")["status"] == "True"
    assert condition(plan, "RedisAvailable")["reason"] == "ExternalConfigured"
    env = plan.apply_deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "TA_REDIS_PWD",
        "valueFrom": {"secretKeyRef": {"name": "auth", "key": "password"}},
    } in env


SENTINEL_STORE: Manifest = {
    "backend": "redis",
    "redis": {
        "external": {
            "mode": "sentinel",
            "sentinels": ["s0:26379"],
            "passwordSecretRef": {"name": "auth"},
            "sentinelPasswordSecretRef": {"name": "sentinel-auth"},
        }
    },
}


def test_a_missing_sentinel_secret_is_reported_and_agents_are_left_alone() -> None:
    plan = plan_reconcile(
        observed(store(SENTINEL_STORE), deployments=[deployment()], password=SECRET)
    )

    assert plan.apply_deployments == []
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert "Secret sentinel-auth with key password" in ready["message"]
    assert "sentinelPasswordSecretRef" in ready["message"]


def test_a_rotated_sentinel_password_rolls_the_agents() -> None:
    both = PasswordSecret(fingerprint="f1", sentinel_fingerprint="s1")
    state = converge(observed(store(SENTINEL_STORE), deployments=[deployment()], password=both))
    assert plan_reconcile(state).apply_deployments == []
    (live,) = state.deployments
    before = live["spec"]["template"]["metadata"]["annotations"]

    rotated = replace(state, password=PasswordSecret(fingerprint="f1", sentinel_fingerprint="s2"))
    plan = plan_reconcile(rotated)

    (body,) = plan.apply_deployments
    after = body["spec"]["template"]["metadata"]["annotations"]
    assert after["tealagents.io/config-hash"] != before["tealagents.io/config-hash"]
    env = body["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "TA_REDIS_SENTINEL_PWD",
        "valueFrom": {"secretKeyRef": {"name": "sentinel-auth", "key": "password"}},
    } in env
    assert "s2" not in str(body)


# -- the agents --------------------------------------------------------------------------------


def test_a_backend_change_replaces_the_variables() -> None:
    state = converge(ready_state(EXTERNAL, deployment()))
    assert state.manifest is not None

    after = converge(with_manifest(state, store(MEMORY, status=state.manifest["status"])))

    assert set(env_of(after.deployments[0])) == {"TA_PERSISTENCE_MODULE", "TA_PERSISTENCE_CLASS"}
    assert env_of(after.deployments[0])["TA_PERSISTENCE_CLASS"] == "InMemoryPersistenceManager"


def test_a_removed_label_strips_the_environment() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    unlabelled = copy.deepcopy(state.deployments[0])
    unlabelled["metadata"]["labels"] = {}

    plan = plan_reconcile(replace(state, deployments=[unlabelled]))

    assert plan.strip_deployments == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "planner", "namespace": "agents"},
        }
    ]
    assert plan.status is not None
    assert plan.status["agents"] == {"injected": 0, "names": [], "conflicts": []}


def test_a_label_naming_another_store_is_stripped_by_this_one() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    moved = copy.deepcopy(state.deployments[0])
    moved["metadata"]["labels"] = {TASKSTORE_LABEL: "other"}

    assert len(plan_reconcile(replace(state, deployments=[moved])).strip_deployments) == 1


def test_deployments_of_other_stores_are_left_alone() -> None:
    plan = plan_reconcile(
        ready_state(MEMORY, deployment(label="other"), deployment("x", label=None))
    )
    assert plan.apply_deployments == []
    assert plan.strip_deployments == []


def test_a_hand_set_variable_is_a_conflict_and_is_not_overwritten() -> None:
    hand_set = deployment("by-hand")
    hand_set["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "TA_REDIS_HOST", "value": "mine"}
    ]

    plan = plan_reconcile(ready_state(EXTERNAL, hand_set, deployment("clean")))

    assert [body["metadata"]["name"] for body in plan.apply_deployments] == ["clean"]
    assert plan.status is not None
    assert plan.status["agents"] == {"injected": 1, "names": ["clean"], "conflicts": ["by-hand"]}
    assert (condition(plan, "Ready")["status"], condition(plan, "Ready")["reason"]) == (
        "False",
        "AgentsConflict",
    )
    assert "by-hand" in condition(plan, "AgentsConfigured")["message"]


def test_a_variable_of_another_backend_set_by_hand_is_no_conflict() -> None:
    hand_set = deployment()
    hand_set["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "TA_REDIS_HOST", "value": "mine"}
    ]
    plan = plan_reconcile(ready_state(MEMORY, hand_set))
    assert len(plan.apply_deployments) == 1


def test_a_changed_container_selection_is_applied_again() -> None:
    state = converge(ready_state(MEMORY, deployment(containers=("agent", "sidecar"))))
    narrowed = copy.deepcopy(state.deployments[0])
    narrowed["metadata"]["annotations"][CONTAINERS_ANNOTATION] = "agent"

    plan = plan_reconcile(replace(state, deployments=[narrowed]))

    [body] = plan.apply_deployments
    assert [c["name"] for c in body["spec"]["template"]["spec"]["containers"]] == ["agent"]


def test_env_changed_by_someone_else_is_applied_again() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    hash_changed = copy.deepcopy(state.deployments[0])
    hash_changed["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = "x"

    assert len(plan_reconcile(replace(state, deployments=[hash_changed])).apply_deployments) == 1


def test_carries_injection_needs_both_the_template_label_and_the_manager() -> None:
    copied = deployment()
    copied["spec"]["template"]["metadata"]["labels"][TASKSTORE_LABEL] = "tasks"
    assert not carries_injection(copied, "tasks")

    state = converge(ready_state(MEMORY, deployment()))
    assert carries_injection(state.deployments[0], "tasks")
    assert not carries_injection(state.deployments[0], "other")


# -- refusal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"backend": "redis"}, "spec"),
        ({"backend": "redis", "redis": {"managed": {}, "external": {"host": "h"}}}, "spec.redis"),
        ({"backend": "redis", "redis": {"external": {"host": "h", "port": 0}}}, "port"),
        ({"backend": "custom", "custom": {"module": "not a module", "className": "C"}}, "module"),
        (
            {"backend": "redis", "redis": {"managed": {"storage": {"size": "0"}}}},
            "spec.redis.managed.storage.size",
        ),
    ],
)
def test_an_invalid_spec_changes_nothing_and_names_the_field(spec: Manifest, field: str) -> None:
    state = observed(
        store(spec, finalizers=()),
        deployments=[deployment()],
        password=SECRET,
        redis_ready_replicas=1,
    )

    plan = plan_reconcile(state)

    assert plan.apply == plan.apply_deployments == plan.strip_deployments == []
    assert plan.delete == []
    assert plan.create == []
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert field in ready["message"]
    [event] = plan.events
    assert (event.type, event.reason) == (EventType.WARNING, "InvalidSpec")
    assert field in event.message


def test_an_invalid_spec_keeps_what_agents_had() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    assert state.manifest is not None
    broken = with_manifest(state, store({"backend": "redis"}, status=state.manifest["status"]))

    plan = plan_reconcile(broken)

    assert plan.strip_deployments == []
    assert plan_reconcile(carry_out(broken, plan)).writes == 0


def test_an_unreadable_status_is_rewritten() -> None:
    plan = plan_reconcile(observed(store(status={"conditions": [{"type": "Ready"}]})))
    assert condition(plan, "Ready")["status"] == "True"


# -- events ------------------------------------------------------------------------------------


def test_events_are_emitted_on_transitions_only() -> None:
    first = plan_reconcile(observed(store()))
    [event] = first.events
    assert event == (
        ObjectRef("tealagents.io/v1alpha1", "TaskStore", "agents", "tasks", UID),
        EventType.NORMAL,
        "Reconciled",
        "the TaskStore is ready",
    )
    state = carry_out(observed(store()), first)
    assert plan_reconcile(replace(state, deployments=[deployment()])).events == []


# -- deletion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("finalizers", [(), (FINALIZER,)], ids=["none", "old finalizer"])
@pytest.mark.parametrize("spec", [MANAGED, MANAGED_DELETE, {"backend": "x"}])
def test_deletion_strips_the_agents_and_releases_an_old_finalizer(
    spec: Manifest, finalizers: tuple[str, ...]
) -> None:
    state = converge(
        ready_state(MEMORY, deployment("a"), deployment("b"), deployment("c", label=None))
    )

    plan = plan_reconcile(with_manifest(state, store(spec, deleting=True, finalizers=finalizers)))

    assert [body["metadata"]["name"] for body in plan.strip_deployments] == ["a", "b"]
    assert plan.remove_finalizer == bool(finalizers)
    # Data claims go by garbage collection (the StatefulSet's retention policy), never here.
    assert plan.delete == []
    assert plan.status is None
    assert plan.apply == []
    assert plan.apply_deployments == []


def test_a_missing_store_strips_what_it_left_and_warns_labelled_deployments() -> None:
    state = converge(ready_state(MEMORY, deployment("a")))
    orphan = with_manifest(state, None, deployments=[*state.deployments, deployment("b")])

    plan = plan_reconcile(orphan)

    assert [body["metadata"]["name"] for body in plan.strip_deployments] == ["a"]
    [event] = plan.events
    assert (event.regarding.name, event.type, event.reason) == (
        "b",
        EventType.WARNING,
        "TaskStoreNotFound",
    )


def test_no_password_reaches_status_or_events() -> None:
    state = converge(ready_state(MANAGED, deployment()))
    assert state.manifest is not None
    text = json.dumps(state.manifest["status"])
    assert "f1" not in text
    assert ConditionStatus.TRUE in {c["status"] for c in state.manifest["status"]["conditions"]}
    assert ConditionType.READY and Reason.RECONCILED


# -- helpers the runtime uses ------------------------------------------------------------------


def test_stores_named_by_label_template_label_and_owner() -> None:
    moved = converge(ready_state(MEMORY, deployment())).deployments[0]
    moved = copy.deepcopy(moved)
    moved["metadata"]["labels"] = {TASKSTORE_LABEL: "other"}
    owned = {
        "kind": "StatefulSet",
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "tealagents.io/v1alpha1", "kind": "TaskStore", "name": "tasks"},
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            ]
        },
    }

    assert stores_named_by(moved) == {"tasks", "other"}
    assert stores_named_by(owned) == {"tasks"}
    assert stores_named_by(deployment(label=None)) == set()


def test_a_stray_injection_is_one_whose_label_no_longer_names_its_store() -> None:
    injected = converge(ready_state(MEMORY, deployment())).deployments[0]
    relabelled = copy.deepcopy(injected)
    relabelled["metadata"]["labels"] = {TASKSTORE_LABEL: "other"}
    unlabelled = copy.deepcopy(injected)
    unlabelled["metadata"]["labels"] = {}
    copied = deployment(label=None)
    copied["spec"]["template"]["metadata"]["labels"][TASKSTORE_LABEL] = "tasks"

    assert stray_injection(injected) is None
    assert stray_injection(relabelled) == "tasks"
    assert stray_injection(unlabelled) == "tasks"
    assert stray_injection(copied) is None
    assert stray_injection(deployment()) is None


def test_opt_in_selector_needs_a_name_that_fits_a_label_value() -> None:
    assert opt_in_selector("tasks") == f"{TASKSTORE_LABEL}=tasks"
    assert opt_in_selector("x" * 63) is not None
    assert opt_in_selector("x" * 64) is None


def test_error_status_is_written_once() -> None:
    manifest = store(status=converge(ready_state(MEMORY)).manifest["status"])  # type: ignore[index]

    status = plan_error_status(manifest, "PATCH x: 409 Conflict", T1)

    assert status is not None
    assert condition(status, "Ready")["reason"] == "ReconcileError"
    assert plan_error_status(store(status=status), "PATCH x: 409 Conflict", T1) is None


def test_managed_object_refs_name_every_managed_object() -> None:
    refs = managed_object_refs(parse_taskstore(store(MANAGED)))
    assert {(ref.kind, ref.name) for ref in refs} == {
        ("Secret", "tasks-redis-auth"),
        ("ConfigMap", "tasks-redis-config"),
        ("Service", "tasks-redis"),
        ("NetworkPolicy", "tasks-redis"),
        ("StatefulSet", "tasks-redis"),
    }


# -- the library in the pod --------------------------------------------------------------------


def pod_of(live: Mapping[str, Any]) -> Manifest:
    pod: Manifest = live["spec"]["template"]["spec"]
    return pod


def library_parts(live: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Volumes, init containers and the agent container's mount paths of a Deployment."""
    pod = pod_of(live)
    agent = next(c for c in pod["containers"] if c["name"] == "agent")
    return (
        [v["name"] for v in pod.get("volumes", [])],
        [c["name"] for c in pod.get("initContainers", [])],
        [m["mountPath"] for m in agent.get("volumeMounts", [])],
    )


LIBRARY = (["teal-taskstore-library"], ["teal-taskstore-library"], ["/opt/teal-taskstore"])
NO_LIBRARY: tuple[list[str], list[str], list[str]] = ([], [], [])


@pytest.mark.parametrize("backend", ["memory", "managed", "external", "custom"])
def test_memory_and_redis_agents_get_the_library_custom_ones_do_not(backend: str) -> None:
    state = converge(ready_state(BACKENDS[backend], deployment()))

    assert library_parts(state.deployments[0]) == (NO_LIBRARY if backend == "custom" else LIBRARY)


@pytest.mark.parametrize(
    "change",
    ["label-removed", "store-deleted", "store-gone", "backend-custom"],
)
def test_the_library_goes_with_the_variables(change: str) -> None:
    state = converge(ready_state(MEMORY, deployment()))
    assert state.manifest is not None
    status = state.manifest["status"]
    if change == "label-removed":
        unlabelled = copy.deepcopy(state.deployments[0])
        unlabelled["metadata"]["labels"] = {}
        state = replace(state, deployments=[unlabelled])
    elif change == "store-deleted":
        state = with_manifest(state, store(deleting=True))
    elif change == "store-gone":
        state = with_manifest(state, None)
    else:
        state = with_manifest(state, store(CUSTOM, status=status))

    plan = plan_reconcile(state)
    live = state.deployments[0]
    for body in plan.apply_deployments:
        live = apply_deployment(live, body)
    if plan.strip_deployments:
        live = strip_deployment(live)

    assert library_parts(live) == NO_LIBRARY
    if change == "backend-custom":
        assert env_of(live)["TA_PERSISTENCE_MODULE"] == "my.store"


def test_a_new_library_image_rolls_the_agents() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    before = state.deployments[0]["spec"]["template"]["metadata"]["annotations"]

    plan = plan_with(state, Settings(library_image="registry.example/teal-taskstore:2"))

    [body] = plan.apply_deployments
    [init] = body["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == "registry.example/teal-taskstore:2"
    after = body["spec"]["template"]["metadata"]["annotations"]
    assert after[CONFIG_HASH_ANNOTATION] != before[CONFIG_HASH_ANNOTATION]


def test_a_library_part_removed_by_hand_is_applied_again() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    edited = copy.deepcopy(state.deployments[0])
    for entry in edited["metadata"]["managedFields"]:
        if entry["manager"] == FIELD_MANAGER:
            entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:initContainers"] = {}
    pod_of(edited)["initContainers"] = []

    plan = plan_reconcile(replace(state, deployments=[edited]))

    assert [body["metadata"]["name"] for body in plan.apply_deployments] == ["planner"]


def test_an_override_store_naming_an_injected_variable_is_a_conflict() -> None:
    overriding = deployment("overriding")
    pod_of(overriding)["containers"][0]["env"] = [
        {"name": "TA_ENV_STORE", "value": json.dumps({"TA_PERSISTENCE_CLASS": "Mine"})}
    ]

    plan = plan_reconcile(ready_state(MEMORY, overriding))

    assert plan.apply_deployments == []
    assert plan.status is not None
    assert plan.status["agents"]["conflicts"] == ["overriding"]
    assert condition(plan, "Ready")["reason"] == "AgentsConflict"


def test_a_dotted_custom_module_is_kept_and_the_status_says_who_can_load_it() -> None:
    dotted = converge(ready_state(CUSTOM, deployment()))
    file_spec = {"backend": "custom", "custom": {"module": "/app/my_store.py", "className": "S"}}
    file_path = converge(ready_state(file_spec, deployment()))
    assert dotted.manifest is not None and file_path.manifest is not None

    message = condition(dotted.manifest["status"], "AgentsConfigured")["message"]
    assert "spec.custom.module is a dotted module path" in message
    assert "PersistenceFactory" in message
    assert condition(dotted.manifest["status"], "Ready")["status"] == "True"
    assert condition(file_path.manifest["status"], "AgentsConfigured")["message"] == (
        "1 Deployment(s) configured"
    )


@pytest.mark.parametrize(
    ("module", "stem"),
    [
        ("/app/redis.py", "redis"),
        ("/app/json.store.py", "json"),
        ("/app/sk_agents.py", "sk_agents"),
    ],
)
def test_a_custom_file_whose_stem_names_a_module_agents_import_is_reported(
    module: str, stem: str
) -> None:
    """The framework puts the file in sys.modules[stem]: it would replace that module."""
    spec = {"backend": "custom", "custom": {"module": module, "className": "S"}}
    converged = converge(ready_state(spec, deployment()))
    assert converged.manifest is not None

    message = condition(converged.manifest["status"], "AgentsConfigured")["message"]
    assert f"file stem {stem!r}" in message
    assert "replace" in message


# -- a container annotation that names a container the pod lacks (issue 10, defect 6) -------


def test_a_containers_annotation_naming_no_container_is_reported_and_changes_nothing() -> None:
    state = converge(ready_state(MEMORY, deployment(), deployment("other")))
    typo = copy.deepcopy(state.deployments[0])
    typo["metadata"]["annotations"][CONTAINERS_ANNOTATION] = "Agent"
    state = replace(state, deployments=[typo, state.deployments[1]])

    plan = plan_reconcile(state)

    assert plan.apply_deployments == plan.strip_deployments == []
    assert plan.status is not None
    assert plan.status["agents"] == {
        "injected": 2,
        "names": ["other", "planner"],
        "conflicts": ["planner"],
    }
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AgentsConflict")
    assert (
        "names containers the pod template lacks: Agent (containers: agent)" in (ready["message"])
    )
    warnings = [e for e in plan.events if e.regarding.kind == "Deployment"]
    assert [(e.regarding.name, e.type, e.reason) for e in warnings] == [
        ("planner", EventType.WARNING, "ContainersNotFound")
    ]
    # Told once: the next reconcile of the same state writes nothing.
    assert plan_reconcile(carry_out(state, plan)).writes == 0


def test_one_unknown_name_among_known_ones_is_reported_too_and_changes_nothing() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    typo = copy.deepcopy(state.deployments[0])
    typo["metadata"]["annotations"][CONTAINERS_ANNOTATION] = "agent, sidecra"

    plan = plan_reconcile(replace(state, deployments=[typo]))

    assert plan.apply_deployments == plan.strip_deployments == []
    ready = condition(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AgentsConflict")
    assert (
        "names containers the pod template lacks: sidecra (containers: agent)" in (ready["message"])
    )
    assert [e.reason for e in plan.events if e.regarding.kind == "Deployment"] == [
        "ContainersNotFound"
    ]


def test_a_new_deployment_naming_no_container_gets_nothing() -> None:
    typo = deployment(annotations={CONTAINERS_ANNOTATION: "missing"})
    state = converge(ready_state(MEMORY, typo))
    assert state.manifest is not None
    assert state.manifest["status"]["agents"] == {
        "injected": 0,
        "names": [],
        "conflicts": ["planner"],
    }
    assert env_of(state.deployments[0]) == {}


# -- a hand-edited injected variable (issue 10, defect 1) --------------------------------------


def test_a_hand_edited_injected_value_is_taken_back_by_a_forced_apply() -> None:
    state = converge(ready_state(EXTERNAL, deployment("x1"), deployment("x2")))
    edited = copy.deepcopy(state.deployments[0])
    for variable in pod_of(edited)["containers"][0]["env"]:
        if variable["name"] == "TA_REDIS_HOST":
            variable["value"] = "attacker.example"

    plan = plan_reconcile(replace(state, deployments=[edited, state.deployments[1]]))

    [body] = plan.apply_deployments
    assert body["metadata"]["name"] == "x1"
    assert plan.force_deployments == {"x1"}
    assert env_of(apply_deployment(edited, body))["TA_REDIS_HOST"] == "redis.example"
    assert plan.status is None


def test_a_first_injection_is_never_forced() -> None:
    plan = plan_reconcile(ready_state(MEMORY, deployment()))
    assert len(plan.apply_deployments) == 1
    assert plan.force_deployments == set()


def test_a_library_part_edited_by_hand_is_taken_back() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    edited = copy.deepcopy(state.deployments[0])
    pod_of(edited)["initContainers"][0]["image"] = "evil/library:latest"

    plan = plan_reconcile(replace(state, deployments=[edited]))

    assert plan.force_deployments == {"planner"}
    [init] = plan.apply_deployments[0]["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == SETTINGS.library_image


def test_values_the_server_adds_are_not_drift() -> None:
    state = converge(ready_state(MEMORY, deployment()))
    defaulted = copy.deepcopy(state.deployments[0])
    init = pod_of(defaulted)["initContainers"][0]
    init["terminationMessagePath"] = "/dev/termination-log"
    init["imagePullPolicy"] = "IfNotPresent"
    pod_of(defaulted)["containers"][0]["volumeMounts"][0]["mountPropagation"] = "None"

    assert plan_reconcile(replace(state, deployments=[defaulted])).writes == 0


# -- moving a Deployment to another store (issue 10, defect 5) ---------------------------------


def moved_from_tasks(label: str) -> tuple[Observed, Manifest]:
    """A store ``tasks`` (external Redis) whose agent is now labelled for ``label``."""
    state = converge(ready_state(EXTERNAL, deployment()))
    moved: Manifest = copy.deepcopy(dict(state.deployments[0]))
    moved["metadata"]["labels"] = {TASKSTORE_LABEL: label}
    return state, moved


def test_the_store_left_keeps_out_of_the_way_of_the_store_joined() -> None:
    state, moved = moved_from_tasks("other")

    left = plan_reconcile(replace(state, deployments=[moved], other_stores=frozenset({"other"})))

    assert left.strip_deployments == []
    assert left.status is not None
    assert left.status["agents"]["names"] == []
    # A label naming no existing store: the environment goes, as before.
    assert len(plan_reconcile(replace(state, deployments=[moved])).strip_deployments) == 1


def carrying(store_name: str) -> Manifest:
    """A Deployment labelled ``tasks`` that carries the injection of ``store_name``."""
    live: Manifest = copy.deepcopy(
        dict(converge(ready_state(EXTERNAL, deployment())).deployments[0])
    )
    live["spec"]["template"]["metadata"]["labels"][TASKSTORE_LABEL] = store_name
    return live


def test_the_store_joined_replaces_the_environment_in_one_forced_apply() -> None:
    joining = ready_state(MEMORY, carrying("old"))

    plan = plan_reconcile(joining)

    [body] = plan.apply_deployments
    assert plan.force_deployments == {"planner"}
    assert plan.strip_deployments == []
    after = apply_deployment(joining.deployments[0], body)
    assert set(env_of(after)) == {"TA_PERSISTENCE_MODULE", "TA_PERSISTENCE_CLASS"}
    assert after["spec"]["template"]["metadata"]["labels"][TASKSTORE_LABEL] == "tasks"
    assert plan_reconcile(replace(joining, deployments=[after])).apply_deployments == []


def test_until_the_store_joined_is_usable_the_agent_keeps_the_old_one() -> None:
    joining = observed(
        store(MANAGED), deployments=[carrying("old")], password=SECRET, redis_ready_replicas=0
    )

    plan = plan_reconcile(joining)

    assert plan.apply_deployments == plan.strip_deployments == []
    assert condition(plan, "AgentsConfigured")["reason"] == "WaitingForRedis"


@pytest.mark.parametrize("gone", ["deleted", "missing"])
def test_a_store_gone_before_it_took_a_moving_deployment_strips_it(gone: str) -> None:
    moving = carrying("old")
    manifest = store(deleting=True) if gone == "deleted" else None
    plan = plan_reconcile(observed(manifest, deployments=[moving]))
    assert [body["metadata"]["name"] for body in plan.strip_deployments] == ["planner"]
