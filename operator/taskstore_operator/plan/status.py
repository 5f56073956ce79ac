"""The TaskStore's status and the Events of its transitions.

Status is written whole, and only when it differs from what was read; conditions keep
``lastTransitionTime`` unless their status flips (see
:mod:`taskstore_operator.render.conditions`). An Event goes with each change of
``Ready``'s status or reason.
"""

import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from taskstore_operator.api.models import (
    AgentsStatus,
    ConditionStatus,
    CustomBackend,
    TaskStore,
    TaskStoreStatus,
)
from taskstore_operator.api.validation import InvalidSpecError
from taskstore_operator.plan.agents import AgentsOutcome
from taskstore_operator.plan.backend import Availability
from taskstore_operator.plan.observed import Event, EventType, Manifest, Observed, Plan, store_ref
from taskstore_operator.render.agent_env import endpoint
from taskstore_operator.render.conditions import (
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)
from taskstore_operator.render.redis import redis_secret_name

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
# A dotted spec.custom.module is kept for agents using our factory; the framework cannot.
DOTTED_MODULE_NOTE: Final = (
    "spec.custom.module is a dotted module path: only agents that build their store with "
    "teal_taskstore's PersistenceFactory can load it; the Teal Agents framework loads only "
    "the path of a .py file"
)


# Modules an agent process imports: a custom file with one of these stems replaces it there
# (the framework registers the file as sys.modules[stem]). The standard library and the
# packages a Teal Agents image has (docs/operator-api.md, "A custom class").
AGENT_MODULES: Final = frozenset(sys.stdlib_module_names) | {
    "redis", "pydantic", "sk_agents", "ska_utils", "semantic_kernel", "teal_taskstore",
}  # fmt: skip


def custom_module_notes(custom: CustomBackend) -> list[str]:
    """What the status says of a custom module the framework cannot use as it is."""
    if custom.file_stem is None:
        return [DOTTED_MODULE_NOTE]
    if custom.file_stem in AGENT_MODULES:
        return [
            f"spec.custom.module has the file stem {custom.file_stem!r}: the Teal Agents "
            f"framework loads the file as the module {custom.file_stem!r}, which would replace "
            "the module of that name in the agents; rename the file"
        ]
    return []


def plan_status(
    plan: Plan,
    observed: Observed,
    manifest: Mapping[str, Any],
    store: TaskStore,
    availability: Availability,
    agents: AgentsOutcome,
) -> None:
    """The status the plan leads to, and the Events of its transitions."""
    generation = store.metadata.generation
    old = _read_status(manifest)
    conditions = list(old.conditions)
    if availability.status is None:
        conditions = remove_condition(conditions, ConditionType.REDIS_AVAILABLE)
    else:
        conditions = set_condition(
            conditions,
            ConditionType.REDIS_AVAILABLE,
            availability.status,
            availability.reason,
            availability.message,
            generation,
            observed.now,
        )
    if agents.problems:
        agents_status, agents_reason = FALSE, Reason.AGENTS_CONFLICT
        agents_message = "Deployments not configured: " + "; ".join(
            f"{name} ({problem.message})" for name, problem in agents.problems.items()
        )
    elif not availability.ready:
        agents_status, agents_reason = FALSE, Reason.WAITING_FOR_REDIS
        agents_message = "agents keep their environment until the Redis is available"
    else:
        agents_status, agents_reason = TRUE, Reason.INJECTED
        agents_message = f"{len(agents.names)} Deployment(s) configured"
        if store.spec.custom is not None:
            agents_message = "; ".join([agents_message, *custom_module_notes(store.spec.custom)])
    conditions = set_condition(
        conditions,
        ConditionType.AGENTS_CONFIGURED,
        agents_status,
        agents_reason,
        agents_message,
        generation,
        observed.now,
    )
    if not availability.ready:
        ready = (FALSE, availability.reason, availability.message)
    elif agents.conflicts:
        ready = (FALSE, Reason.AGENTS_CONFLICT, agents_message)
    else:
        ready = (TRUE, Reason.RECONCILED, "")
    conditions = set_condition(conditions, ConditionType.READY, *ready, generation, observed.now)
    new = TaskStoreStatus(
        observed_generation=generation,
        endpoint=endpoint(store),
        secret_name=redis_secret_name(store) if store.managed_redis is not None else None,
        agents=AgentsStatus(
            injected=len(agents.names), names=agents.names, conflicts=agents.conflicts
        ),
        conditions=conditions,
    )
    _finish_status(plan, observed, manifest, old, new)
    # Told once, when the Deployment becomes a problem (the status remembers it).
    plan.events.extend(
        Event(problem.deployment, EventType.WARNING, problem.event_reason, problem.message)
        for name, problem in agents.problems.items()
        if problem.event_reason is not None and name not in old.agents.conflicts
    )


def plan_invalid_status(
    plan: Plan, observed: Observed, manifest: Mapping[str, Any], error: InvalidSpecError
) -> None:
    """A spec the operator refuses: say which field and why (nothing else is planned)."""
    generation = int(manifest["metadata"].get("generation") or 0)
    old = _read_status(manifest)
    message = f"invalid spec: {error}"
    conditions = set_condition(
        old.conditions,
        ConditionType.READY,
        FALSE,
        Reason.INVALID_SPEC,
        message,
        generation,
        observed.now,
    )
    new = old.model_copy(update={"observed_generation": generation, "conditions": conditions})
    _finish_status(plan, observed, manifest, old, new)


def plan_error_status(manifest: Mapping[str, Any], message: str, now: datetime) -> Manifest | None:
    """The status after a failed API call (Ready=False, ReconcileError); None if already so."""
    generation = int(manifest["metadata"].get("generation") or 0)
    old = _read_status(manifest)
    conditions = set_condition(
        old.conditions, ConditionType.READY, FALSE, Reason.RECONCILE_ERROR, message, generation, now
    )
    new = old.model_copy(update={"conditions": conditions})
    if new == old:
        return None
    return new.model_dump(mode="json", by_alias=True, exclude_none=True)


def _read_status(manifest: Mapping[str, Any]) -> TaskStoreStatus:
    """The status as read; an unreadable one is rewritten from scratch, never a failure."""
    try:
        return TaskStoreStatus.model_validate(manifest.get("status") or {})
    except ValidationError:
        return TaskStoreStatus()


def _finish_status(
    plan: Plan,
    observed: Observed,
    manifest: Mapping[str, Any],
    old: TaskStoreStatus,
    new: TaskStoreStatus,
) -> None:
    """Write the status only when it changed; emit an Event when Ready changes."""
    if new != old or not manifest.get("status"):
        plan.status = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    if _transitioned(old, new):
        ready = find_condition(new.conditions, ConditionType.READY)
        assert ready is not None  # every path sets Ready
        metadata = manifest["metadata"]
        plan.events.append(
            Event(
                store_ref(observed.namespace, observed.name, metadata.get("uid", "")),
                EventType.NORMAL if ready.status == TRUE else EventType.WARNING,
                ready.reason,
                ready.message or "the TaskStore is ready",
            )
        )


def _transitioned(old: TaskStoreStatus, new: TaskStoreStatus) -> bool:
    """Whether Ready's status or reason changed."""
    before = find_condition(old.conditions, ConditionType.READY)
    after = find_condition(new.conditions, ConditionType.READY)
    if after is None:
        return False
    return before is None or (before.status, before.reason) != (after.status, after.reason)
