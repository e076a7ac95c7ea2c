"""Gists: small sets of files, each a git repository in a hidden store under the root."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import or_, select

from repohost.db import queries
from repohost.db.models import Gist
from repohost.methods._lifetime import expires_at
from repohost.methods._objects import gist_object
from repohost.methods.user_admin import require_self_or_admin
from repohost.methods.users import NOT_SAME_USER
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

GIST_TYPES = ("public", "private")


def _owned(ctx: CallContext, gistid: int | str) -> Gist:
    """The gist, if the caller is an admin or its owner; otherwise it "does not exist"."""
    gist = queries.get_gist(ctx.session, gistid)
    if gist is None or not (ctx.caller.is_admin or gist.owner_id == ctx.caller.user_id):
        raise JSONRPCError(f"gist `{gistid}` does not exist")
    return gist


@api_method(access="admin, or the gist's owner", errors=("gist `<gistid>` does not exist",))
def get_gist(ctx: CallContext, gistid: int | str) -> dict[str, Any]:
    """A gist (by id or access id), expired or not."""
    return gist_object(_owned(ctx, gistid), ctx.base_url)


@api_method(
    access="any user for their own gists; admin for anyone's",
    errors=(NOT_SAME_USER, "user `<userid>` does not exist"),
)
def get_gists(ctx: CallContext, userid: int | str | None = None) -> list[dict[str, Any]]:
    """A user's gists that have not expired, newest first (defaults to the caller)."""
    user = require_self_or_admin(ctx, userid)
    gists = ctx.session.scalars(
        select(Gist)
        .where(
            Gist.owner_id == user.user_id,
            or_(Gist.gist_expires == -1, Gist.gist_expires >= time.time()),
        )
        .order_by(Gist.created_on.desc(), Gist.gist_id.desc())
    )
    return [gist_object(g, ctx.base_url) for g in gists]


@api_method(
    access="any user (only admins may give `owner`)",
    errors=(
        "Only Kallithea admin can specify `owner` param",
        "user `<owner>` does not exist",
        "failed to create gist",
    ),
)
def create_gist(
    ctx: CallContext,
    files: dict[str, Any],
    owner: int | str | None = None,
    gist_type: str = "public",
    lifetime: int = -1,
    description: str = "",
) -> dict[str, Any]:
    """Create a gist from ``{filename: {"content": text}}``; ``lifetime`` in minutes (-1: never)."""
    from repohost.git.errors import GitError

    if owner is not None and not ctx.caller.is_admin:
        raise JSONRPCError("Only Kallithea admin can specify `owner` param")
    owner_user = ctx.named_user(owner)
    failed = JSONRPCError("failed to create gist")
    contents = {
        name: spec.get("content") if isinstance(spec, dict) else None
        for name, spec in files.items()
    }
    if not contents or not all(isinstance(c, str) for c in contents.values()):
        raise failed
    if gist_type not in GIST_TYPES or (lifetime != -1 and lifetime <= 0):
        raise failed
    gist = Gist(
        gist_access_id=secrets.token_hex(10),
        gist_description=description,
        owner=owner_user,
        gist_type=gist_type,
        gist_expires=expires_at(lifetime),
    )
    ctx.session.add(gist)
    ctx.session.flush()
    if gist_type == "public":
        gist.gist_access_id = str(gist.gist_id)
    names = list(contents)  # in the order the client sent them, as Kallithea's message
    message = f"added file{'s' if len(names) > 1 else ''}: {', '.join(names)}"
    author = f"{owner_user.username} <{owner_user.email}>"
    try:
        ctx.store.create_gist(gist.gist_access_id, contents, message, author)
    except (GitError, ValueError):
        raise failed from None
    access_id = gist.gist_access_id
    ctx.on_rollback(lambda: ctx.store.delete_gist(access_id))
    ctx.journal(f"user_created_gist:{access_id}")
    return {"msg": "created new gist", "gist": gist_object(gist, ctx.base_url)}


@api_method(
    access="admin, or the gist's owner",
    errors=("gist `<gistid>` does not exist", "failed to delete gist ID:<access_id>"),
)
def delete_gist(ctx: CallContext, gistid: int | str) -> dict[str, Any]:
    """Delete a gist and its repository."""
    from repohost.git.errors import GitError

    gist = _owned(ctx, gistid)
    access_id = gist.gist_access_id
    ctx.session.delete(gist)
    ctx.session.flush()
    try:
        trash = ctx.store.trash_gist(access_id)
    except GitError:
        raise JSONRPCError(f"failed to delete gist ID:{access_id}") from None
    ctx.on_rollback(lambda: ctx.store.restore_gist(trash, access_id))
    ctx.after_commit(lambda: ctx.store.remove_trashed(trash))
    ctx.journal(f"user_deleted_gist:{access_id}")
    return {"msg": f"deleted gist ID:{access_id}", "gist": None}
