"""TaskStore status conditions, kept as the Kubernetes API conventions ask.

Condition types:

================== =====================================================================
Ready              the summary: True when the store is usable and every opted-in
                   Deployment is configured; ``kubectl wait --for=condition=Ready``.
RedisAvailable     redis backend only: the Redis the agents will use is there.
AgentsConfigured   every opted-in Deployment carries the current environment.
================== =====================================================================

Reasons (CamelCase, for machines; the message says the details for people):

=================== ================================= =========================================
reason              conditions (status)               meaning
=================== ================================= =========================================
Reconciled          Ready (True)                      everything the spec asks for is in place
InvalidSpec         Ready (False)                     the spec breaks a rule the API server
                                                      could not check; the message names the
                                                      field; nothing was created or changed
ReconcileError      Ready (False)                     an API call failed; the operator retries
Provisioning        RedisAvailable, Ready (False)     the managed Redis StatefulSet has no
                                                      ready replica yet
RedisReady          RedisAvailable (True)             the managed Redis has a ready replica
ExternalConfigured  RedisAvailable (True)             external Redis: the endpoint is set and
                                                      its password Secret exists (the operator
                                                      does not connect to it)
SecretNotFound      RedisAvailable, Ready (False)     the Secret or key named by
                                                      passwordSecretRef does not exist
NameInUse           RedisAvailable, Ready (False)     an object named like a managed Redis
                                                      object exists that the operator did
                                                      not create; it is left alone
PasswordKeyMissing  RedisAvailable, Ready (False)     the generated password Secret lost its
                                                      key ``password`` and the password cannot
                                                      be told from its other keys
Injected            AgentsConfigured (True)           every opted-in Deployment (possibly none)
                                                      carries the current environment
WaitingForRedis     AgentsConfigured (False)          agents keep their previous environment
                                                      until the Redis is available
AgentsConflict      AgentsConfigured, Ready (False)   some Deployments set an injected variable
                                                      by hand; they are listed in
                                                      status.agents.conflicts
=================== ================================= =========================================

When Ready is False because of a sub-condition, it takes that sub-condition's reason.
"""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Final

from taskstore_operator.api.models import Condition, ConditionStatus

# The API server's limit on a condition message.
MAX_MESSAGE_LENGTH: Final = 32768


class ConditionType(StrEnum):
    """The condition types a TaskStore reports."""

    READY = "Ready"
    REDIS_AVAILABLE = "RedisAvailable"
    AGENTS_CONFIGURED = "AgentsConfigured"


class Reason(StrEnum):
    """Condition reasons; the module docstring says what each one means."""

    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    RECONCILE_ERROR = "ReconcileError"
    PROVISIONING = "Provisioning"
    REDIS_READY = "RedisReady"
    EXTERNAL_CONFIGURED = "ExternalConfigured"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 (a name, not a password)
    NAME_IN_USE = "NameInUse"
    PASSWORD_KEY_MISSING = "PasswordKeyMissing"  # noqa: S105 (a name, not a password)
    INJECTED = "Injected"
    WAITING_FOR_REDIS = "WaitingForRedis"
    AGENTS_CONFLICT = "AgentsConflict"


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of that type, if present."""
    return next((condition for condition in conditions if condition.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """``conditions`` with one condition set, in place of any of that type.

    ``lastTransitionTime`` becomes ``now`` (to the second, as the API server stores it)
    only when the status flips or the condition is new; otherwise it is kept, so a
    changed reason or message is not mistaken for a transition. Setting a condition to
    what it already is returns an equal list, so callers can skip the status write.
    """
    previous = find_condition(conditions, type_)
    transition_time = (
        previous.last_transition_time
        if previous is not None and previous.status == status
        else now.replace(microsecond=0)
    )
    condition = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:MAX_MESSAGE_LENGTH],
        observed_generation=generation,
        last_transition_time=transition_time,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if existing.type == type_ else existing for existing in conditions]


def remove_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    """``conditions`` without the condition of that type (RedisAvailable off the redis backend)."""
    return [condition for condition in conditions if condition.type != type_]
