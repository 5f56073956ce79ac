"""The agent sandbox's plan (taskstore_dev.sandbox_plan) from pod templates the operator renders."""

import sys
from pathlib import Path
from typing import Any

import pytest

from taskstore_dev.sandbox import run_init_steps
from taskstore_dev.sandbox_plan import (
    HostMap,
    ObjectsRead,
    SandboxError,
    SandboxPlan,
    canonical_host,
    describe,
    describe_env,
    expand,
    local_environment,
    plan_sandbox,
    references,
)
from taskstore_operator.render.agent_library import (
    render_library_init_container,
    render_library_mount,
    render_library_volume,
)
from teal_taskstore.framework import ENTRY_FILE_NAME, LIBRARY_MOUNT_PATH, LIBRARY_VOLUME

Manifest = dict[str, Any]
PASSWORD = "s3cret-value"
SERVICE = "tasks-redis.agents.svc"


def injected_template(env: list[Manifest], **spec: Any) -> Manifest:
    """A pod template as the operator leaves it for a managed Redis store."""
    return {
        "metadata": {"labels": {"app": "planner", "tealagents.io/taskstore": "tasks"}},
        "spec": {
            "volumes": [render_library_volume()],
            "initContainers": [render_library_init_container("registry.invalid/lib:1")],
            "containers": [
                {"name": "agent", "image": "agent:1", "env": env,
                 "volumeMounts": [render_library_mount()]},
            ],
            **spec,
        },
    }  # fmt: skip


MANAGED_ENV: list[Manifest] = [
    {"name": "TA_PERSISTENCE_MODULE", "value": f"{LIBRARY_MOUNT_PATH}/{ENTRY_FILE_NAME}"},
    {"name": "TA_PERSISTENCE_CLASS", "value": "RedisTaskPersistenceManager"},
    {"name": "TA_REDIS_HOST", "value": SERVICE},
    {"name": "TA_REDIS_PORT", "value": "6379"},
    {
        "name": "TA_REDIS_PWD",
        "valueFrom": {"secretKeyRef": {"name": "tasks-redis-auth", "key": "password"}},
    },
]
AUTH = ObjectsRead(secrets={"tasks-redis-auth": {"password": PASSWORD}})


def plan(
    template: Manifest,
    objects: ObjectsRead = AUTH,
    maps: tuple[str, ...] = (),
    container: str | None = None,
    root: Path = Path("/tmp/sandbox-root"),
) -> SandboxPlan:
    return plan_sandbox(
        template,
        namespace="agents",
        deployment="planner",
        container_name=container,
        objects=objects,
        maps=[HostMap.parse(text) for text in maps],
        root=root,
        python="/usr/bin/python3-local",
    )


def test_the_injected_library_is_copied_locally_and_the_module_path_points_there() -> None:
    result = plan(injected_template(MANAGED_ENV))

    volume = Path("/tmp/sandbox-root") / LIBRARY_VOLUME
    assert result.directories == [volume]
    assert [(s.container, s.argv) for s in result.init_steps] == [
        (
            LIBRARY_VOLUME,
            ("/usr/bin/python3-local", "-m", "teal_taskstore", "copy-library", str(volume)),
        )
    ]
    assert result.env["TA_PERSISTENCE_MODULE"] == f"{volume}/{ENTRY_FILE_NAME}"
    assert result.env["TA_REDIS_PWD"] == PASSWORD
    assert result.notes == []


def test_a_mapped_service_points_the_redis_settings_at_the_local_address() -> None:
    result = plan(injected_template(MANAGED_ENV), maps=(f"{SERVICE}:6379=127.0.0.1:6390",))

    assert (result.env["TA_REDIS_HOST"], result.env["TA_REDIS_PORT"]) == ("127.0.0.1", "6390")
    assert result.shown["TA_REDIS_HOST"] == f"= 127.0.0.1  (in the pod: {SERVICE}; --map)"


@pytest.mark.parametrize(
    "spelled", ["tasks-redis", "tasks-redis.agents", "TASKS-REDIS.agents.svc.cluster.local."]
)
def test_a_service_matches_however_it_is_spelled(spelled: str) -> None:
    result = plan(injected_template(MANAGED_ENV), maps=(f"{spelled}:6379=127.0.0.1:1",))

    assert result.env["TA_REDIS_HOST"] == "127.0.0.1"
    assert canonical_host(spelled, "agents") == SERVICE


def test_a_map_that_matches_nothing_is_reported_and_changes_nothing() -> None:
    result = plan(injected_template(MANAGED_ENV), maps=(f"{SERVICE}:6380=127.0.0.1:1",))

    assert result.env["TA_REDIS_HOST"] == SERVICE
    assert result.notes == [
        f"--map {SERVICE}:6380=127.0.0.1:1: TA_REDIS_HOST:TA_REDIS_PORT is {SERVICE}:6379"
    ]


@pytest.mark.parametrize("text", ["host:6379", "host=127.0.0.1:1", "h:0=l:1", "h:x=l:1"])
def test_a_malformed_map_names_the_flag_and_the_form(text: str) -> None:
    with pytest.raises(SandboxError, match=r"--map .*expected HOST:PORT=LOCALHOST:PORT"):
        HostMap.parse(text)


def test_a_secret_value_is_shown_as_its_reference_never_as_its_value() -> None:
    env = [*MANAGED_ENV, {"name": "REDIS_URL", "value": "redis://:$(TA_REDIS_PWD)@h:1"}]
    result = plan(injected_template(env))

    lines = "\n".join(describe(result, "planner", "agents") + describe_env(result))
    assert "env TA_REDIS_PWD <- secret tasks-redis-auth, key password" in lines
    assert "env REDIS_URL <- a value built from a Secret" in lines
    assert PASSWORD not in lines
    assert result.env["REDIS_URL"] == f"redis://:{PASSWORD}@h:1"


def test_a_missing_secret_names_the_variable_and_the_secret_but_an_optional_one_is_unset() -> None:
    with pytest.raises(SandboxError, match=r"^TA_REDIS_PWD: Secret tasks-redis-auth not found$"):
        plan(injected_template(MANAGED_ENV), objects=ObjectsRead())
    wrong_key = ObjectsRead(secrets={"tasks-redis-auth": {"other": "x"}})
    with pytest.raises(SandboxError, match="has no key 'password'"):
        plan(injected_template(MANAGED_ENV), objects=wrong_key)

    optional = [
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "x", "key": "k", "optional": True}}}
    ]
    assert "P" not in plan(injected_template(optional)).env


def test_config_maps_env_from_with_a_prefix_and_references_in_order() -> None:
    container_env: list[Manifest] = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}},
        {"name": "B", "value": "$(A)-$(CFG_c)-$(UNDEFINED)-$$(A)"},
    ]
    template = injected_template(container_env)
    template["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
        {"secretRef": {"name": "creds"}},
    ]
    objects = ObjectsRead(
        secrets={"creds": {"TOKEN": "t0k3n"}},
        config_maps={"settings": {"a": "1", "c": "3", "bad key": "x"}},
    )

    result = plan(template, objects=objects)

    assert references(template["spec"]["containers"][0]).config_maps == {"settings"}
    assert result.env["B"] == "1-3-$(UNDEFINED)-$(A)"
    assert result.env["TOKEN"] == "t0k3n"
    assert result.shown["TOKEN"] == "<- secret creds, key TOKEN"
    assert result.notes == ["envFrom settings: key 'bad key' is not a variable name"]
    assert expand("$$$(A)", {"A": "x"}) == "$x"


def test_field_refs_of_the_pod_and_what_is_not_supported() -> None:
    def field(path: str) -> Manifest:
        return {"fieldRef": {"fieldPath": path}}

    env = [
        {"name": "NS", "valueFrom": field("metadata.namespace")},
        {"name": "POD", "valueFrom": field("metadata.name")},
        {"name": "APP", "valueFrom": field("metadata.labels['app']")},
        {"name": "IP", "valueFrom": field("status.podIP")},
        {"name": "SA", "valueFrom": field("spec.serviceAccountName")},
        {"name": "UID", "valueFrom": field("metadata.uid")},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    result = plan(injected_template(env, serviceAccountName="agent-sa"))

    assert {k: result.env.get(k) for k in ("NS", "POD", "APP", "IP", "SA")} == {
        "NS": "agents", "POD": "planner-sandbox", "APP": "planner", "IP": "127.0.0.1",
        "SA": "agent-sa",
    }  # fmt: skip
    assert "UID" not in result.env
    assert "CPU" not in result.env
    assert result.notes == [
        "UID not set: fieldRef metadata.uid is not supported by the sandbox",
        "CPU not set: valueFrom.resourceFieldRef is not supported by the sandbox",
    ]


def test_other_init_containers_and_volumes_are_reported_not_run() -> None:
    template = injected_template([{"name": "PYTHONPATH", "value": f"/app:{LIBRARY_MOUNT_PATH}"}])
    template["spec"]["initContainers"].append(
        {"name": "migrate", "image": "tools:1", "command": ["python", "migrate.py"]}
    )
    template["spec"]["volumes"].append({"name": "config", "configMap": {"name": "c"}})
    template["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "config", "mountPath": "/etc/agent"}
    )

    result = plan(template)

    assert [step.container for step in result.init_steps] == [LIBRARY_VOLUME]
    assert result.env["PYTHONPATH"] == f"/app:/tmp/sandbox-root/{LIBRARY_VOLUME}"
    assert result.notes == [
        "volume config (configMap) at /etc/agent is not provided: "
        "the sandbox makes emptyDir volumes only",
        "init container migrate (tools:1) skipped: the sandbox runs only teal-taskstore's "
        "copy-library into an emptyDir",
    ]


def test_the_container_chosen_and_an_unknown_one_refused() -> None:
    template = injected_template(MANAGED_ENV)
    template["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})

    assert plan(template).container == "agent"
    template["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "sidecar"}
    assert plan(template).container == "sidecar"
    with pytest.raises(SandboxError, match=r"--container 'nope'.*\(agent, sidecar\)"):
        plan(template, container="nope")


def test_a_template_without_the_label_is_said_to_have_nothing_injected() -> None:
    template = injected_template([])
    del template["metadata"]["labels"]["tealagents.io/taskstore"]

    assert plan(template).notes == [
        "the pod template has no tealagents.io/taskstore label: no TaskStore injected"
    ]


def test_the_local_shells_ta_variables_never_reach_the_process() -> None:
    result = plan(injected_template(MANAGED_ENV))
    base = {"PATH": "/bin", "TA_REDIS_USERNAME": "mine", "TA_REDIS_HOST": "mine"}

    env = local_environment(result.env, base)

    assert env["PATH"] == "/bin"
    assert "TA_REDIS_USERNAME" not in env
    assert env["TA_REDIS_HOST"] == SERVICE


def test_the_init_step_leaves_the_entry_file_where_the_module_path_points(tmp_path: Path) -> None:
    result = plan_sandbox(
        injected_template(MANAGED_ENV), namespace="agents", deployment="planner",
        container_name=None, objects=AUTH, maps=[], root=tmp_path, python=sys.executable,
    )  # fmt: skip
    said: list[str] = []

    run_init_steps(result, said.append)

    assert Path(result.env["TA_PERSISTENCE_MODULE"]).is_file()
    assert (tmp_path / LIBRARY_VOLUME / "teal_taskstore" / "__init__.py").is_file()
    assert said[0].startswith("  copied ")
