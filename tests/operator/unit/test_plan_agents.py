"""Deployment decisions (plan/agents.py): container selection, owned variables, conflicts."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from taskstore_operator.plan.agents import (
    ContainerSelection,
    EnvConflict,
    env_conflicts,
    owned_env_names,
    select_containers,
)

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
