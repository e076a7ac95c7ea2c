"""Identifiers, and users read as plain records with Core.

Kallithea's identifier rules (facts §1.5): an int, or a string of digits, is
a primary key; anything else is a name. The user lookups here return
``UserRecord``s rather than ORM objects: they serve authentication and the
reading methods of the cold path (``get_user``, ``get_users``), which then
never load the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Protocol

from sqlalchemy import Select, select

from repohost.db import tables as t


class Executor(Protocol):
    """What runs a query: an ORM session, or a call's ``repohost.db.engine.Database``."""

    def execute(self, statement: Any, parameters: Any = None, /) -> Any: ...

    def scalars(self, statement: Any, parameters: Any = None, /) -> Any: ...


class UserFacts(Protocol):
    """A user's own columns, as a ``UserRecord`` or a ``User`` object has them."""

    @property
    def user_id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def firstname(self) -> str: ...
    @property
    def lastname(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def admin(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A ``users`` row: the columns the API shows, never the password hash."""

    user_id: int
    username: str
    firstname: str
    lastname: str
    email: str
    active: bool
    admin: bool


USER_COLUMNS = tuple(t.users.c[f.name] for f in fields(UserRecord))

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


def find_user(db: Executor, ident: Any) -> UserRecord | None:
    """The user a user id or name stands for, or None."""
    key = identify(ident)
    if key is None:
        return None
    users = t.users.c
    column = users.user_id if isinstance(key, int) else users.username
    row = db.execute(select(*USER_COLUMNS).where(column == key)).one_or_none()
    return None if row is None else UserRecord(*row)


def users_but(db: Executor, username: str) -> list[UserRecord]:
    """Every user but ``username`` (the anonymous one), by username."""
    users = t.users.c
    query: Select[Any] = (
        select(*USER_COLUMNS).where(users.username != username).order_by(users.username)
    )
    return [UserRecord(*row) for row in db.execute(query)]


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
