"""``AppConfig``: the process environment, read once, as the persistence factory sees it."""

import os
from collections.abc import Mapping

from teal_taskstore.errors import ConfigurationError

TA_PERSISTENCE_MODULE = "TA_PERSISTENCE_MODULE"
TA_PERSISTENCE_CLASS = "TA_PERSISTENCE_CLASS"

_TRUE_WORDS = frozenset({"true", "1", "yes"})
_FALSE_WORDS = frozenset({"false", "0", "no"})


class AppConfig:
    """A snapshot of the environment variables the library reads.

    ``AppConfig()`` copies ``os.environ`` when it is built; pass ``environ`` to use another
    mapping (tests, or configuration assembled by the host application).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        source = os.environ if environ is None else environ
        self._values = {name: value for name, value in source.items() if name.startswith("TA_")}

    def get(self, name: str, default: str | None = None) -> str | None:
        """The variable's value, or ``default`` when it is unset or empty."""
        value = self._values.get(name)
        return value if value else default

    def __repr__(self) -> str:
        # Values are left out on purpose: some of them are passwords.
        return f"AppConfig(variables={sorted(self._values)})"


def parse_bool(name: str, value: str) -> bool:
    """Parse ``true/false/1/0/yes/no`` (any case); anything else names the variable."""
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be one of true/false/1/0/yes/no, got {value!r}")


def parse_int(name: str, value: str, *, minimum: int, maximum: int | None = None) -> int:
    """Parse an integer within bounds; a bad value names the variable and the range expected."""
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigurationError(f"{name} must be {expected}, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        raise ConfigurationError(f"{name} must be {expected}, got {value!r}")
    return number


def parse_seconds(name: str, value: str) -> float:
    """Parse a positive duration in seconds (``2`` or ``0.5``)."""
    try:
        seconds = float(value.strip())
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds > 0, got {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigurationError(f"{name} must be a number of seconds > 0, got {value!r}")
    return seconds
