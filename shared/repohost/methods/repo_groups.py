"""Repository groups: directories of repositories, with their own permissions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from repohost import repos
from repohost.auth.permissions import at_least, default_level
from repohost.db import grants, queries
from repohost.db.models import RepoGroup, Repository
from repohost.methods._objects import members, repo_group_object
from repohost.methods.user_groups import group_with
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

NOT_FOUND = "repository group `<repogroupid>` does not exist"
CHILDREN = ("none", "repos", "groups", "all")


def _group(ctx: CallContext, repogroupid: int | str) -> RepoGroup:
    group = queries.get_repo_group(ctx.session, repogroupid)
    if group is None:
        raise JSONRPCError(f"repository group `{repogroupid}` does not exist")
    return group


def _administered(ctx: CallContext, repogroupid: int | str) -> RepoGroup:
    """The group, if the caller has ``group.admin`` on it; otherwise it "does not exist"."""
    group = _group(ctx, repogroupid)
    if not at_least(ctx.caller.repo_group_permission(group.group_id), "admin"):
        raise JSONRPCError(f"repository group `{repogroupid}` does not exist")
    return group


def _repositories_in(ctx: CallContext, group_ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {i: [] for i in group_ids}
    rows = ctx.session.execute(
        select(Repository.group_id, Repository.repo_name)
        .where(Repository.group_id.in_(group_ids))
        .order_by(Repository.repo_name)
    )
    for group_id, name in rows:
        names[group_id].append(name)
    return names


def _result(ctx: CallContext, group: RepoGroup) -> dict[str, Any]:
    return repo_group_object(group, _repositories_in(ctx, [group.group_id])[group.group_id])


def _name_taken(ctx: CallContext, full_name: str, except_group: RepoGroup | None = None) -> bool:
    """Whether a group or a repository has ``full_name``, ignoring case."""
    return repos.group_taken(ctx, full_name, except_group) or (
        repos.name_taken(ctx, full_name) is not None
    )


def _lock_tree(ctx: CallContext, group: RepoGroup) -> None:
    """Hold the rows of ``group`` and of every group below it until the call ends.

    Creating a repository or a group inside takes a key-share lock on its
    parent's row (the foreign key check), which conflicts with these, so a
    rename or delete of the tree and a creation inside it wait for each other;
    what is read after this includes what the other call committed. (PostgreSQL;
    SQLite runs one writing transaction at a time anyway.)
    """
    ctx.session.refresh(group, with_for_update=True)
    below = (
        select(RepoGroup.group_id)
        .where(RepoGroup.group_name.startswith(group.group_name + "/", autoescape=True))
        .order_by(RepoGroup.group_id)
        .with_for_update()
    )
    ctx.session.execute(below).all()


def _descendants(ctx: CallContext, group: RepoGroup) -> list[RepoGroup]:
    """Every group below ``group`` (by path prefix), parents before children."""
    return list(
        ctx.session.scalars(
            select(RepoGroup)
            .where(RepoGroup.group_name.startswith(group.group_name + "/", autoescape=True))
            .order_by(RepoGroup.group_name)
        )
    )


@api_method(admin_only=True, errors=(NOT_FOUND,))
def get_repo_group(ctx: CallContext, repogroupid: int | str) -> dict[str, Any]:
    """A repository group with its permission members."""
    group = _group(ctx, repogroupid)
    user_rows = grants.rows_on(ctx.session, grants.USER_ON_REPO_GROUP, group.group_id)
    group_rows = grants.rows_on(ctx.session, grants.USER_GROUP_ON_REPO_GROUP, group.group_id)
    return {**_result(ctx, group), "members": members(user_rows, group_rows)}


@api_method(admin_only=True)
def get_repo_groups(ctx: CallContext) -> list[dict[str, Any]]:
    """Every repository group, by path; a fixed number of queries."""
    from sqlalchemy.orm import joinedload

    groups = list(
        ctx.session.scalars(
            select(RepoGroup)
            .order_by(RepoGroup.group_name)
            .options(joinedload(RepoGroup.owner), joinedload(RepoGroup.parent_group))
        )
    )
    contents = _repositories_in(ctx, [g.group_id for g in groups])
    return [repo_group_object(g, contents[g.group_id]) for g in groups]


@api_method(
    admin_only=True,
    errors=(
        "repository group `<parent>` does not exist",
        "user `<owner>` does not exist",
        "repo group `<group_name>` already exist",
        "failed to create repo group `<group_name>`",
    ),
)
def create_repo_group(
    ctx: CallContext,
    group_name: str,
    description: str = "",
    owner: int | str | None = None,
    parent: int | str | None = None,
    copy_permissions: bool = False,
) -> dict[str, Any]:
    """Create a group (a directory) at top level or inside ``parent``."""
    from repohost.git.errors import GitError, InvalidName
    from repohost.git.names import validate_group_name, validate_segment

    parent_group = None
    if parent is not None:
        parent_group = _group(ctx, parent)
    owner_user = ctx.named_user(owner)
    full_name = f"{parent_group.group_name}/{group_name}" if parent_group else group_name
    exists = JSONRPCError(f"repo group `{group_name}` already exist")
    if _name_taken(ctx, full_name):
        raise exists
    failed = JSONRPCError(f"failed to create repo group `{group_name}`")
    try:
        validate_segment(group_name)
        validate_group_name(full_name)  # the whole path fits the column and the rules
    except InvalidName:
        raise failed from None
    if repos.reserved(group_name):
        raise failed
    group = RepoGroup(
        group_name=full_name,
        group_description=description,
        owner=owner_user,
        parent_group=parent_group,
    )
    ctx.session.add(group)
    try:
        ctx.session.flush()
    except IntegrityError:  # a concurrent create of the same name won
        raise exists from None
    if copy_permissions and parent_group is not None:
        for kind in (grants.USER_ON_REPO_GROUP, grants.USER_GROUP_ON_REPO_GROUP):
            for row in grants.rows_on(ctx.session, kind, parent_group.group_id):
                holder = getattr(row, kind.holder)
                grants.grant(ctx.session, kind, holder, group.group_id, row.permission)
    else:
        default = queries.user_by_name(ctx.session, "default")
        assert default is not None
        level = default_level(ctx.session, "group")
        grants.grant(ctx.session, grants.USER_ON_REPO_GROUP, default.user_id, group.group_id, level)
    if not owner_user.admin:
        grants.grant(
            ctx.session,
            grants.USER_ON_REPO_GROUP,
            owner_user.user_id,
            group.group_id,
            "group.admin",
        )
    try:
        ctx.store.create_group(full_name)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.delete_group(full_name))
    ctx.journal(f"admin_created_repo_group:{full_name}")
    return {"msg": f"created new repo group `{group_name}`", "repo_group": _result(ctx, group)}


@api_method(
    admin_only=True,
    errors=(
        NOT_FOUND,
        "user `<owner>` does not exist",
        "failed to update repository group `<repogroupid>`",
    ),
)
def update_repo_group(
    ctx: CallContext,
    repogroupid: int | str,
    group_name: str | None = None,
    description: str | None = None,
    owner: int | str | None = None,
    parent: int | str | None = None,
) -> dict[str, Any]:
    """Rename (``group_name``: the last segment) or move (``parent``) a group with everything in it.

    ``parent`` names an existing group; an empty string moves the group to the top level.
    """
    from repohost.git.errors import GitError, InvalidName
    from repohost.git.names import validate_group_name, validate_segment

    group = _group(ctx, repogroupid)
    _lock_tree(ctx, group)
    failed = JSONRPCError(f"failed to update repository group `{repogroupid}`")
    if owner is not None:
        owner_user = queries.get_user(ctx.session, owner)
        if owner_user is None:
            raise JSONRPCError(f"user `{owner}` does not exist")
        group.owner = owner_user
    if description is not None:
        group.group_description = description
    new_parent = group.parent_group
    if parent is not None:
        new_parent = None if parent == "" else _group(ctx, parent)
    last = group.group_name.rpartition("/")[2] if group_name is None else group_name
    try:
        validate_segment(last)
    except InvalidName:
        raise failed from None
    if repos.reserved(last):
        raise failed
    new_name = f"{new_parent.group_name}/{last}" if new_parent else last
    if new_name != group.group_name:
        if new_parent is not None and (
            new_parent.group_id == group.group_id
            or new_parent.group_name.startswith(group.group_name + "/")
        ):
            raise failed
        if _name_taken(ctx, new_name, except_group=group):
            raise failed
        old_name = group.group_name
        try:
            validate_group_name(new_name)
            _move_tree(ctx, group, new_name, new_parent)
        except InvalidName:  # a path below would become too long
            raise failed from None
        ctx.session.flush()
        try:
            ctx.store.rename_group(old_name, new_name)
        except GitError:
            raise failed from None
        ctx.on_rollback(lambda: ctx.store.rename_group(new_name, old_name))
    ctx.session.flush()
    ctx.journal(f"admin_updated_repo_group:{group.group_name}")
    return {
        "msg": f"updated repository group ID:{group.group_id} {group.group_name}",
        "repo_group": _result(ctx, group),
    }


def _move_tree(
    ctx: CallContext, group: RepoGroup, new_name: str, new_parent: RepoGroup | None
) -> None:
    """Rename the group's row and every row below it (subgroups and repositories).

    Raises ``InvalidName`` (before changing anything) when a name below would
    break the naming rules, e.g. grow longer than a name may be.
    """
    from repohost.git.names import validate_group_name, validate_repo_name

    old_prefix = group.group_name + "/"
    children = _descendants(ctx, group)
    repositories = list(
        ctx.session.scalars(
            select(Repository).where(Repository.repo_name.startswith(old_prefix, autoescape=True))
        )
    )
    renamed_groups = [new_name + "/" + c.group_name[len(old_prefix) :] for c in children]
    renamed_repos = [new_name + "/" + r.repo_name[len(old_prefix) :] for r in repositories]
    for name in renamed_groups:
        validate_group_name(name)
    for name in renamed_repos:
        validate_repo_name(name)
    for child, name in zip(children, renamed_groups, strict=True):
        child.group_name = name
    for repo, name in zip(repositories, renamed_repos, strict=True):
        repo.repo_name = name
    group.group_name = new_name
    group.parent_group = new_parent


@api_method(
    admin_only=True,
    errors=(NOT_FOUND, "failed to delete repo group ID:<group_id> <group_name>"),
)
def delete_repo_group(ctx: CallContext, repogroupid: int | str) -> dict[str, Any]:
    """Delete a group that holds no repositories (empty subgroups go with it)."""
    from repohost.git.errors import GitError

    group = _group(ctx, repogroupid)
    _lock_tree(ctx, group)
    label = f"ID:{group.group_id} {group.group_name}"
    inside = ctx.session.scalars(
        select(Repository.repo_id)
        .where(Repository.repo_name.startswith(group.group_name + "/", autoescape=True))
        .limit(1)
    ).first()
    if inside is not None:
        raise JSONRPCError(f"failed to delete repo group {label}")
    name = group.group_name
    for child in reversed(_descendants(ctx, group)):
        ctx.session.delete(child)
    ctx.session.delete(group)
    ctx.session.flush()
    try:
        trash = ctx.store.trash_group(name)
    except GitError:
        raise JSONRPCError(f"failed to delete repo group {label}") from None
    ctx.on_rollback(lambda: ctx.store.restore_group(trash, name))
    ctx.after_commit(lambda: ctx.store.remove_trashed(trash))
    ctx.journal(f"admin_deleted_repo_group:{name}")
    return {"msg": f"deleted repo group {label}", "repo_group": None}


# --- permissions ----------------------------------------------------------------------------


def _targets(ctx: CallContext, group: RepoGroup, apply_to_children: str) -> tuple[list, list]:
    """The groups and repositories a grant with ``apply_to_children`` reaches."""
    groups, repositories = [group], []
    if apply_to_children in ("groups", "all"):
        groups += _descendants(ctx, group)
    if apply_to_children in ("repos", "all"):
        repositories = list(
            ctx.session.scalars(
                select(Repository).where(
                    Repository.repo_name.startswith(group.group_name + "/", autoescape=True)
                )
            )
        )
    return groups, repositories


def _group_permission(ctx: CallContext, perm: str) -> str:
    if queries.get_permission(ctx.session, perm) is None:
        raise JSONRPCError(f"permission `{perm}` does not exist")
    if not perm.startswith("group."):
        raise JSONRPCError(f"permission `{perm}` is invalid, should start with group.")
    return perm


def _apply(
    ctx: CallContext,
    group: RepoGroup,
    apply_to_children: str,
    holder: int,
    on_groups: grants.GrantKind,
    on_repos: grants.GrantKind,
    perm: str | None,
) -> None:
    """Grant (``perm``) or revoke (None) on the group and the children it reaches."""
    groups, repositories = _targets(ctx, group, apply_to_children)
    for target in groups:
        if perm is None:
            grants.revoke(ctx.session, on_groups, holder, target.group_id)
        else:
            grants.grant(ctx.session, on_groups, holder, target.group_id, perm)
    for repo in repositories:
        if perm is None:
            grants.revoke(ctx.session, on_repos, holder, repo.repo_id)
        else:
            level = perm.replace("group.", "repository.", 1)
            grants.grant(ctx.session, on_repos, holder, repo.repo_id, level)


_ACCESS = "admin, or group.admin on the group"
_GROUP_ACCESS = "admin, or group.admin on the group and usergroup.read on the user group"


@api_method(
    access=_ACCESS,
    errors=(
        NOT_FOUND,
        "user `<userid>` does not exist",
        "permission `<perm>` does not exist",
        "permission `<perm>` is invalid, should start with group.",
    ),
)
def grant_user_permission_to_repo_group(
    ctx: CallContext,
    repogroupid: int | str,
    userid: int | str,
    perm: str,
    apply_to_children: str = "none",
) -> dict[str, Any]:
    """Give a user a level on a group; ``apply_to_children``: none, repos, groups or all."""
    group = _administered(ctx, repogroupid)
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    perm = _group_permission(ctx, perm)
    _apply(
        ctx,
        group,
        apply_to_children,
        user.user_id,
        grants.USER_ON_REPO_GROUP,
        grants.USER_ON_REPO,
        perm,
    )
    ctx.journal(f"admin_granted_repo_group_perm:{user.username}:{perm}")
    return {
        "msg": (
            f"Granted perm: `{perm}` (recursive:{apply_to_children}) for user:"
            f" `{user.username}` in repo group: `{group.group_name}`"
        ),
        "success": True,
    }


@api_method(access=_ACCESS, errors=(NOT_FOUND, "user `<userid>` does not exist"))
def revoke_user_permission_from_repo_group(
    ctx: CallContext, repogroupid: int | str, userid: int | str, apply_to_children: str = "none"
) -> dict[str, Any]:
    """Remove a user's rows on a group (and the children ``apply_to_children`` reaches)."""
    group = _administered(ctx, repogroupid)
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    _apply(
        ctx,
        group,
        apply_to_children,
        user.user_id,
        grants.USER_ON_REPO_GROUP,
        grants.USER_ON_REPO,
        None,
    )
    ctx.journal(f"admin_revoked_repo_group_perm:{user.username}")
    return {
        "msg": (
            f"Revoked perm (recursive:{apply_to_children}) for user: `{user.username}`"
            f" in repo group: `{group.group_name}`"
        ),
        "success": True,
    }


@api_method(
    access=_GROUP_ACCESS,
    errors=(
        NOT_FOUND,
        "permission `<perm>` does not exist",
        "permission `<perm>` is invalid, should start with group.",
        "user group `<usergroupid>` does not exist",
    ),
)
def grant_user_group_permission_to_repo_group(
    ctx: CallContext,
    repogroupid: int | str,
    usergroupid: int | str,
    perm: str,
    apply_to_children: str = "none",
) -> dict[str, Any]:
    """Give a user group a level on a group (and the children ``apply_to_children`` reaches)."""
    group = _administered(ctx, repogroupid)
    perm = _group_permission(ctx, perm)
    user_group = group_with(ctx, usergroupid, "read")
    _apply(
        ctx,
        group,
        apply_to_children,
        user_group.users_group_id,
        grants.USER_GROUP_ON_REPO_GROUP,
        grants.USER_GROUP_ON_REPO,
        perm,
    )
    ctx.journal(f"admin_granted_repo_group_perm_to_users_group:{user_group.users_group_name}")
    return {
        "msg": (
            f"Granted perm: `{perm}` (recursive:{apply_to_children}) for user group:"
            f" `{user_group.users_group_name}` in repo group: `{group.group_name}`"
        ),
        "success": True,
    }


@api_method(access=_GROUP_ACCESS, errors=(NOT_FOUND, "user group `<usergroupid>` does not exist"))
def revoke_user_group_permission_from_repo_group(
    ctx: CallContext,
    repogroupid: int | str,
    usergroupid: int | str,
    apply_to_children: str = "none",
) -> dict[str, Any]:
    """Remove a user group's rows on a group (and the children ``apply_to_children`` reaches)."""
    group = _administered(ctx, repogroupid)
    user_group = group_with(ctx, usergroupid, "read")
    _apply(
        ctx,
        group,
        apply_to_children,
        user_group.users_group_id,
        grants.USER_GROUP_ON_REPO_GROUP,
        grants.USER_GROUP_ON_REPO,
        None,
    )
    ctx.journal(f"admin_revoked_repo_group_perm_from_users_group:{user_group.users_group_name}")
    return {
        "msg": (
            f"Revoked perm (recursive:{apply_to_children}) for user group:"
            f" `{user_group.users_group_name}` in repo group: `{group.group_name}`"
        ),
        "success": True,
    }
