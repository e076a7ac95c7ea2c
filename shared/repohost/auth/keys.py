"""API keys: 40 lowercase hex characters, as Kallithea's, stored only as SHA-256.

A key carries 160 random bits, so a plain SHA-256 is a sound verifier (no
salt or slow hash needed) and lets the database find the key by its hash
with an index. The found row is compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, select

from repohost.db import tables as t
from repohost.db.records import USER_COLUMNS, Executor, UserRecord

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from repohost.db.models import User, UserApiKey

KEY_LENGTH = 40
_HEX = frozenset("0123456789abcdef")


def generate_key() -> str:
    return secrets.token_hex(KEY_LENGTH // 2)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def is_well_formed(key: object) -> bool:
    """Reject anything that cannot be a key before touching the database."""
    return isinstance(key, str) and len(key) == KEY_LENGTH and set(key) <= _HEX


def add_key(
    session: Session,
    user: User,
    description: str = "",
    expires: float = -1,
    key: str | None = None,
) -> tuple[UserApiKey, str]:
    """Create a key for ``user``; the plain key is returned once and never stored."""
    from repohost.db.models import UserApiKey

    plain = key or generate_key()
    if not is_well_formed(plain):
        raise ValueError("an API key is 40 lowercase hexadecimal characters")
    row = UserApiKey(
        user=user,
        key_hash=hash_key(plain),
        hint=plain[-4:],
        description=description,
        expires=expires,
    )
    session.add(row)
    session.flush()
    return row, plain


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Whom a key belongs to, and the IP whitelist entries that apply to them."""

    user: UserRecord
    #: The user's own active entries and the anonymous user's (``ipaccess.allows``).
    whitelist: tuple[str, ...]


def holder_of_key(db: Executor, key: object, now: float | None = None) -> KeyHolder | None:
    """The active, non-anonymous user owning the unexpired ``key``, or None.

    One query finds the key, its user and the whitelist entries: every call
    needs all three, and a round trip to the database is most of a warm call.
    """
    if not is_well_formed(key):
        return None
    assert isinstance(key, str)
    digest = hash_key(key)
    rows = db.execute(_holder_statement(), {"digest": digest}).all()
    if not rows:
        return None
    first = rows[0]
    if not hmac.compare_digest(first.key_hash, digest):
        return None
    now = time.time() if now is None else now
    if first.expires != -1 and first.expires < now:
        return None
    user = UserRecord(*first[: len(USER_COLUMNS)])
    if not user.active or user.username == DEFAULT_USER:
        return None
    return KeyHolder(user, tuple(row.ip_addr for row in rows if row.ip_addr is not None))


@cache
def _holder_statement() -> Select[Any]:
    """``holder_of_key``'s query (parameter ``:digest``): a row per whitelist entry, or one.

    Each row has the ``USER_COLUMNS``, the key's ``key_hash`` and ``expires``, and ``ip_addr``.
    """
    from repohost.auth.ipaccess import applies_to  # (ipaccess imports this module)

    keys, users, whitelist = t.user_api_keys.c, t.users.c, t.user_ip_map.c
    return (
        select(*USER_COLUMNS, keys.key_hash, keys.expires, whitelist.ip_addr)
        .join_from(t.user_api_keys, t.users, users.user_id == keys.user_id)
        .outerjoin(t.user_ip_map, applies_to(users.user_id))
        .where(keys.key_hash == bindparam("digest"))
        .order_by(whitelist.ip_id)
    )


DEFAULT_USER = "default"
"""The anonymous user: owner of the default permissions; it can never use a key."""
