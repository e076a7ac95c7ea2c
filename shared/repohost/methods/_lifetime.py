"""Lifetimes in minutes, as ``create_api_key`` and ``create_gist`` take them."""

from __future__ import annotations

import time

#: A longer lifetime (in minutes, about 1,900 years) counts as this long: beyond it the
#: expiry time would not even be a number (``10**400`` minutes overflowed a float).
MAX_LIFETIME = 10**9


def expires_at(lifetime: int) -> float:
    """When something made now with ``lifetime`` minutes expires; -1 (never) for -1."""
    return -1.0 if lifetime == -1 else time.time() + min(lifetime, MAX_LIFETIME) * 60
