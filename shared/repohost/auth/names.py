"""Validation of names clients choose, before anything is stored."""

from __future__ import annotations

import re

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,254}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}")

#: Names that would collide with the anonymous user or read as something else.
RESERVED_USERNAMES = frozenset({"default", "_admin", "admin_"})


def valid_username(name: str) -> bool:
    return (
        _USERNAME.fullmatch(name) is not None
        and name.lower() not in RESERVED_USERNAMES
        and not name.isdigit()
    )


def valid_user_group_name(name: str) -> bool:
    return _GROUP_NAME.fullmatch(name) is not None and not name.isdigit()


def valid_email(email: str) -> bool:
    return _EMAIL.fullmatch(email) is not None
