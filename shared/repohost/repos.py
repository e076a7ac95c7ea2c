"""Repository logic shared by the method modules: access, directories in step with rows.

Every change to a repository directory happens inside the call's database
transaction and registers its undo, so a failure on either side leaves both
as they were (see ``CallContext.on_rollback``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from repohost.auth.permissions import at_least, default_level
from repohost.db import grants, queries
from repohost.db.models import RepoGroup, Repository, User, UserFollowing
from repohost.methods._objects import repo_object
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError

LANDING_TYPES = ("rev", "branch", "tag", "book")


def not_found(repoid: object) -> JSONRPCError:
    return JSONRPCError(f"repository `{repoid}` does not exist")


def repo_with(ctx: CallContext, repoid: int | str, level: str) -> Repository:
    """The repository, if the caller has ``level`` on it; otherwise it "does not exist"."""
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None or not at_least(ctx.caller.repo_permission(repo.repo_id), level):
        raise not_found(repoid)
    return repo


def show_credentials(ctx: CallContext, repo: Repository) -> bool:
    """Only admins and repository admins see a clone URI's password (DECISIONS.md)."""
    return ctx.caller.is_admin or ctx.caller.repo_permission(repo.repo_id) == "repository.admin"


def result(ctx: CallContext, repo: Repository) -> dict[str, Any]:
    return repo_object(repo, show_credentials=show_credentials(ctx, repo))


def valid_landing_rev(value: str) -> bool:
    kind, sep, name = value.partition(":")
    return bool(sep) and kind in LANDING_TYPES and bool(name)


def name_taken(ctx: CallContext, full_name: str) -> Repository | None:
    """An existing repository whose name equals ``full_name`` ignoring case.

    Names differing only in case would collide on case-insensitive clients
    (and file systems), so they count as taken.
    """
    return ctx.session.scalars(
        select(Repository).where(func.lower(Repository.repo_name) == full_name.lower())
    ).first()


def check_create_rights(ctx: CallContext, full_name: str, owner: int | str | None) -> User:
    """Kallithea 0.7's checks before creating (or forking to) ``full_name``; returns the owner."""
    group_path, slash, _last = full_name.rpartition("/")
    if slash:
        group = queries.repo_group_by_name(ctx.session, group_path)
        if group is None:
            raise JSONRPCError(f"repo group `{group_path}` not found")
        permission = ctx.caller.repo_group_permission(group.group_id)
        if not ctx.caller.is_admin and not at_least(permission, "write"):
            raise JSONRPCError(f"no permission to create repo in {group_path}")
    elif not ctx.caller.has_global("hg.create.repository"):
        raise JSONRPCError("no permission to create top level repo")
    if owner is not None and not ctx.caller.is_admin:
        raise JSONRPCError("Only Kallithea admin can specify `owner` param")
    if owner is None:
        return ctx.caller.user
    owner_user = queries.get_user(ctx.session, owner)
    if owner_user is None:
        raise JSONRPCError(f"user `{owner}` does not exist")
    return owner_user


def group_of(ctx: CallContext, full_name: str) -> RepoGroup | None:
    group_path = full_name.rpartition("/")[0]
    return queries.repo_group_by_name(ctx.session, group_path) if group_path else None


def insert(ctx: CallContext, repo: Repository, *, copy_permissions: bool) -> None:
    """Add the row with its permission rows; the owner follows it.

    New repositories get the anonymous user's default level (``none`` when
    private), or with ``copy_permissions`` the rows of their group.
    """
    ctx.session.add(repo)
    try:
        ctx.session.flush()
    except IntegrityError:
        raise JSONRPCError(f"repo `{repo.repo_name}` already exist") from None
    group = repo.group
    if copy_permissions and group is not None:
        for kind, repo_kind in (
            (grants.USER_ON_REPO_GROUP, grants.USER_ON_REPO),
            (grants.USER_GROUP_ON_REPO_GROUP, grants.USER_GROUP_ON_REPO),
        ):
            for row in grants.rows_on(ctx.session, kind, group.group_id):
                level = row.permission.permission_name.replace("group.", "repository.", 1)
                grants.grant(ctx.session, repo_kind, getattr(row, kind.holder), repo.repo_id, level)
    else:
        level = "repository.none" if repo.private else default_level(ctx.session, "repository")
        default = queries.user_by_name(ctx.session, "default")
        assert default is not None
        grants.grant(ctx.session, grants.USER_ON_REPO, default.user_id, repo.repo_id, level)
    ctx.session.add(UserFollowing(user_id=repo.owner_id, follows_repository_id=repo.repo_id))
    ctx.session.flush()


def refresh_changeset_cache(ctx: CallContext, repo: Repository) -> None:
    """Read the newest changeset from disk into the row (``last_changeset``)."""
    from repohost.git import read

    with read.open_repo(ctx.store.path_for(repo.repo_name)) as git_repo:
        changeset = read.last_changeset(git_repo)
    repo.changeset_cache = {**changeset, "date": changeset["date"].isoformat()}


def remove_directory(ctx: CallContext, name: str) -> None:
    """Move the directory to the trash now; restore it on rollback, purge it after commit."""
    trash = ctx.store.trash_repo(name)
    ctx.on_rollback(lambda: ctx.store.restore_repo(trash, name))
    ctx.after_commit(lambda: ctx.store.remove_trashed(trash))
