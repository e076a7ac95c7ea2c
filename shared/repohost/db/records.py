"""Identifiers, and users read as plain rows with Core.

Kallithea's identifier rules (facts §1.5): an int, or a string of digits, is
a primary key; anything else is a name. The user lookups here return ``users``
rows rather than ORM objects: they serve authentication's neighbours on the
cold path (``get_user``, ``get_users``), which then never load the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, select

from repohost.auth.keys import DEFAULT_USER, USER_COLUMNS, Executor
from repohost.db import tables as t

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


def identify(ident: Any) -> int | str | None:
    """The primary key (an int) or the name (a str) ``ident`` stands for.

    None when it can stand for no object: not an int or a str, or digits
    beyond any key.
    """
    key = as_id(ident)
    if key is not None:
        return key
    if isinstance(ident, str) and not ident.isdigit():
        return ident
    return None


def _users() -> Any:
    users = t.users.c
    return select(*(users[name] for name in USER_COLUMNS))


def find_user(db: Executor, ident: Any) -> Row[Any] | None:
    """The ``users`` row (``USER_COLUMNS``) of a user id or name, or None."""
    key = identify(ident)
    if key is None:
        return None
    users = t.users.c
    column = users.user_id if isinstance(key, int) else users.username
    return db.execute(_users().where(column == key)).one_or_none()  # type: ignore[no-any-return]


def all_users(db: Executor) -> list[Row[Any]]:
    """Every user but the anonymous one, by username."""
    users = t.users.c
    query = _users().where(users.username != DEFAULT_USER).order_by(users.username)
    return list(db.execute(query))


def extra_emails(db: Executor, user_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each user's additional addresses, in the order they were added."""
    emails = t.user_email_map.c
    query = (
        select(emails.user_id, emails.email)
        .where(emails.user_id.in_(list(user_ids)))
        .order_by(emails.email_id)
    )
    found: dict[int, list[str]] = {}
    for user_id, email in db.execute(query):
        found.setdefault(user_id, []).append(email)
    return found
