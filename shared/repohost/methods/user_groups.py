"""User groups: reading, creating, changing, deleting, and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from repohost.auth.keys import DEFAULT_USER
from repohost.auth.names import valid_user_group_name
from repohost.auth.permissions import at_least, default_level
from repohost.db import grants, queries
from repohost.db.models import (
    Repository,
    User,
    UserGroup,
    UserGroupMember,
    UserGroupRepoToPerm,
)
from repohost.methods._objects import user_group_object
from repohost.rpc.context import CallContext
from repohost.rpc.errors import ACCESS_DENIED, JSONRPCError
from repohost.rpc.registry import api_method


def group_with(ctx: CallContext, usergroupid: int | str, level: str) -> UserGroup:
    """The group, if the caller has ``level`` on it; otherwise it "does not exist"."""
    group = queries.get_user_group(ctx.session, usergroupid)
    if group is None or not at_least(ctx.caller.user_group_permission(group.users_group_id), level):
        raise JSONRPCError(f"user group `{usergroupid}` does not exist")
    return group


def _grant_on_group(ctx: CallContext, group: UserGroup, user: User, permission: str) -> None:
    """Give ``user`` a level on the group, replacing the row they had (one row per user).

    The owner may be the anonymous ``default`` user, whose default-level row is then
    replaced by the owner's ``usergroup.admin`` (Kallithea keeps both; the highest wins).
    """
    grants.grant(
        ctx.session, grants.USER_ON_USER_GROUP, user.user_id, group.users_group_id, permission
    )


@api_method(
    access="admin, or usergroup.read on the group",
    errors=("user group `<usergroupid>` does not exist",),
)
def get_user_group(ctx: CallContext, usergroupid: int | str) -> dict[str, Any]:
    """A user group with its members."""
    return user_group_object(group_with(ctx, usergroupid, "read"))


@api_method(access="any user; lists the groups the caller may read")
def get_user_groups(ctx: CallContext) -> list[dict[str, Any]]:
    """Every user group the caller may read, in creation order."""
    readable = {i for i, p in ctx.caller.user_group_permissions().items() if at_least(p, "read")}
    groups = ctx.session.scalars(
        select(UserGroup)
        .where(UserGroup.users_group_id.in_(readable))
        .order_by(UserGroup.users_group_id)
        .options(
            joinedload(UserGroup.owner),
            selectinload(UserGroup.members)
            .joinedload(UserGroupMember.user)
            .selectinload(User.extra_emails),
        )
    )
    return [user_group_object(g) for g in groups]


@api_method(
    access="admin, or the global permission hg.usergroup.create.true",
    errors=(
        ACCESS_DENIED,
        "user group `<group_name>` already exist",
        "user `<owner>` does not exist",
        "failed to create group `<group_name>`",
    ),
)
def create_user_group(
    ctx: CallContext,
    group_name: str,
    description: str = "",
    owner: int | str | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """Create a user group; its owner gets ``usergroup.admin`` on it."""
    if not ctx.caller.has_global("hg.usergroup.create.true"):
        raise JSONRPCError(ACCESS_DENIED)
    if queries.user_group_by_name(ctx.session, group_name) is not None:
        raise JSONRPCError(f"user group `{group_name}` already exist")
    owner_user = ctx.named_user(owner)
    if not valid_user_group_name(group_name):
        raise JSONRPCError(f"failed to create group `{group_name}`")
    group = UserGroup(
        users_group_name=group_name,
        user_group_description=description,
        users_group_active=active,
        owner=owner_user,
    )
    ctx.session.add(group)
    ctx.session.flush()
    default_user = queries.user_by_name(ctx.session, DEFAULT_USER)
    _grant_on_group(ctx, group, default_user, default_level(ctx.session, "usergroup"))
    _grant_on_group(ctx, group, owner_user, "usergroup.admin")
    ctx.session.flush()
    ctx.journal(f"admin_created_users_group:{group_name}")
    return {"msg": f"created new user group `{group_name}`", "user_group": user_group_object(group)}


@api_method(
    access="admin, or usergroup.admin on the group",
    errors=(
        "user group `<usergroupid>` does not exist",
        "user `<owner>` does not exist",
        "failed to update user group `<usergroupid>`",
    ),
)
def update_user_group(
    ctx: CallContext,
    usergroupid: int | str,
    group_name: str | None = None,
    description: str | None = None,
    owner: int | str | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change the given fields of a user group; omitted fields keep their values."""
    group = group_with(ctx, usergroupid, "admin")
    if owner is not None:
        group.owner = ctx.named_user(owner)
    if group_name is not None and group_name != group.users_group_name:
        if not valid_user_group_name(group_name) or queries.user_group_by_name(
            ctx.session, group_name
        ):
            raise JSONRPCError(f"failed to update user group `{usergroupid}`")
        group.users_group_name = group_name
    if description is not None:
        group.user_group_description = description
    if active is not None:
        group.users_group_active = active
    ctx.session.flush()
    ctx.journal(f"admin_updated_users_group:{group.users_group_name}")
    return {
        "msg": f"updated user group ID:{group.users_group_id} {group.users_group_name}",
        "user_group": user_group_object(group),
    }


@api_method(
    access="admin, or usergroup.admin on the group",
    errors=(
        "user group `<usergroupid>` does not exist",
        "User Group assigned to <repo_name>, ... [, <n> other repositories]",
    ),
)
def delete_user_group(ctx: CallContext, usergroupid: int | str) -> dict[str, Any]:
    """Delete a user group that holds no permission on any repository."""
    group = group_with(ctx, usergroupid, "admin")
    assigned = ctx.session.execute(
        select(Repository.repo_id, Repository.repo_name)
        .join(UserGroupRepoToPerm, UserGroupRepoToPerm.repository_id == Repository.repo_id)
        .where(UserGroupRepoToPerm.users_group_id == group.users_group_id)
        .order_by(Repository.repo_name)
    ).all()
    if assigned:
        # Only the repositories the caller may read are named (a group admin need not
        # be able to read what the group was granted); the others are counted.
        levels = (
            None if ctx.caller.is_admin else ctx.caller.repo_permissions(i for i, _ in assigned)
        )
        shown = [n for i, n in assigned if levels is None or at_least(levels.get(i, ""), "read")]
        hidden = len(assigned) - len(shown)
        if hidden:
            shown.append(f"{hidden} other {'repository' if hidden == 1 else 'repositories'}")
        raise JSONRPCError("User Group assigned to " + ", ".join(shown))
    message = f"ID:{group.users_group_id} {group.users_group_name}"
    ctx.session.delete(group)
    ctx.session.flush()
    ctx.journal(f"admin_deleted_users_group:{group.users_group_name}")
    return {"msg": f"deleted user group {message}", "user_group": None}


def _member_change(
    ctx: CallContext, usergroupid: int | str, userid: int | str
) -> tuple[UserGroup, User, UserGroupMember | None]:
    """Resolve user first, then group (Kallithea's order), and the membership if any."""
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    group = group_with(ctx, usergroupid, "admin")
    member = next((m for m in group.members if m.user_id == user.user_id), None)
    return group, user, member


@api_method(
    access="admin, or usergroup.admin on the group",
    errors=("user `<userid>` does not exist", "user group `<usergroupid>` does not exist"),
)
def add_user_to_user_group(
    ctx: CallContext, usergroupid: int | str, userid: int | str
) -> dict[str, Any]:
    """Add a member; adding one who already is answers ``success: false``."""
    group, user, member = _member_change(ctx, usergroupid, userid)
    if member is not None:
        return {"success": False, "msg": "User is already in that group"}
    group.members.append(UserGroupMember(user=user))
    ctx.session.flush()
    ctx.journal(f"admin_added_user_to_users_group:{group.users_group_name}")
    return {
        "success": True,
        "msg": f"added member `{user.username}` to user group `{group.users_group_name}`",
    }


@api_method(
    access="admin, or usergroup.admin on the group",
    errors=("user `<userid>` does not exist", "user group `<usergroupid>` does not exist"),
)
def remove_user_from_user_group(
    ctx: CallContext, usergroupid: int | str, userid: int | str
) -> dict[str, Any]:
    """Remove a member; removing a non-member answers ``success: false``."""
    group, user, member = _member_change(ctx, usergroupid, userid)
    if member is None:
        return {"success": False, "msg": "User wasn't in group"}
    group.members.remove(member)
    ctx.session.flush()
    ctx.journal(f"admin_removed_user_from_users_group:{group.users_group_name}")
    return {
        "success": True,
        "msg": f"removed member `{user.username}` from user group `{group.users_group_name}`",
    }
