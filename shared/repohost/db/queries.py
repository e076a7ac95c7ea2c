"""Lookups shared by the methods, with Kallithea's identifier rules (facts §1.5).

An identifier that is an int, or a string of digits, is a primary key;
anything else is a name. Callers get None for "no such object" and report it
with the object's own not-found message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from repohost.db.models import Permission, User, UserEmail, UserGroup

_MAX_ID = 2**31 - 1  # the database's integer keys


def as_id(ident: Any) -> int | None:
    """The primary key an identifier stands for, or None if it is a name (or no key at all)."""
    if isinstance(ident, bool):
        return None
    if isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) < 11:
        ident = int(ident)
    if isinstance(ident, int) and 0 <= ident <= _MAX_ID:
        return ident
    return None


def get_user(session: Session, ident: Any) -> User | None:
    if ident is None:
        return None
    key = as_id(ident)
    if key is not None:
        return session.get(User, key)
    if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
        return None
    return user_by_name(session, ident) if isinstance(ident, str) else None


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def user_group_by_name(session: Session, name: str) -> UserGroup | None:
    return session.scalars(
        select(UserGroup).where(UserGroup.users_group_name == name)
    ).one_or_none()


def get_user_group(session: Session, ident: Any) -> UserGroup | None:
    if ident is None:
        return None
    key = as_id(ident)
    if key is not None:
        return session.get(UserGroup, key)
    if isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit()):
        return None
    return user_group_by_name(session, ident) if isinstance(ident, str) else None


def get_permission(session: Session, name: Any) -> Permission | None:
    if not isinstance(name, str):
        return None
    return session.scalars(
        select(Permission).where(Permission.permission_name == name)
    ).one_or_none()


def email_taken(session: Session, email: str, except_user_id: int | None = None) -> bool:
    """Whether any user has ``email`` as main or extra address (case-insensitive)."""
    lowered = email.lower()
    main = select(User.user_id).where(func.lower(User.email) == lowered)
    extra = select(UserEmail.user_id).where(func.lower(UserEmail.email) == lowered)
    if except_user_id is not None:
        main = main.where(User.user_id != except_user_id)
        extra = extra.where(UserEmail.user_id != except_user_id)
    return session.execute(main.union(extra).limit(1)).first() is not None
