"""Users: ``get_user``, ``get_users``, ``create_user``, ``update_user``, ``delete_user``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import selectinload

from repohost.auth.keys import DEFAULT_USER, add_key
from repohost.auth.names import valid_email, valid_username
from repohost.auth.passwords import hash_password
from repohost.auth.permissions import AuthUser
from repohost.db import queries
from repohost.db.models import Gist, RepoGroup, Repository, User, UserGroup, fits
from repohost.methods._objects import user_object
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

NOT_SAME_USER = "userid is not the same as your user"
_LIMITED = (User.firstname, User.lastname, User.extern_type, User.extern_name)


def _fields_fit(*values: str | None) -> bool:
    """Whether first name, last name, extern type and extern name fit their columns."""
    return all(fits(column, value) for column, value in zip(_LIMITED, values, strict=True))


def require_self_or_admin(ctx: CallContext, userid: int | str | None) -> User:
    """The user ``userid`` names; non-admins may only name themselves, by numeric id.

    (Kallithea compares the numeric id, so a non-admin's own username is refused too.)
    """
    if userid is None:
        return ctx.caller.user
    if not ctx.caller.is_admin and queries.as_id(userid) != ctx.caller.user_id:
        raise JSONRPCError(NOT_SAME_USER)
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    return user


@api_method(
    access="any user for themselves; admin for others",
    errors=(NOT_SAME_USER, "user `<userid>` does not exist"),
)
def get_user(ctx: CallContext, userid: int | str | None = None) -> dict[str, Any]:
    """A user with the permissions computed for them (defaults to the caller)."""
    user = require_self_or_admin(ctx, userid)
    target = ctx.caller if user is ctx.caller.user else AuthUser(ctx.session, user)
    return {**user_object(user), "permissions": target.permissions_summary()}


@api_method(admin_only=True)
def get_users(ctx: CallContext) -> list[dict[str, Any]]:
    """Every user but the anonymous ``default`` user, ordered by username."""
    users = ctx.session.scalars(
        select(User)
        .where(User.username != DEFAULT_USER)
        .order_by(User.username)
        .options(selectinload(User.extra_emails))
    )
    return [user_object(u) for u in users]


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
        ctx.session.scalar(select(exists().where(column == user.user_id)))
        for column in (
            Repository.owner_id,
            RepoGroup.owner_id,
            UserGroup.owner_id,
            Gist.owner_id,
        )
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
