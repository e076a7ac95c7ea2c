"""Users, changed: ``create_user``, ``update_user``, ``delete_user``.

Also ``require_self_or_admin``, the user lookup of the methods that act for a
user (their keys, their gists).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select

from repohost.auth.keys import DEFAULT_USER, add_key
from repohost.auth.names import valid_email, valid_username
from repohost.auth.passwords import hash_password
from repohost.db import queries
from repohost.db import tables as t
from repohost.db.models import User
from repohost.db.tables import fits
from repohost.methods._objects import user_object
from repohost.methods.users import check_self_or_admin
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

_LIMITED = (t.users.c.firstname, t.users.c.lastname, t.users.c.extern_type, t.users.c.extern_name)


def _fields_fit(*values: str | None) -> bool:
    """Whether first name, last name, extern type and extern name fit their columns."""
    return all(fits(column, value) for column, value in zip(_LIMITED, values, strict=True))


def require_self_or_admin(ctx: CallContext, userid: int | str | None) -> User:
    """The user ``userid`` names (default: the caller), if the caller may act for them."""
    check_self_or_admin(ctx, userid)
    return ctx.named_user(userid)


@api_method(
    admin_only=True,
    errors=(
        "user `<username>` already exist",
        "email `<email>` already exist",
        "failed to create user `<username>`",
    ),
)
def create_user(
    ctx: CallContext,
    username: str,
    email: str,
    password: str = "",
    firstname: str = "",
    lastname: str = "",
    active: bool = True,
    admin: bool = False,
    extern_type: str = "internal",
    extern_name: str = "",
) -> dict[str, Any]:
    """Create a user; the result carries its first API key, shown this once."""
    if queries.user_by_name(ctx.session, username) is not None:
        raise JSONRPCError(f"user `{username}` already exist")
    if queries.email_taken(ctx.session, email):
        raise JSONRPCError(f"email `{email}` already exist")
    if not valid_username(username) or not valid_email(email):
        raise JSONRPCError(f"failed to create user `{username}`")
    if not _fields_fit(firstname, lastname, extern_type, extern_name):
        raise JSONRPCError(f"failed to create user `{username}`")
    user = User(
        username=username,
        email=email,
        password=hash_password(password),
        firstname=firstname,
        lastname=lastname,
        active=active,
        admin=admin,
        extern_type=extern_type,
        extern_name=extern_name,
    )
    ctx.session.add(user)
    ctx.session.flush()
    _row, key = add_key(ctx.session, user, description="created with the user")
    ctx.journal(f"admin_created_user:{username}")
    return {"msg": f"created new user `{username}`", "user": user_object(user), "api_key": key}


@api_method(
    admin_only=True,
    errors=(
        "user `<userid>` does not exist",
        "editing default user is forbidden",
        "failed to update user `<userid>`",
    ),
)
def update_user(
    ctx: CallContext,
    userid: int | str,
    username: str | None = None,
    email: str | None = None,
    password: str | None = None,
    firstname: str | None = None,
    lastname: str | None = None,
    active: bool | None = None,
    admin: bool | None = None,
    extern_type: str | None = None,
    extern_name: str | None = None,
) -> dict[str, Any]:
    """Change the given fields of a user; omitted (or null) fields keep their values."""
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    if user.username == DEFAULT_USER:
        raise JSONRPCError("editing default user is forbidden")
    failed = JSONRPCError(f"failed to update user `{userid}`")
    if not _fields_fit(firstname, lastname, extern_type, extern_name):
        raise failed
    if username is not None and username != user.username:
        if not valid_username(username) or queries.user_by_name(ctx.session, username):
            raise failed
        user.username = username
    if email is not None and email != user.email:
        if not valid_email(email) or queries.email_taken(ctx.session, email, user.user_id):
            raise failed
        user.email = email
    if password is not None:
        user.password = hash_password(password)
    for field, value in (
        ("firstname", firstname),
        ("lastname", lastname),
        ("active", active),
        ("admin", admin),
        ("extern_type", extern_type),
        ("extern_name", extern_name),
    ):
        if value is not None:
            setattr(user, field, value)
    ctx.session.flush()
    ctx.journal(f"admin_updated_user:{user.username}")
    return {"msg": f"updated user ID:{user.user_id} {user.username}", "user": user_object(user)}


def _owns_anything(ctx: CallContext, user: User) -> bool:
    return any(
        ctx.session.scalar(select(exists().where(table.c.owner_id == user.user_id)))
        for table in (t.repositories, t.groups, t.users_groups, t.gists)
    )


@api_method(
    admin_only=True,
    errors=("user `<userid>` does not exist", "failed to delete user ID:<id> <username>"),
)
def delete_user(ctx: CallContext, userid: int | str) -> dict[str, Any]:
    """Delete a user who owns nothing (repositories, groups and gists must change hands first)."""
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    message = f"ID:{user.user_id} {user.username}"
    if user.username == DEFAULT_USER or _owns_anything(ctx, user):
        raise JSONRPCError(f"failed to delete user {message}")
    ctx.session.delete(user)
    ctx.session.flush()
    ctx.journal(f"admin_deleted_user:{user.username}")
    return {"msg": f"deleted user {message}", "user": None}
