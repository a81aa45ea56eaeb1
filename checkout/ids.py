"""Deterministic ids derived from other ids, so a replay or a restart derives the same ones.

>>> derived_id("s-", "tok-1")
's-tok-1'
>>> len(derived_id("c-", "x" * 200)) <= 128
True
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_ID_LENGTH", "derived_id"]

MAX_ID_LENGTH = 128  # iot.payloads.Id


def derived_id(prefix: str, base: str) -> str:
    """``prefix + base``; if too long for a payload id, the base is shortened by a hash."""
    candidate = prefix + base
    if len(candidate) <= MAX_ID_LENGTH:
        return candidate
    digest = hashlib.sha256(base.encode()).hexdigest()[:24]
    keep = MAX_ID_LENGTH - len(prefix) - len(digest) - 1
    return f"{prefix}{base[:keep]}.{digest}"
