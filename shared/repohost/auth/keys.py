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

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from repohost.db.models import User, UserApiKey, UserIpMap

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

    user: User
    #: The user's own active entries and the anonymous user's (``ipaccess.allows``).
    whitelist: tuple[str, ...]


def holder_of_key(session: Session, key: object, now: float | None = None) -> KeyHolder | None:
    """The active, non-anonymous user owning the unexpired ``key``, or None.

    One query finds the key, its user and the whitelist entries: every call
    needs all three, and a round trip to the database is most of a warm call.
    """
    if not is_well_formed(key):
        return None
    assert isinstance(key, str)
    digest = hash_key(key)
    rows = session.execute(_holder_statement(), {"digest": digest}).all()
    if not rows:
        return None
    api_key, user = rows[0][0], rows[0][1]
    if not hmac.compare_digest(api_key.key_hash, digest):
        return None
    now = time.time() if now is None else now
    if api_key.expires != -1 and api_key.expires < now:
        return None
    if not user.active or user.username == DEFAULT_USER:
        return None
    return KeyHolder(user, tuple(entry for _, _, entry in rows if entry is not None))


@cache
def _holder_statement() -> Select[tuple[UserApiKey, User, str | None]]:
    """``holder_of_key``'s query (parameter ``:digest``): a row per whitelist entry, or one."""
    from repohost.auth.ipaccess import applies_to  # (ipaccess imports this module)

    return (
        select(UserApiKey, User, UserIpMap.ip_addr)
        .join(User, User.user_id == UserApiKey.user_id)
        .outerjoin(UserIpMap, applies_to(User.user_id))
        .where(UserApiKey.key_hash == bindparam("digest"))
        .order_by(UserIpMap.ip_id)
    )


DEFAULT_USER = "default"
"""The anonymous user: owner of the default permissions; it can never use a key."""
