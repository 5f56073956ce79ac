"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``): the pattern and exact parsing."""

import re
from fractions import Fraction
from typing import Final

# The API server's own quantity grammar (k8s.io/apimachinery resource.Quantity), in the
# subset of regular expression syntax that Go's RE2, Rust's regex and Python's re share.
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_BINARY_SUFFIXES: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SUFFIXES: Final = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_NUMBER: Final = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(.*)$")


def parse_quantity(quantity: str | int) -> Fraction:
    """The exact value of a quantity in base units (bytes, cores); ValueError if malformed."""
    text = str(quantity)
    if not re.fullmatch(QUANTITY_PATTERN, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    match = _NUMBER.match(text)
    assert match is not None  # the full pattern above already matched a number
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY_SUFFIXES:
        return number * Fraction(1024) ** _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return number * Fraction(10) ** _DECIMAL_SUFFIXES[suffix]
    return number * Fraction(10) ** int(suffix[1:])
