"""Server-side-apply bodies for agent Deployments (render/agent_env.py)."""

from collections.abc import Callable
from typing import Any

from taskstore_operator.api.models import TaskStore
from taskstore_operator.plan.agents import ContainerSelection, select_containers
from taskstore_operator.render.agent_env import (
    agent_env,
    render_agent_deployment_patch,
    render_agent_removal_patch,
)

Manifest = dict[str, Any]
DeploymentFactory = Callable[..., Manifest]
StoreFactory = Callable[..., TaskStore]
ENV = [
    {"name": "TA_PERSISTENCE_MODULE", "value": "m"},
    {"name": "TA_PERSISTENCE_CLASS", "value": "C"},
]


def patch_of(deployment: Manifest, store: TaskStore, env: Any, digest: str) -> Manifest:
    """The apply body for the containers the Deployment selects."""
    containers = select_containers(deployment).names
    return render_agent_deployment_patch(deployment, store, containers, env, digest)


def test_the_patch_carries_label_hash_and_env_for_every_container(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    store = make_store()
    env = agent_env(store)
    patch = patch_of(make_deployment(), store, env, "0123456789abcdef")
    assert patch == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "planner", "namespace": "agents"},
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"tealagents.io/taskstore": "tasks"},
                    "annotations": {"tealagents.io/config-hash": "0123456789abcdef"},
                },
                "spec": {
                    "containers": [
                        {"name": "agent", "env": env},
                        {"name": "sidecar", "env": env},
                    ]
                },
            }
        },
    }


def test_the_patch_owns_nothing_else(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    patch = patch_of(make_deployment(), make_store(), ENV, "h")
    for container in patch["spec"]["template"]["spec"]["containers"]:
        assert set(container) == {"name", "env"}
    assert set(patch["spec"]) == {"template"}
    assert set(patch["metadata"]) == {"name", "namespace"}


def test_containers_do_not_share_env_objects(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    patch = patch_of(make_deployment(), make_store(), ENV, "h")
    first, second = patch["spec"]["template"]["spec"]["containers"]
    assert first["env"] == second["env"]
    assert first["env"] is not second["env"]
    assert first["env"][0] is not ENV[0]


def test_init_containers_never_get_the_environment(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    deployment = make_deployment(
        init_containers=[{"name": "migrate", "image": "m"}],
        annotations={"tealagents.io/containers": "migrate,agent"},
    )
    assert select_containers(deployment) == ContainerSelection(("agent",), ("migrate",))
    patch = patch_of(deployment, make_store(), ENV, "h")
    assert [c["name"] for c in patch["spec"]["template"]["spec"]["containers"]] == ["agent"]
    assert "initContainers" not in patch["spec"]["template"]["spec"]


def test_no_selected_container_leaves_the_containers_list_out(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    deployment = make_deployment(annotations={"tealagents.io/containers": "missing"})
    patch = patch_of(deployment, make_store(), ENV, "h")
    assert "spec" not in patch["spec"]["template"]


def test_the_removal_patch_names_the_object_and_owns_nothing(
    make_deployment: DeploymentFactory,
) -> None:
    assert render_agent_removal_patch(make_deployment()) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "planner", "namespace": "agents"},
    }
