"""Stable short hashes: of rendered configuration, and of a Secret value without revealing it."""

import hashlib
import hmac
import json
from typing import Any, Final

HASH_LENGTH: Final = 16


def stable_hash(value: Any) -> str:
    """A short hex hash of a JSON-compatible value, independent of dict key order."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def secret_fingerprint(key: str, data_value: str) -> str:
    """A keyed fingerprint of one Secret value (the base64 string from ``Secret.data``).

    Keyed, because a plain hash of a weak password could be brute-forced offline from the
    pod template annotations it ends up in; which key is chosen, and why, is
    :func:`taskstore_operator.plan.backend.password_fingerprint`'s decision.
    """
    return hmac.new(key.encode(), data_value.encode(), hashlib.sha256).hexdigest()
