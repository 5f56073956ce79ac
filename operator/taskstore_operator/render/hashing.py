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


def secret_fingerprint(secret_uid: str, data_value: str) -> str:
    """A fingerprint of one Secret value (the base64 string from ``Secret.data``).

    Keyed with the Secret's uid: the fingerprint ends up in pod template annotations,
    which more people can read than the Secret, and a plain hash of a weak password could
    be brute-forced offline. The uid is normally seen only by those who can read the
    Secret, and a recreated Secret gets a new one, which rolls pods as a new password must.
    """
    return hmac.new(secret_uid.encode(), data_value.encode(), hashlib.sha256).hexdigest()
