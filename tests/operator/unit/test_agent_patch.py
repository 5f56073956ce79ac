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


# -- the library (memory and redis) ------------------------------------------------------------

LIBRARY_IMAGE = "registry.example/teal-taskstore:1"


def test_the_library_comes_with_the_environment(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    deployment = make_deployment(init_containers=[{"name": "migrate", "image": "m"}])
    containers = select_containers(deployment).names
    patch = render_agent_deployment_patch(
        deployment, make_store(), containers, ENV, "h", LIBRARY_IMAGE
    )

    pod = patch["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "teal-taskstore-library", "emptyDir": {"sizeLimit": "64Mi"}}]
    [init] = pod["initContainers"]
    assert init["name"] == "teal-taskstore-library"
    assert init["image"] == LIBRARY_IMAGE
    assert init["command"] == [
        "python",
        "-m",
        "teal_taskstore",
        "copy-library",
        "/opt/teal-taskstore",
    ]
    assert init["volumeMounts"] == [
        {"name": "teal-taskstore-library", "mountPath": "/opt/teal-taskstore"}
    ]
    assert init["resources"]["requests"] and init["resources"]["limits"]
    for container in pod["containers"]:
        assert container["volumeMounts"] == [
            {"name": "teal-taskstore-library", "mountPath": "/opt/teal-taskstore", "readOnly": True}
        ]
        assert container["env"] == ENV
    # The pod's own init containers get nothing.
    assert [c["name"] for c in pod["initContainers"]] == ["teal-taskstore-library"]


def test_the_init_container_passes_the_restricted_pod_security_standard(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    patch = patch_with_library(make_deployment(), make_store())
    [init] = patch["spec"]["template"]["spec"]["initContainers"]
    context = init["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "add" not in context["capabilities"]
    assert not context.get("privileged")


def test_no_selected_container_gets_no_library(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    deployment = make_deployment(annotations={"tealagents.io/containers": "missing"})
    assert "spec" not in patch_with_library(deployment, make_store())["spec"]["template"]


def test_patches_do_not_share_library_objects(
    make_deployment: DeploymentFactory, make_store: StoreFactory
) -> None:
    first = patch_with_library(make_deployment(), make_store())
    second = patch_with_library(make_deployment(), make_store())
    first["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["x"] = 1
    assert "x" not in second["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]


def patch_with_library(deployment: Manifest, store: TaskStore) -> Manifest:
    containers = select_containers(deployment).names
    return render_agent_deployment_patch(deployment, store, containers, ENV, "h", LIBRARY_IMAGE)
