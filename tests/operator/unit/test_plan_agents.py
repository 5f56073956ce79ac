"""Deployment decisions (plan/agents.py): container selection, owned variables, conflicts."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from taskstore_operator.plan.agents import (
    ContainerSelection,
    EnvConflict,
    env_conflicts,
    library_conflicts,
    select_containers,
    wanted_library,
)
from taskstore_operator.plan.ownership import OwnedLibrary, owned_env_names, owned_library

Manifest = dict[str, Any]
DeploymentFactory = Callable[..., Manifest]
ENV = [
    {"name": "TA_PERSISTENCE_MODULE", "value": "m"},
    {"name": "TA_PERSISTENCE_CLASS", "value": "C"},
]


def managed_fields(manager: str, containers: dict[str, list[str]]) -> Manifest:
    """A managedFields entry owning the given env names, as the API server records it."""

    def key(name: str) -> str:
        return "k:" + json.dumps({"name": name}, separators=(",", ":"))

    return {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:spec": {
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            key(container): {
                                ".": {},
                                "f:name": {},
                                "f:env": {
                                    key(variable): {".": {}, "f:name": {}, "f:value": {}}
                                    for variable in variables
                                },
                            }
                            for container, variables in containers.items()
                        }
                    }
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("annotation", "selection"),
    [
        (None, ContainerSelection(("agent", "sidecar"), ())),
        ("agent", ContainerSelection(("agent",), ())),
        (" sidecar , agent ", ContainerSelection(("agent", "sidecar"), ())),
        ("agent,missing", ContainerSelection(("agent",), ("missing",))),
        ("missing", ContainerSelection((), ("missing",))),
        ("", ContainerSelection(("agent", "sidecar"), ())),
        (" , ", ContainerSelection(("agent", "sidecar"), ())),
    ],
)
def test_select_containers(
    make_deployment: DeploymentFactory, annotation: str | None, selection: ContainerSelection
) -> None:
    annotations = {} if annotation is None else {"tealagents.io/containers": annotation}
    assert select_containers(make_deployment(annotations=annotations)) == selection


def test_owned_env_names_reads_only_our_manager(make_deployment: DeploymentFactory) -> None:
    deployment = make_deployment(
        managed_fields=[
            managed_fields("taskstore-operator", {"agent": ["TA_REDIS_HOST", "TA_REDIS_PORT"]}),
            managed_fields("kubectl", {"agent": ["LOG_LEVEL"], "sidecar": ["X"]}),
            managed_fields("taskstore-operator", {"sidecar": ["TA_REDIS_HOST"]}),
        ]
    )
    assert owned_env_names(deployment) == {
        "agent": frozenset({"TA_REDIS_HOST", "TA_REDIS_PORT"}),
        "sidecar": frozenset({"TA_REDIS_HOST"}),
    }
    assert owned_env_names(deployment, "kubectl") == {
        "agent": frozenset({"LOG_LEVEL"}),
        "sidecar": frozenset({"X"}),
    }


def test_owned_env_names_tolerates_entries_without_containers(
    make_deployment: DeploymentFactory,
) -> None:
    deployment = make_deployment(
        managed_fields=[
            {"manager": "taskstore-operator", "operation": "Apply"},
            {
                "manager": "taskstore-operator",
                "operation": "Apply",
                "fieldsV1": {"f:spec": {"f:template": {"f:metadata": {"f:labels": {}}}}},
            },
        ]
    )
    assert owned_env_names(deployment) == {}
    assert owned_env_names(make_deployment()) == {}


def test_owned_env_names_ignores_non_key_entries(make_deployment: DeploymentFactory) -> None:
    entry = managed_fields("taskstore-operator", {"agent": ["A"]})
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    containers["."] = {}
    containers['k:{"name":"agent"}']["f:env"]["."] = {}
    assert owned_env_names(make_deployment(managed_fields=[entry])) == {"agent": frozenset({"A"})}


def hand_set(*names: str) -> list[Manifest]:
    return [{"name": name, "value": "by hand"} for name in names]


@pytest.mark.parametrize(
    ("agent_env_vars", "owned", "annotation", "conflicts"),
    [
        pytest.param([], {}, None, [], id="nothing-set"),
        pytest.param(hand_set("LOG_LEVEL"), {}, None, [], id="unrelated-names"),
        pytest.param(
            hand_set("TA_PERSISTENCE_CLASS", "LOG_LEVEL"),
            {},
            None,
            [EnvConflict("agent", "TA_PERSISTENCE_CLASS")],
            id="hand-set-injected-name",
        ),
        pytest.param(
            hand_set("TA_PERSISTENCE_CLASS"),
            {"agent": frozenset({"TA_PERSISTENCE_CLASS"})},
            None,
            [],
            id="ours-from-a-previous-apply",
        ),
        pytest.param(
            hand_set("TA_PERSISTENCE_CLASS"),
            {"sidecar": frozenset({"TA_PERSISTENCE_CLASS"})},
            None,
            [EnvConflict("agent", "TA_PERSISTENCE_CLASS")],
            id="owned-in-another-container",
        ),
        pytest.param(
            hand_set("TA_PERSISTENCE_CLASS"),
            {},
            "sidecar",
            [],
            id="container-not-selected",
        ),
    ],
)
def test_env_conflicts(
    make_deployment: DeploymentFactory,
    agent_env_vars: list[Manifest],
    owned: dict[str, frozenset[str]],
    annotation: str | None,
    conflicts: list[EnvConflict],
) -> None:
    deployment = make_deployment(
        containers=[
            {"name": "agent", "image": "a", "env": agent_env_vars},
            {"name": "sidecar", "image": "s"},
        ],
        annotations={} if annotation is None else {"tealagents.io/containers": annotation},
    )
    assert env_conflicts(deployment, ENV, owned) == conflicts


def test_conflicts_with_owned_fields_read_from_the_deployment(
    make_deployment: DeploymentFactory,
) -> None:
    deployment = make_deployment(
        containers=[
            {"name": "agent", "image": "a", "env": hand_set("TA_PERSISTENCE_MODULE")},
            {"name": "sidecar", "image": "s", "env": hand_set("TA_PERSISTENCE_MODULE")},
        ],
        managed_fields=[
            managed_fields("taskstore-operator", {"agent": ["TA_PERSISTENCE_MODULE"]}),
            managed_fields("kubectl", {"sidecar": ["TA_PERSISTENCE_MODULE"]}),
        ],
    )
    assert env_conflicts(deployment, ENV, owned_env_names(deployment)) == [
        EnvConflict("sidecar", "TA_PERSISTENCE_MODULE")
    ]


# -- the framework's override stores and the library's names ---------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "conflicts"),
    [
        pytest.param(
            "TA_ENV_STORE",
            '{"TA_PERSISTENCE_CLASS": "Mine", "OTHER": "x"}',
            [EnvConflict("agent", "TA_ENV_STORE.TA_PERSISTENCE_CLASS")],
            id="env-store-overrides-an-injected-name",
        ),
        pytest.param(
            "TA_ENV_GLOBAL_STORE",
            '{"TA_PERSISTENCE_MODULE": "/x.py"}',
            [EnvConflict("agent", "TA_ENV_GLOBAL_STORE.TA_PERSISTENCE_MODULE")],
            id="global-store-overrides-an-injected-name",
        ),
        pytest.param("TA_ENV_STORE", '{"OTHER": "x"}', [], id="other-names"),
        pytest.param("TA_ENV_STORE", "not json", [], id="not-json"),
        pytest.param("TA_ENV_STORE", '["TA_PERSISTENCE_CLASS"]', [], id="not-an-object"),
        pytest.param("UNRELATED", '{"TA_PERSISTENCE_CLASS": "x"}', [], id="another-variable"),
    ],
)
def test_framework_override_stores_that_set_an_injected_name_conflict(
    make_deployment: DeploymentFactory, variable: str, value: str, conflicts: list[EnvConflict]
) -> None:
    deployment = make_deployment(
        containers=[{"name": "agent", "image": "a", "env": [{"name": variable, "value": value}]}]
    )
    assert env_conflicts(deployment, ENV, {}) == conflicts


def library_fields(manager: str, containers: list[str]) -> Manifest:
    """A managedFields entry owning the library's volume, init container and mounts."""

    def key(**fields: str) -> str:
        return "k:" + json.dumps(fields, separators=(",", ":"))

    pod = {
        "f:volumes": {key(name="teal-taskstore-library"): {}},
        "f:initContainers": {key(name="teal-taskstore-library"): {}},
        "f:containers": {
            key(name=c): {"f:volumeMounts": {key(mountPath="/opt/teal-taskstore"): {}}}
            for c in containers
        },
    }
    return {
        "manager": manager,
        "operation": "Apply",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": pod}}},
    }


def test_owned_library_reads_our_volume_init_container_and_mounts(
    make_deployment: DeploymentFactory,
) -> None:
    deployment = make_deployment(
        managed_fields=[
            library_fields("taskstore-operator", ["agent"]),
            library_fields("kubectl", ["sidecar"]),
        ]
    )
    assert owned_library(deployment) == OwnedLibrary(
        frozenset({"teal-taskstore-library"}),
        frozenset({"teal-taskstore-library"}),
        {"agent": frozenset({"/opt/teal-taskstore"})},
    )
    assert owned_library(make_deployment()) == OwnedLibrary()
    assert wanted_library(("agent",), "image:1") == owned_library(deployment)
    assert wanted_library(("agent",), None) == OwnedLibrary()
    assert wanted_library((), "image:1") == OwnedLibrary()


def test_the_library_names_set_by_hand_are_conflicts(make_deployment: DeploymentFactory) -> None:
    deployment = make_deployment(
        containers=[
            {
                "name": "agent",
                "image": "a",
                "volumeMounts": [{"name": "mine", "mountPath": "/opt/teal-taskstore"}],
            }
        ],
        init_containers=[{"name": "teal-taskstore-library", "image": "mine"}],
    )
    deployment["spec"]["template"]["spec"]["volumes"] = [{"name": "teal-taskstore-library"}]
    wanted = wanted_library(("agent",), "image:1")

    assert library_conflicts(deployment, wanted, OwnedLibrary()) == [
        "volume teal-taskstore-library",
        "init container teal-taskstore-library",
        "agent: mount /opt/teal-taskstore",
    ]
    assert library_conflicts(deployment, wanted, wanted) == []
    assert library_conflicts(deployment, OwnedLibrary(), OwnedLibrary()) == []
