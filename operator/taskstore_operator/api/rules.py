"""Cross-field rules, declared once for both the API server (CEL) and the operator (Python)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """A spec problem, named by the field's path in the object (``spec.redis.external.port``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class CelRule:
    """One cross-field rule of a model: a CEL expression and the same check in Python.

    The CRD generator emits ``rule``/``message``/``fieldPath``/``reason`` as an
    ``x-kubernetes-validations`` entry on the model's schema, so the API server refuses
    violations; the operator runs ``holds`` on the parsed model, so an object stored
    before the rule existed is still reported as ``InvalidSpec``. Transition rules (which
    compare with ``oldSelf``) have no ``holds``: only the server sees the old object.
    """

    rule: str
    message: str
    # Relative JSONPath of the field to blame (".redis"), or None for the object itself.
    field_path: str | None = None
    # False for a path into metadata: the CRD schema does not describe metadata's fields, so
    # the API server would refuse the fieldPath; the message names the field instead.
    server_field_path: bool = True
    # The API server's error type: FieldValueInvalid, FieldValueRequired, FieldValueForbidden.
    reason: str = "FieldValueInvalid"
    holds: Callable[[Any], bool] | None = None

    def to_schema(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry for this rule."""
        entry = {"rule": self.rule, "message": self.message, "reason": self.reason}
        if self.field_path is not None and self.server_field_path:
            entry["fieldPath"] = self.field_path
        return entry
