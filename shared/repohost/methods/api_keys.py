"""API-key management (a repohost addition: there is no web UI to do it in).

Keys are shown once, when created; afterwards only their last four
characters (``hint``) identify them.
"""

from __future__ import annotations

from typing import Any

from repohost.auth.keys import add_key
from repohost.db.models import UserApiKey
from repohost.methods._lifetime import expires_at
from repohost.methods.user_admin import require_self_or_admin
from repohost.methods.users import NOT_SAME_USER
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

_ACCESS = "any user for their own keys; admin for anyone's"


def _key_object(key: UserApiKey) -> dict[str, Any]:
    return {
        "api_key_id": key.api_key_id,
        "description": key.description,
        "expires": key.expires,
        "created_on": key.created_on,
        "hint": key.hint,
    }


@api_method(access=_ACCESS, errors=(NOT_SAME_USER, "user `<userid>` does not exist"))
def get_api_keys(ctx: CallContext, userid: int | str | None = None) -> list[dict[str, Any]]:
    """A user's API keys, without the keys themselves (defaults to the caller)."""
    return [_key_object(k) for k in require_self_or_admin(ctx, userid).api_keys]


@api_method(
    access=_ACCESS,
    errors=(NOT_SAME_USER, "user `<userid>` does not exist", "lifetime must be -1 or positive"),
)
def create_api_key(
    ctx: CallContext,
    userid: int | str | None = None,
    description: str = "",
    lifetime: int = -1,
) -> dict[str, Any]:
    """Create a key; ``lifetime`` in minutes, -1 for never expiring. The key is shown once."""
    user = require_self_or_admin(ctx, userid)
    if lifetime != -1 and lifetime <= 0:
        raise JSONRPCError("lifetime must be -1 or positive")
    row, plain = add_key(ctx.session, user, description=description, expires=expires_at(lifetime))
    ctx.journal(f"user_created_api_key:{user.username}")
    return {
        "api_key_id": row.api_key_id,
        "api_key": plain,
        "description": row.description,
        "expires": row.expires,
    }


@api_method(
    access=_ACCESS,
    errors=(
        NOT_SAME_USER,
        "user `<userid>` does not exist",
        "API key `<api_key_id>` does not exist",
    ),
)
def delete_api_key(
    ctx: CallContext, api_key_id: int, userid: int | str | None = None
) -> dict[str, Any]:
    """Delete one of a user's keys (it stops working at once)."""
    user = require_self_or_admin(ctx, userid)
    key = next((k for k in user.api_keys if k.api_key_id == api_key_id), None)
    if key is None:
        raise JSONRPCError(f"API key `{api_key_id}` does not exist")
    user.api_keys.remove(key)
    ctx.session.flush()
    ctx.journal(f"user_deleted_api_key:{user.username}")
    return {"msg": f"deleted API key ID:{api_key_id} of user {user.username}", "success": True}
