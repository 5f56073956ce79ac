"""Every decision about agent Deployments: which opt in, which carry an injection, which conflict.

A Deployment opts in to a store with its own ``tealagents.io/taskstore`` label; it
carries a store's injection when its pod template has that label and the operator's
field manager owns fields on it. The watch uses :func:`stores_named_by` and
:func:`stray_injection`, the runtime :func:`opt_in_selector`, and the planner
:func:`plan_agents`, which lists the apply bodies (rendered by
:mod:`taskstore_operator.render.agent_env`) of the Deployments that differ from what
the operator would set.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from taskstore_operator.api.contract import (
    API_VERSION,
    CONFIG_HASH_ANNOTATION,
    CONTAINERS_ANNOTATION,
    FIELD_MANAGER,
    KIND,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import MAX_NAME_LENGTH, TaskStore
from taskstore_operator.plan.observed import Event, EventType, ObjectRef, Observed, Plan
from taskstore_operator.render.agent_env import (
    EnvVar,
    agent_env,
    config_hash,
    containers_of,
    render_agent_deployment_patch,
    render_agent_removal_patch,
)

_CONTAINERS_FIELDS: Final = ("f:spec", "f:template", "f:spec", "f:containers")


class ContainerSelection(NamedTuple):
    """The containers of a Deployment that get the environment."""

    # In pod template order.
    names: tuple[str, ...]
    # Named by the tealagents.io/containers annotation but not in the pod template.
    unknown: tuple[str, ...]


class EnvConflict(NamedTuple):
    """A variable with an injected name that a container sets by hand."""

    container: str
    variable: str


@dataclass
class AgentsOutcome:
    """The opted-in Deployments after the plan: configured and conflicting, by name."""

    names: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


# -- which Deployments concern a store -------------------------------------------------------


def opted_in(deployment: Mapping[str, Any], store_name: str) -> bool:
    """Whether the Deployment's own label names ``store_name``."""
    return (deployment["metadata"].get("labels") or {}).get(TASKSTORE_LABEL) == store_name


def opt_in_selector(store_name: str) -> str | None:
    """The label selector of the Deployments that opt in to ``store_name``.

    None when no Deployment can name the store: a label value holds at most 63 characters.
    """
    if len(store_name) > MAX_NAME_LENGTH:
        return None
    return f"{TASKSTORE_LABEL}={store_name}"


def injected_store(deployment: Mapping[str, Any]) -> str | None:
    """The store whose environment the operator injected into the Deployment, if any.

    That is the pod template's label, provided the operator's field manager has fields
    on the Deployment (a copied template label alone is not an injection).
    """
    metadata = deployment.get("metadata") or {}
    managers = {entry.get("manager") for entry in metadata.get("managedFields") or []}
    if FIELD_MANAGER not in managers:
        return None
    template = (deployment.get("spec") or {}).get("template") or {}
    name = ((template.get("metadata") or {}).get("labels") or {}).get(TASKSTORE_LABEL)
    return name if isinstance(name, str) and name else None


def carries_injection(deployment: Mapping[str, Any], store_name: str) -> bool:
    """Whether the operator injected ``store_name``'s environment into the Deployment."""
    return injected_store(deployment) == store_name


def stray_injection(deployment: Mapping[str, Any]) -> str | None:
    """The store whose injection the Deployment carries though its own label no longer names it.

    Such a Deployment is not found by the label selector of :func:`opt_in_selector`, yet
    the store's reconcile must strip it.
    """
    injected = injected_store(deployment)
    return None if injected is None or opted_in(deployment, injected) else injected


def stores_named_by(obj: Mapping[str, Any]) -> set[str]:
    """The TaskStores of the object's namespace that an event on the object concerns.

    A Deployment concerns the store its label names and the store whose environment it
    carries (its pod template's label), which differ after the label changed; a managed
    object concerns its owner.
    """
    metadata = obj.get("metadata") or {}
    template = (obj.get("spec") or {}).get("template") or {}
    names = {
        labels[TASKSTORE_LABEL]
        for labels in (metadata.get("labels"), (template.get("metadata") or {}).get("labels"))
        if labels and labels.get(TASKSTORE_LABEL)
    }
    names.update(
        owner["name"]
        for owner in metadata.get("ownerReferences") or []
        if owner.get("kind") == KIND and owner.get("apiVersion") == API_VERSION
    )
    return names


def deployment_ref(deployment: Mapping[str, Any]) -> ObjectRef:
    """A reference to a Deployment."""
    metadata = deployment["metadata"]
    return ObjectRef(
        "apps/v1", "Deployment", metadata["namespace"], metadata["name"], metadata.get("uid", "")
    )


# -- what a Deployment holds -----------------------------------------------------------------


def select_containers(deployment: Mapping[str, Any]) -> ContainerSelection:
    """Every container of the pod template, or those the ``tealagents.io/containers`` names.

    Init containers never get the environment. A blank annotation counts as absent.
    """
    present = [container["name"] for container in containers_of(deployment)]
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    wanted = [name.strip() for name in annotations.get(CONTAINERS_ANNOTATION, "").split(",")]
    wanted = [name for name in wanted if name]
    if not wanted:
        return ContainerSelection(tuple(present), ())
    return ContainerSelection(
        names=tuple(name for name in present if name in wanted),
        unknown=tuple(name for name in wanted if name not in present),
    )


def owned_env_names(
    deployment: Mapping[str, Any], field_manager: str = FIELD_MANAGER
) -> dict[str, frozenset[str]]:
    """Per container, the env variable names ``field_manager`` owns, read from managedFields."""
    owned: dict[str, set[str]] = {}
    for entry in deployment.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != field_manager:
            continue
        containers: Mapping[str, Any] = entry.get("fieldsV1") or {}
        for step in _CONTAINERS_FIELDS:
            containers = containers.get(step) or {}
        for container_key, container_fields in containers.items():
            container = _list_key_name(container_key)
            if container is None:
                continue
            names = owned.setdefault(container, set())
            for env_key in (container_fields or {}).get("f:env") or {}:
                variable = _list_key_name(env_key)
                if variable is not None:
                    names.add(variable)
    return {container: frozenset(names) for container, names in owned.items()}


def env_conflicts(
    deployment: Mapping[str, Any],
    env: Sequence[EnvVar],
    owned: Mapping[str, frozenset[str]],
) -> list[EnvConflict]:
    """Variables in the selected containers with names from ``env`` that we do not own.

    ``owned`` is :func:`owned_env_names` of the same Deployment. Any result makes the
    Deployment a conflict: it is reported on the TaskStore's status, not overwritten
    (an unforced apply would fail on a different value, and on an equal one would share
    ownership, so that removal would leave the variable in place).
    """
    injected = {variable["name"] for variable in env}
    selected = set(select_containers(deployment).names)
    return [
        EnvConflict(container["name"], variable["name"])
        for container in containers_of(deployment)
        if container["name"] in selected
        for variable in container.get("env") or []
        if variable["name"] in injected
        and variable["name"] not in owned.get(container["name"], frozenset())
    ]


def configured(
    deployment: Mapping[str, Any],
    store_name: str,
    env: Sequence[EnvVar],
    desired_hash: str,
    owned: Mapping[str, frozenset[str]],
) -> bool:
    """Whether the Deployment already carries exactly what the operator would apply.

    The config hash covers the env values, and a value someone else changed would move
    its ownership away from the operator, so the label, the hash and the owned names
    decide without comparing values (which the server may have defaulted).
    """
    template = deployment.get("spec", {}).get("template", {}).get("metadata") or {}
    if (template.get("labels") or {}).get(TASKSTORE_LABEL) != store_name:
        return False
    if (template.get("annotations") or {}).get(CONFIG_HASH_ANNOTATION) != desired_hash:
        return False
    names = frozenset(variable["name"] for variable in env)
    wanted = dict.fromkeys(select_containers(deployment).names, names)
    return {container: got for container, got in owned.items() if got} == wanted


# -- the plan --------------------------------------------------------------------------------


def plan_agents(
    plan: Plan,
    observed: Observed,
    store: TaskStore,
    fingerprint: str | None,
    available: bool,
) -> AgentsOutcome:
    """Apply the environment where it differs, strip it where it no longer belongs.

    ``fingerprint`` is the password's (None without one); ``available`` says whether
    agents may be pointed at the store now: until then they keep what they had.
    """
    name = store.metadata.name
    env = agent_env(store)
    desired_hash = config_hash(env, fingerprint)
    outcome = AgentsOutcome()
    for deployment in sorted(observed.deployments, key=lambda d: str(d["metadata"]["name"])):
        deployment_name = str(deployment["metadata"]["name"])
        carries = carries_injection(deployment, name)
        if not opted_in(deployment, name):
            if carries:
                plan.strip_deployments.append(render_agent_removal_patch(deployment))
            continue
        owned = owned_env_names(deployment) if carries else {}
        if env_conflicts(deployment, env, owned):
            outcome.conflicts.append(deployment_name)
            if carries:
                outcome.names.append(deployment_name)
            continue
        if not available:
            if carries:
                outcome.names.append(deployment_name)
            continue
        if not configured(deployment, name, env, desired_hash, owned):
            containers = select_containers(deployment).names
            plan.apply_deployments.append(
                render_agent_deployment_patch(deployment, store, containers, env, desired_hash)
            )
        outcome.names.append(deployment_name)
    return outcome


def strip_injected(plan: Plan, observed: Observed) -> None:
    """Take back the store's injection from every Deployment that carries it."""
    plan.strip_deployments.extend(
        render_agent_removal_patch(deployment)
        for deployment in observed.deployments
        if carries_injection(deployment, observed.name)
    )


def warn_opted_in(plan: Plan, observed: Observed) -> None:
    """Tell the Deployments that name a store that does not exist (and carry nothing of it)."""
    plan.events.extend(
        Event(
            deployment_ref(deployment),
            EventType.WARNING,
            "TaskStoreNotFound",
            f"no TaskStore {observed.name} in namespace {observed.namespace}",
        )
        for deployment in observed.deployments
        if opted_in(deployment, observed.name) and not carries_injection(deployment, observed.name)
    )


def _list_key_name(key: str) -> str | None:
    """The ``name`` of a managedFields list-map key such as ``k:{"name":"app"}``."""
    if not key.startswith("k:"):
        return None
    name = json.loads(key[2:]).get("name")
    return name if isinstance(name, str) else None
