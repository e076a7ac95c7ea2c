"""JSON encoding of results the way Kallithea's ``ext_json`` does it (facts §1.6)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        text = value.replace(tzinfo=None).isoformat(timespec="seconds")
        if value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class EncodedJSON(str):
    """A result already encoded as JSON text, which the envelope takes as it is.

    For answers too big to decode and encode again (``get_repos`` on PostgreSQL,
    whose database writes the objects). Its layout differs from ``dumps``' (no
    spaces, characters beyond ASCII as they are), which no JSON reader sees.
    """


def dumps(value: Any) -> str:
    """Encode to ASCII-only JSON (non-ASCII escaped as ``\\uXXXX``, as Python's default)."""
    return json.dumps(value, default=_default, ensure_ascii=True, separators=(", ", ": "))
