"""Parsing and validating a TaskStore before anything is created for it.

Three layers of checks, all reported as :class:`FieldError` naming the field:

1. the single-field constraints of the models (the same ones the CRD schema carries);
2. the models' cross-field ``cel_rules``, re-checked here because an object can predate
   the CRD that carries them;
3. what the schema cannot express: quantities compared with each other, and signs.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from taskstore_operator.api.models import PATTERN_MEANINGS, ApiModel, ManagedRedis, TaskStore
from taskstore_operator.api.quantity import parse_quantity
from taskstore_operator.api.rules import FieldError


class InvalidSpecError(ValueError):
    """A TaskStore the operator refuses; ``errors`` name every offending field and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(str(error) for error in self.errors))


def parse_taskstore(manifest: Mapping[str, Any]) -> TaskStore:
    """The TaskStore in ``manifest``, or InvalidSpecError listing every problem by field."""
    try:
        store = TaskStore.model_validate(manifest)
    except ValidationError as exc:
        # Only pydantic's messages: its str() would echo input values, such as env literals.
        errors = [FieldError(_dotted(error["loc"]), _message(error)) for error in exc.errors()]
        raise InvalidSpecError(errors) from None
    errors = validate_taskstore(store)
    if errors:
        raise InvalidSpecError(errors)
    return store


def validate_taskstore(store: TaskStore) -> list[FieldError]:
    """The cross-field and operator-only problems of a parsed TaskStore; empty when valid."""
    errors = list(_rule_errors(store, ""))
    if store.spec.redis is not None and store.spec.redis.managed is not None:
        errors.extend(_managed_redis_errors(store.spec.redis.managed, "spec.redis.managed"))
    return errors


def _dotted(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a field path: ``spec.custom.env[0].name``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".")


def _message(error: ErrorDetails) -> str:
    """Pydantic's message, with a regular expression replaced by what it means."""
    pattern = error.get("ctx", {}).get("pattern")
    if error["type"] == "string_pattern_mismatch" and pattern in PATTERN_MEANINGS:
        return f"must be {PATTERN_MEANINGS[pattern]}"
    return error["msg"]


def _rule_errors(model: ApiModel, path: str) -> Iterator[FieldError]:
    """Violations of ``model``'s cel_rules and those of every model nested in it."""
    for rule in model.cel_rules:
        if rule.holds is not None and not rule.holds(model):
            yield FieldError((path + (rule.field_path or "")).lstrip("."), rule.message)
    for name, field in type(model).model_fields.items():
        child_path = f"{path}.{field.alias or name}"
        value = getattr(model, name)
        if isinstance(value, ApiModel):
            yield from _rule_errors(value, child_path)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, ApiModel):
                    yield from _rule_errors(item, f"{child_path}[{index}]")


def _managed_redis_errors(managed: ManagedRedis, path: str) -> Iterator[FieldError]:
    """Quantities of the managed Redis: sizes positive, amounts not negative, requests <= limits."""
    if managed.storage is not None and parse_quantity(managed.storage.size) <= 0:
        yield FieldError(f"{path}.storage.size", "must be greater than zero")
    resources = managed.resources
    for kind, amounts in (("requests", resources.requests), ("limits", resources.limits)):
        for resource, amount in amounts.items():
            if parse_quantity(amount) < 0:
                yield FieldError(f"{path}.resources.{kind}.{resource}", "must not be negative")
    for resource, request in resources.requests.items():
        limit = resources.limits.get(resource)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            yield FieldError(
                f"{path}.resources.requests.{resource}",
                f"request {request} is greater than the limit {limit}",
            )
