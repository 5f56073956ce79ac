"""Conditions: lastTransitionTime moves only when the status flips."""

from datetime import UTC, datetime, timedelta

import pytest

from taskstore_operator.api.models import Condition, ConditionStatus
from taskstore_operator.render import conditions as conditions_module
from taskstore_operator.render.conditions import (
    MAX_MESSAGE_LENGTH,
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5, microseconds=123)
READY = ConditionType.READY
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE


def ready(status: ConditionStatus, reason: Reason, at: datetime, message: str = "") -> Condition:
    return Condition(
        type=READY,
        status=status,
        reason=reason,
        message=message,
        observed_generation=1,
        last_transition_time=at,
    )


def test_a_new_condition_is_appended_with_now_to_the_second() -> None:
    existing = [ready(TRUE, Reason.RECONCILED, T0)]
    conditions = set_condition(
        existing, ConditionType.AGENTS_CONFIGURED, TRUE, Reason.INJECTED, "", 2, T1
    )
    assert [c.type for c in conditions] == ["Ready", "AgentsConfigured"]
    assert conditions[1].last_transition_time == T1.replace(microsecond=0)
    assert conditions[1].observed_generation == 2
    assert existing == [ready(TRUE, Reason.RECONCILED, T0)]


def test_same_status_keeps_the_transition_time_but_updates_the_rest() -> None:
    conditions = set_condition(
        [ready(FALSE, Reason.PROVISIONING, T0)],
        READY,
        FALSE,
        Reason.SECRET_NOT_FOUND,
        "Secret redis-auth not found",
        2,
        T1,
    )
    (condition,) = conditions
    assert condition.last_transition_time == T0
    assert condition.reason == "SecretNotFound"
    assert condition.message == "Secret redis-auth not found"
    assert condition.observed_generation == 2


@pytest.mark.parametrize(
    ("before", "after"),
    [(FALSE, TRUE), (TRUE, FALSE), (ConditionStatus.UNKNOWN, TRUE)],
)
def test_a_flip_moves_the_transition_time(before: ConditionStatus, after: ConditionStatus) -> None:
    (condition,) = set_condition(
        [ready(before, Reason.PROVISIONING, T0)], READY, after, Reason.RECONCILED, "", 1, T1
    )
    assert condition.status == after
    assert condition.last_transition_time == T1.replace(microsecond=0)


def test_setting_what_is_already_there_changes_nothing() -> None:
    existing = [
        ready(TRUE, Reason.RECONCILED, T0),
        Condition(
            type=ConditionType.AGENTS_CONFIGURED,
            status=TRUE,
            reason=Reason.INJECTED,
            observed_generation=1,
            last_transition_time=T0,
        ),
    ]
    assert set_condition(existing, READY, TRUE, Reason.RECONCILED, "", 1, T1) == existing


def test_order_is_kept_when_replacing() -> None:
    existing = [
        ready(TRUE, Reason.RECONCILED, T0),
        Condition(
            type=ConditionType.REDIS_AVAILABLE,
            status=TRUE,
            reason=Reason.REDIS_READY,
            last_transition_time=T0,
        ),
    ]
    conditions = set_condition(existing, READY, FALSE, Reason.PROVISIONING, "", 1, T1)
    assert [c.type for c in conditions] == ["Ready", "RedisAvailable"]


def test_long_messages_are_cut_to_the_api_limit() -> None:
    (condition,) = set_condition([], READY, FALSE, Reason.INVALID_SPEC, "x" * 40000, 1, T0)
    assert len(condition.message) == MAX_MESSAGE_LENGTH


def test_find_and_remove() -> None:
    existing = [ready(TRUE, Reason.RECONCILED, T0)]
    assert find_condition(existing, READY) == existing[0]
    assert find_condition(existing, ConditionType.REDIS_AVAILABLE) is None
    assert remove_condition(existing, READY) == []
    assert remove_condition(existing, ConditionType.REDIS_AVAILABLE) == existing


@pytest.mark.parametrize("reason", list(Reason))
def test_reasons_are_camel_case_and_documented(reason: Reason) -> None:
    assert reason.value[0].isupper()
    assert reason.value.isalnum()
    assert conditions_module.__doc__ is not None
    assert f"\n{reason.value} " in conditions_module.__doc__


def test_condition_serialises_for_the_status_subresource() -> None:
    (condition,) = set_condition([], READY, TRUE, Reason.RECONCILED, "", 3, T1)
    assert condition.model_dump(mode="json") == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "",
        "observedGeneration": 3,
        "lastTransitionTime": "2025-01-02T03:09:05Z",
    }
