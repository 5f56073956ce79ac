"""The operator's decisions, as a pure function: one observation in, one plan out.

:func:`plan_reconcile` reads nothing and writes nothing. The runtime gathers the
:class:`~taskstore_operator.plan.observed.Observed` state once (the TaskStore parsed
once, its managed objects, the password Secret's fingerprint, never its value, and the
Deployments that opt in to it or carry its injection) and carries out the plan once.
Every write in the plan changes something, so a converged store plans none: managed
objects are compared by their ``tealagents.io/spec-hash`` annotation, Deployments by the
fields the operator owns, and status as a whole. The steps, in order: the backend
(:mod:`~taskstore_operator.plan.backend`), the agents
(:mod:`~taskstore_operator.plan.agents`), the status and Events
(:mod:`~taskstore_operator.plan.status`).
"""

from taskstore_operator.api.contract import FINALIZER
from taskstore_operator.api.validation import InvalidSpecError
from taskstore_operator.plan.agents import plan_agents, strip_injected, warn_opted_in
from taskstore_operator.plan.backend import plan_backend
from taskstore_operator.plan.observed import Observed, Plan, Settings
from taskstore_operator.plan.status import plan_invalid_status, plan_status


def plan_reconcile(observed: Observed, settings: Settings) -> Plan:
    """The writes that bring the cluster to what the TaskStore asks for (see module doc)."""
    manifest = observed.manifest
    if manifest is None:
        # No TaskStore: take back what was injected, and tell the Deployments that name it.
        plan = Plan()
        strip_injected(plan, observed)
        warn_opted_in(plan, observed)
        return plan
    # No finalizer is added: nothing needs the operator to undo it before a TaskStore may
    # go (owned objects and, under deletionPolicy Delete, the data claims go by garbage
    # collection; agents are stripped when the TaskStore is gone), so an uninstalled
    # operator leaves nothing stuck. The finalizer of earlier versions is released.
    legacy = FINALIZER in (manifest["metadata"].get("finalizers") or [])
    if manifest["metadata"].get("deletionTimestamp"):
        plan = Plan(remove_finalizer=legacy)
        strip_injected(plan, observed)
        return plan
    plan = Plan(remove_finalizer=legacy)
    if isinstance(observed.parsed, InvalidSpecError):
        # Refused: say which field and why, and leave the agents as they are.
        plan_invalid_status(plan, observed, manifest, observed.parsed)
        return plan
    store = observed.store
    if store is None:
        raise ValueError("Observed.parsed must be parse(Observed.manifest)")
    availability = plan_backend(plan, observed, store)
    agents = plan_agents(
        plan, observed, store, settings, availability.fingerprint, availability.ready
    )
    plan_status(plan, observed, manifest, store, availability, agents)
    return plan
