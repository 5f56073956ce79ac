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
    CONTAINERS_ANNOTATION,
    ENV_OVERRIDE_STORES,
    FIELD_MANAGER,
    KIND,
    TASKSTORE_LABEL,
)
from taskstore_operator.api.models import MAX_NAME_LENGTH, TaskStore
from taskstore_operator.plan.observed import Event, EventType, ObjectRef, Observed, Plan, Settings
from taskstore_operator.plan.ownership import (
    OwnedLibrary,
    holds,
    owned_env_names,
    owned_library,
)
from taskstore_operator.render.agent_env import (
    EnvVar,
    agent_env,
    config_hash,
    containers_of,
    injects_library,
    render_agent_deployment_patch,
    render_agent_removal_patch,
)
from teal_taskstore.framework import LIBRARY_MOUNT_PATH, LIBRARY_VOLUME

# The Warning Event on a Deployment whose container annotation names a container it lacks.
CONTAINERS_NOT_FOUND: Final = "ContainersNotFound"


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


class Problem(NamedTuple):
    """Why an opted-in Deployment is not configured, and whether to tell it with an Event."""

    deployment: ObjectRef
    message: str
    # The reason of a Warning Event on the Deployment when it becomes a problem; None: none.
    event_reason: str | None = None


@dataclass
class AgentsOutcome:
    """The opted-in Deployments after the plan: configured and not configured, by name."""

    names: list[str] = field(default_factory=list)
    # Not configured, by name: a hand-set variable, or a selection naming a missing container.
    problems: dict[str, Problem] = field(default_factory=dict)

    @property
    def conflicts(self) -> list[str]:
        """The names of the Deployments that are not configured, in plan order."""
        return list(self.problems)


# -- which Deployments concern a store -------------------------------------------------------


def label_of(deployment: Mapping[str, Any]) -> str | None:
    """The store the Deployment's own label names, if any."""
    name = (deployment["metadata"].get("labels") or {}).get(TASKSTORE_LABEL)
    return name if isinstance(name, str) and name else None


def opted_in(deployment: Mapping[str, Any], store_name: str) -> bool:
    """Whether the Deployment's own label names ``store_name``."""
    return label_of(deployment) == store_name


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


def wanted_library(containers: Sequence[str], library_image: str | None) -> OwnedLibrary:
    """What the operator owns of the library once the Deployment is configured."""
    if library_image is None or not containers:
        return OwnedLibrary()
    return OwnedLibrary(
        frozenset({LIBRARY_VOLUME}),
        frozenset({LIBRARY_VOLUME}),
        dict.fromkeys(containers, frozenset({LIBRARY_MOUNT_PATH})),
    )


def env_conflicts(
    deployment: Mapping[str, Any],
    env: Sequence[EnvVar],
    owned: Mapping[str, frozenset[str]],
) -> list[EnvConflict]:
    """Variables in the selected containers with names from ``env`` that we do not own.

    ``owned`` is :func:`owned_env_names` of the same Deployment. Any result makes the
    Deployment a conflict: it is reported on the TaskStore's status, not overwritten
    (an unforced apply would fail on a different value, and on an equal one would share
    ownership, so that removal would leave the variable in place). An entry of the
    framework's ``TA_ENV_STORE`` / ``TA_ENV_GLOBAL_STORE`` (JSON objects the framework
    copies over the environment at start) with an injected name is one too, reported as
    ``TA_ENV_STORE.<name>``.
    """
    injected = {variable["name"] for variable in env}
    selected = set(select_containers(deployment).names)
    conflicts = []
    for container in containers_of(deployment):
        if container["name"] not in selected:
            continue
        mine = owned.get(container["name"], frozenset())
        for variable in container.get("env") or []:
            name = variable["name"]
            if name in injected and name not in mine:
                conflicts.append(EnvConflict(container["name"], name))
            if name in ENV_OVERRIDE_STORES:
                conflicts.extend(
                    EnvConflict(container["name"], f"{name}.{overridden}")
                    for overridden in _json_object_keys(variable.get("value"))
                    if overridden in injected
                )
    return conflicts


def library_conflicts(
    deployment: Mapping[str, Any], wanted: OwnedLibrary, owned: OwnedLibrary
) -> list[str]:
    """The library's volume, init container or mounts, set by hand where we would put ours."""
    template_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    conflicts = [
        f"volume {volume['name']}"
        for volume in template_spec.get("volumes") or []
        if volume.get("name") in wanted.volumes - owned.volumes
    ]
    conflicts += [
        f"init container {container['name']}"
        for container in template_spec.get("initContainers") or []
        if container.get("name") in wanted.init_containers - owned.init_containers
    ]
    for container in containers_of(deployment):
        paths = wanted.mounts.get(container["name"], frozenset())
        mine = owned.mounts.get(container["name"], frozenset())
        conflicts += [
            f"{container['name']}: mount {mount['mountPath']}"
            for mount in container.get("volumeMounts") or []
            if mount.get("mountPath") in paths - mine
        ]
    return conflicts


def configured(
    deployment: Mapping[str, Any],
    body: Mapping[str, Any],
    owned: Mapping[str, frozenset[str]],
    library: OwnedLibrary,
    wanted_lib: OwnedLibrary,
) -> bool:
    """Whether the Deployment already carries exactly the apply ``body`` and nothing more.

    Every field of the body must hold its value in the live pod template (values the
    server adds are ignored; a value someone changed by hand is not), and the operator
    must own nothing the body no longer lists: the env names of ``owned``
    (:func:`owned_env_names`) and the library parts of ``library``
    (:func:`owned_library`, to match ``wanted_lib``).
    """
    live = deployment.get("spec", {}).get("template") or {}
    if not holds(live, body.get("spec", {}).get("template") or {}):
        return False
    if library != wanted_lib:
        return False
    desired = body.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    wanted = {c["name"]: frozenset(v["name"] for v in c["env"]) for c in desired}
    return {container: got for container, got in owned.items() if got} == wanted


# -- the plan --------------------------------------------------------------------------------


def plan_agents(
    plan: Plan,
    observed: Observed,
    store: TaskStore,
    settings: Settings,
    fingerprint: str | None,
    available: bool,
) -> AgentsOutcome:
    """Apply the environment where it differs, strip it where it no longer belongs.

    ``fingerprint`` is the password's (None without one); ``available`` says whether
    agents may be pointed at the store now: until then they keep what they had.
    """
    name = store.metadata.name
    env = agent_env(store)
    library_image = settings.library_image if injects_library(store) else None
    desired_hash = config_hash(env, fingerprint, library_image)
    outcome = AgentsOutcome()
    for deployment in sorted(observed.deployments, key=lambda d: str(d["metadata"]["name"])):
        deployment_name = str(deployment["metadata"]["name"])
        carries = carries_injection(deployment, name)
        if not opted_in(deployment, name):
            # Moving to another store that exists: that store replaces this one's
            # environment in one apply, once it can (until then the agent keeps this one).
            if carries and label_of(deployment) not in observed.other_stores:
                plan.strip_deployments.append(render_agent_removal_patch(deployment))
            continue
        # What the operator injected, for this store or the one the Deployment leaves.
        ours = injected_store(deployment) is not None
        owned = owned_env_names(deployment) if ours else {}
        library = owned_library(deployment) if ours else OwnedLibrary()
        selection = select_containers(deployment)
        containers = selection.names
        wanted = wanted_library(containers, library_image)
        problem = _problem(deployment, selection, env_conflicts(deployment, env, owned))
        hand_set = library_conflicts(deployment, wanted, library)
        if problem is None and hand_set:
            problem = Problem(deployment_ref(deployment), "hand-set " + ", ".join(hand_set))
        if problem is not None:
            # Left as it is: what it carries stays until the problem is solved.
            outcome.problems[deployment_name] = problem
            if carries:
                outcome.names.append(deployment_name)
            continue
        if not available:
            if carries:
                outcome.names.append(deployment_name)
            continue
        body = render_agent_deployment_patch(
            deployment, store, containers, env, desired_hash, library_image
        )
        if not configured(deployment, body, owned, library, wanted):
            plan.apply_deployments.append(body)
            if injected_store(deployment) is not None:
                # Every field of the body is ours (hand-set names were refused above), so
                # a value someone changed since is drift: the forced apply takes it back.
                plan.force_deployments.add(deployment_name)
        outcome.names.append(deployment_name)
    return outcome


def _problem(
    deployment: Mapping[str, Any], selection: ContainerSelection, conflicts: list[EnvConflict]
) -> Problem | None:
    """Why the Deployment cannot be configured as it is; None when it can."""
    ref = deployment_ref(deployment)
    # One unknown name is enough: a misspelled container would run without the store.
    if selection.unknown:
        present = ", ".join(c["name"] for c in containers_of(deployment)) or "none"
        message = (
            f"annotation {CONTAINERS_ANNOTATION} names containers the pod template lacks: "
            f"{', '.join(selection.unknown)} (containers: {present})"
        )
        return Problem(ref, message, CONTAINERS_NOT_FOUND)
    if conflicts:
        named = ", ".join(f"{c.container}/{c.variable}" for c in conflicts)
        return Problem(ref, f"hand-set variables: {named}")
    return None


def strip_injected(plan: Plan, observed: Observed) -> None:
    """Take back the injection of a store that is gone or going.

    From every Deployment that carries its injection, and from those that name it but
    still carry the store they were moving from (which left them for this one to take).
    """
    plan.strip_deployments.extend(
        render_agent_removal_patch(deployment)
        for deployment in observed.deployments
        if carries_injection(deployment, observed.name)
        or (opted_in(deployment, observed.name) and injected_store(deployment) is not None)
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


def _json_object_keys(value: Any) -> list[str]:
    """The keys of a JSON object literal; none for anything else (the framework ignores it)."""
    if not isinstance(value, str):
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        return []
    return [str(key) for key in parsed] if isinstance(parsed, dict) else []
