"""Users, read: ``get_user`` and ``get_users``.

These run on Core records (``repohost.db.records``), not ORM objects: ``get_user``
is what a client's first call after a cold start most often is, and this way
the API function answers it without loading the ORM. The methods that change
users are in ``user_admin``.
"""

from __future__ import annotations

from typing import Any

from repohost.auth.keys import DEFAULT_USER
from repohost.auth.permissions import AuthUser
from repohost.db import records
from repohost.db.records import as_id
from repohost.methods._objects import user_object
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

NOT_SAME_USER = "userid is not the same as your user"


def check_self_or_admin(ctx: CallContext, userid: int | str | None) -> None:
    """Non-admins may only name themselves, by numeric id (or not at all).

    (Kallithea compares the numeric id, so a non-admin's own username is refused too.)
    """
    if userid is not None and not ctx.caller.is_admin and as_id(userid) != ctx.caller.user_id:
        raise JSONRPCError(NOT_SAME_USER)


@api_method(
    access="any user for themselves; admin for others",
    errors=(NOT_SAME_USER, "user `<userid>` does not exist"),
)
def get_user(ctx: CallContext, userid: int | str | None = None) -> dict[str, Any]:
    """A user with the permissions computed for them (defaults to the caller)."""
    check_self_or_admin(ctx, userid)
    user = records.find_user(ctx.db, ctx.caller.user_id if userid is None else userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    emails = records.extra_emails(ctx.db, [user.user_id]).get(user.user_id, [])
    target = ctx.caller if user.user_id == ctx.caller.user_id else AuthUser(ctx.db, user)
    return {**user_object(user, emails), "permissions": target.permissions_summary()}


@api_method(admin_only=True)
def get_users(ctx: CallContext) -> list[dict[str, Any]]:
    """Every user but the anonymous ``default`` user, ordered by username."""
    users = records.users_but(ctx.db, DEFAULT_USER)
    emails = records.extra_emails(ctx.db, (u.user_id for u in users))
    return [user_object(u, emails.get(u.user_id, [])) for u in users]
