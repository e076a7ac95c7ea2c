"""Repositories: reading, creating, changing, forking, deleting, and their permissions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from repohost import repos
from repohost.auth.permissions import at_least
from repohost.db import grants, queries
from repohost.db.models import Repository, User, UserFollowing
from repohost.methods._objects import members, repo_object, user_object
from repohost.methods.user_groups import group_with
from repohost.rpc.context import CallContext
from repohost.rpc.errors import ACCESS_DENIED, JSONRPCError
from repohost.rpc.registry import api_method

NOT_FOUND = "repository `<repoid>` does not exist"


@api_method(access="admin, or repository.read on the repository", errors=(NOT_FOUND,))
def get_repo(
    ctx: CallContext,
    repoid: int | str,
    with_revision_names: bool = False,
    with_pullrequests: bool = False,
) -> dict[str, Any]:
    """A repository with its permission members and followers."""
    repo = repos.repo_with(ctx, repoid, "read")
    user_rows = grants.rows_on(ctx.session, grants.USER_ON_REPO, repo.repo_id)
    group_rows = grants.rows_on(ctx.session, grants.USER_GROUP_ON_REPO, repo.repo_id)
    followers = ctx.session.scalars(
        select(User)
        .join(UserFollowing, UserFollowing.user_id == User.user_id)
        .where(UserFollowing.follows_repository_id == repo.repo_id)
        .order_by(UserFollowing.user_following_id)
    )
    answer = {
        **repos.result(ctx, repo),
        "members": members(user_rows, group_rows),
        "followers": [user_object(u) for u in followers],
    }
    if with_revision_names:
        from repohost.git import read

        with read.open_repo(ctx.store.path_for(repo.repo_name)) as git_repo:
            answer |= {"tags": read.tags(git_repo), "branches": read.branches(git_repo)}
        answer["bookmarks"] = {}
    if with_pullrequests:
        answer["pull_requests"] = []
    return answer


@api_method(access="any user; lists the repositories the caller may read")
def get_repos(ctx: CallContext) -> list[dict[str, Any]]:
    """Every repository the caller may read, by name; a fixed number of queries."""
    levels = ctx.caller.repo_permissions()
    readable = [repo_id for repo_id, level in levels.items() if at_least(level, "read")]
    rows = ctx.session.scalars(
        select(Repository)
        .where(Repository.repo_id.in_(readable))
        .order_by(Repository.repo_name)
        .options(joinedload(Repository.owner), joinedload(Repository.fork))
    )
    admin = ctx.caller.is_admin
    return [
        repo_object(repo, show_credentials=admin or levels[repo.repo_id].endswith(".admin"))
        for repo in rows
    ]


@api_method(
    access="admin, or repository.read on the repository",
    errors=(
        NOT_FOUND,
        "failed to get repo: `<repo_name>` nodes",
        "ret_type must be one of all,dirs,files",
    ),
)
def get_repo_nodes(
    ctx: CallContext, repoid: int | str, revision: str, root_path: str, ret_type: str = "all"
) -> list[dict[str, str]]:
    """Files and directories below ``root_path`` at ``revision``, all the way down."""
    from repohost.git import read
    from repohost.git.errors import GitError

    repo = repos.repo_with(ctx, repoid, "read")
    try:
        with read.open_repo(ctx.store.path_for(repo.repo_name)) as git_repo:
            commit = read.resolve_revision(git_repo, revision)
            nodes = read.list_nodes(git_repo, commit, root_path)
    except GitError:
        raise JSONRPCError(f"failed to get repo: `{repo.repo_name}` nodes") from None
    if ret_type not in ("all", "dirs", "files"):
        raise JSONRPCError("ret_type must be one of all,dirs,files")
    if ret_type == "all":
        return nodes
    wanted = "dir" if ret_type == "dirs" else "file"
    return [node for node in nodes if node["type"] == wanted]


def _check_new_repo_fields(
    repo_name: str, repo_type: str | None, landing_rev: str, failed: JSONRPCError
) -> str:
    from repohost.git.errors import InvalidName
    from repohost.git.names import validate_repo_name

    try:
        validate_repo_name(repo_name)
    except InvalidName:
        raise failed from None
    if repo_type not in (None, "git"):
        raise JSONRPCError(
            f"repository type `{repo_type}` is not supported: repohost hosts git repositories"
        )
    if not repos.valid_landing_rev(landing_rev):
        raise failed
    return "git"


@api_method(
    access=(
        "admin; in a group: group.write on it; at top level: the global permission"
        " hg.create.repository"
    ),
    errors=(
        "repo group `<path>` not found",
        "no permission to create repo in <path>",
        "no permission to create top level repo",
        "Only Kallithea admin can specify `owner` param",
        "user `<owner>` does not exist",
        "repo `<repo_name>` already exist",
        "failed to create repository `<repo_name>`",
    ),
)
def create_repo(
    ctx: CallContext,
    repo_name: str,
    owner: int | str | None = None,
    repo_type: str | None = None,
    description: str = "",
    private: bool = False,
    clone_uri: str | None = None,
    landing_rev: str = "rev:tip",
    enable_statistics: bool | None = None,
    enable_downloads: bool | None = None,
    copy_permissions: bool = False,
) -> dict[str, Any]:
    """Create an empty bare git repository (``a/b/name`` inside existing groups)."""
    owner_user = repos.check_create_rights(ctx, repo_name, owner)
    if repos.name_taken(ctx, repo_name) is not None:
        raise JSONRPCError(f"repo `{repo_name}` already exist")
    failed = JSONRPCError(f"failed to create repository `{repo_name}`")
    repo_type = _check_new_repo_fields(repo_name, repo_type, landing_rev, failed)
    if clone_uri:
        raise JSONRPCError("creating a repository from `clone_uri` is not supported yet")
    repo = Repository(
        repo_name=repo_name,
        repo_type=repo_type,
        description=description or repo_name,
        private=private,
        landing_rev=landing_rev,
        enable_statistics=bool(enable_statistics),
        enable_downloads=True if enable_downloads is None else enable_downloads,
        owner=owner_user,
        group=repos.group_of(ctx, repo_name),
    )
    repos.insert(ctx, repo, copy_permissions=copy_permissions)
    ctx.lock_repository(repo.repo_id)
    from repohost.git.errors import GitError

    try:
        ctx.store.create_repo(repo_name, description=repo.description)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.remove_trashed(ctx.store.trash_repo(repo_name)))
    repos.refresh_changeset_cache(ctx, repo)
    ctx.journal("user_created_repo", repo)
    return {"msg": f"Created new repository `{repo_name}`", "success": True}


@api_method(
    access="admin, or the global hg.fork.repository with read on the source and create rights",
    errors=(
        ACCESS_DENIED,
        NOT_FOUND,
        "repo group `<path>` not found",
        "no permission to create repo in <path>",
        "no permission to create top level repo",
        "Only Kallithea admin can specify `owner` param",
        "fork `<fork_name>` already exist",
        "repo `<fork_name>` already exist",
        "failed to fork repository `<repo_name>` as `<fork_name>`",
    ),
)
def fork_repo(
    ctx: CallContext,
    repoid: int | str,
    fork_name: str,
    owner: int | str | None = None,
    description: str = "",
    copy_permissions: bool = False,
    private: bool = False,
    landing_rev: str = "rev:tip",
) -> dict[str, Any]:
    """Copy a repository (all branches and tags) into a new one that records its origin."""
    if not ctx.caller.has_global("hg.fork.repository"):
        raise JSONRPCError(ACCESS_DENIED)
    source = repos.repo_with(ctx, repoid, "read")
    owner_user = repos.check_create_rights(ctx, fork_name, owner)
    existing = repos.name_taken(ctx, fork_name)
    if existing is not None:
        kind = "fork" if existing.fork_id is not None else "repo"
        raise JSONRPCError(f"{kind} `{fork_name}` already exist")
    failed = JSONRPCError(f"failed to fork repository `{source.repo_name}` as `{fork_name}`")
    repo_type = _check_new_repo_fields(fork_name, source.repo_type, landing_rev, failed)
    fork = Repository(
        repo_name=fork_name,
        repo_type=repo_type,
        description=description or fork_name,
        private=private,
        landing_rev=landing_rev,
        enable_statistics=source.enable_statistics,
        enable_downloads=source.enable_downloads,
        owner=owner_user,
        group=repos.group_of(ctx, fork_name),
        fork=source,
    )
    repos.insert(ctx, fork, copy_permissions=False)
    if copy_permissions:
        for kind in (grants.USER_ON_REPO, grants.USER_GROUP_ON_REPO):
            for row in grants.rows_on(ctx.session, kind, source.repo_id):
                holder = getattr(row, kind.holder)
                grants.grant(ctx.session, kind, holder, fork.repo_id, row.permission)
    ctx.lock_repository(fork.repo_id)
    from repohost.git.errors import GitError

    try:
        ctx.store.clone_local(source.repo_name, fork_name, description=fork.description)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.remove_trashed(ctx.store.trash_repo(fork_name)))
    repos.refresh_changeset_cache(ctx, fork)
    ctx.journal(f"user_forked_repo:{fork_name}", source)
    ctx.journal(f"user_created_fork:{source.repo_name}", fork)
    return {"msg": f"Created fork of `{source.repo_name}` as `{fork_name}`", "success": True}


@api_method(
    access="admin, or repository.admin on the repository (see the README for moves)",
    errors=(
        NOT_FOUND,
        "repository group `<group>` does not exist",
        "no permission to create (or move) repo in <group_name>",
        "no permission to create (or move) top level repositories",
        "Only Kallithea admin can specify `owner` param",
        "user `<owner>` does not exist",
        "failed to update repo `<repoid>`",
    ),
)
def update_repo(
    ctx: CallContext,
    repoid: int | str,
    name: str | None = None,
    owner: int | str | None = None,
    group: int | str | None = None,
    description: str | None = None,
    private: bool | None = None,
    clone_uri: str | None = None,
    landing_rev: str | None = None,
    enable_statistics: bool | None = None,
    enable_downloads: bool | None = None,
) -> dict[str, Any]:
    """Change a repository's settings; ``name`` renames it, ``group`` moves it (with its files)."""
    repo = repos.repo_with(ctx, repoid, "admin")
    ctx.lock_repository(repo.repo_id)
    admin = ctx.caller.is_admin
    failed = JSONRPCError(f"failed to update repo `{repoid}`")
    target_group = repo.group
    if group is not None:
        target_group = queries.get_repo_group(ctx.session, group)
        if target_group is None:
            raise JSONRPCError(f"repository group `{group}` does not exist")
        level = ctx.caller.repo_group_permission(target_group.group_id)
        if not admin and not at_least(level, "write"):
            raise JSONRPCError(
                f"no permission to create (or move) repo in {target_group.group_name}"
            )
    last = repo.repo_name.rpartition("/")[2] if name is None else name
    if "/" in last:
        raise failed
    new_name = f"{target_group.group_name}/{last}" if target_group else last
    moving = new_name != repo.repo_name
    if moving and target_group is None and not ctx.caller.has_global("hg.create.repository"):
        raise JSONRPCError("no permission to create (or move) top level repositories")
    if owner is not None:
        if not admin:
            raise JSONRPCError("Only Kallithea admin can specify `owner` param")
        owner_user = queries.get_user(ctx.session, owner)
        if owner_user is None:
            raise JSONRPCError(f"user `{owner}` does not exist")
        repo.owner = owner_user
    if landing_rev is not None:
        if not repos.valid_landing_rev(landing_rev):
            raise failed
        repo.landing_rev = landing_rev
    if clone_uri is not None:
        repo.clone_uri = clone_uri or None
    if private is not None:
        repo.private = private
        if private:
            default = queries.user_by_name(ctx.session, "default")
            assert default is not None
            grants.grant(
                ctx.session, grants.USER_ON_REPO, default.user_id, repo.repo_id, "repository.none"
            )
    for field, value in (
        ("description", description),
        ("enable_statistics", enable_statistics),
        ("enable_downloads", enable_downloads),
    ):
        if value is not None:
            setattr(repo, field, value)
    if moving:
        _rename(ctx, repo, new_name, target_group, failed)
    ctx.session.flush()
    ctx.journal("user_updated_repo", repo)
    return {
        "msg": f"updated repo ID:{repo.repo_id} {repo.repo_name}",
        "repository": repos.result(ctx, repo),
    }


def _rename(
    ctx: CallContext, repo: Repository, new_name: str, group: Any, failed: JSONRPCError
) -> None:
    """Move row and directory together; either failing undoes both."""
    from repohost.git.errors import GitError, InvalidName
    from repohost.git.names import validate_repo_name

    try:
        validate_repo_name(new_name)
    except InvalidName:
        raise failed from None
    clash = repos.name_taken(ctx, new_name)
    if clash is not None and clash.repo_id != repo.repo_id:
        raise failed
    old_name = repo.repo_name
    repo.repo_name, repo.group = new_name, group
    ctx.session.flush()
    try:
        ctx.store.rename_repo(old_name, new_name)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.rename_repo(new_name, old_name))


def _delete(ctx: CallContext, repo: Repository, forks_mode: str) -> int:
    """Delete a repository (and, with ``delete``, its forks); return the number of forks."""
    forks = list(ctx.session.scalars(select(Repository).where(Repository.fork_id == repo.repo_id)))
    for fork in forks:
        if forks_mode == "detach":
            fork.fork = None
        else:
            _delete(ctx, fork, forks_mode)
    ctx.session.flush()
    ctx.lock_repository(repo.repo_id)
    name = repo.repo_name
    ctx.journal(f"user_deleted_repo:{name}")
    ctx.session.delete(repo)
    ctx.session.flush()
    repos.remove_directory(ctx, name)
    return len(forks)


@api_method(
    access="admin, or repository.admin on the repository",
    errors=(
        NOT_FOUND,
        "Cannot delete `<repo_name>` it still contains attached forks",
        "failed to delete repository `<repo_name>`",
    ),
)
def delete_repo(ctx: CallContext, repoid: int | str, forks: str = "") -> dict[str, Any]:
    """Delete a repository; ``forks`` = ``detach`` or ``delete`` when it has forks."""
    repo = repos.repo_with(ctx, repoid, "admin")
    name = repo.repo_name
    has_forks = ctx.session.scalars(
        select(Repository.repo_id).where(Repository.fork_id == repo.repo_id).limit(1)
    ).first()
    if has_forks is not None and forks not in ("detach", "delete"):
        raise JSONRPCError(f"Cannot delete `{name}` it still contains attached forks")
    from repohost.git.errors import GitError

    try:
        count = _delete(ctx, repo, forks)
    except GitError:
        raise JSONRPCError(f"failed to delete repository `{name}`") from None
    suffix = {"detach": f" Detached {count} forks", "delete": f" Deleted {count} forks"}
    return {"msg": f"Deleted repository `{name}`{suffix.get(forks, '')}", "success": True}


# --- permissions ----------------------------------------------------------------------------


def _repo_permission(ctx: CallContext, perm: str) -> str:
    if queries.get_permission(ctx.session, perm) is None:
        raise JSONRPCError(f"permission `{perm}` does not exist")
    if not perm.startswith("repository."):
        raise JSONRPCError(f"permission `{perm}` is invalid, should start with repository.")
    return perm


def _user_and_repo(ctx: CallContext, repoid: int | str, userid: int | str) -> tuple[Any, Any]:
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None:
        raise repos.not_found(repoid)
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    return repo, user


@api_method(
    admin_only=True,
    errors=(
        NOT_FOUND,
        "user `<userid>` does not exist",
        "permission `<perm>` does not exist",
        "permission `<perm>` is invalid, should start with repository.",
    ),
)
def grant_user_permission(
    ctx: CallContext, repoid: int | str, userid: int | str, perm: str
) -> dict[str, Any]:
    """Give a user a permission level on a repository (replacing any they had)."""
    repo, user = _user_and_repo(ctx, repoid, userid)
    grants.grant(
        ctx.session, grants.USER_ON_REPO, user.user_id, repo.repo_id, _repo_permission(ctx, perm)
    )
    ctx.journal(f"admin_granted_perm:{user.username}:{perm}", repo)
    return {
        "msg": f"Granted perm: `{perm}` for user: `{user.username}` in repo: `{repo.repo_name}`",
        "success": True,
    }


@api_method(admin_only=True, errors=(NOT_FOUND, "user `<userid>` does not exist"))
def revoke_user_permission(
    ctx: CallContext, repoid: int | str, userid: int | str
) -> dict[str, Any]:
    """Remove a user's own permission row on a repository (if any)."""
    repo, user = _user_and_repo(ctx, repoid, userid)
    grants.revoke(ctx.session, grants.USER_ON_REPO, user.user_id, repo.repo_id)
    ctx.journal(f"admin_revoked_perm:{user.username}", repo)
    return {
        "msg": f"Revoked perm for user: `{user.username}` in repo: `{repo.repo_name}`",
        "success": True,
    }


def _group_and_repo(ctx: CallContext, repoid: int | str, usergroupid: int | str) -> tuple[Any, Any]:
    """Repository admin on the repository and usergroup.read on the group (or admin)."""
    repo = repos.repo_with(ctx, repoid, "admin")
    return repo, group_with(ctx, usergroupid, "read")


@api_method(
    access="admin, or repository.admin on the repository and usergroup.read on the group",
    errors=(
        NOT_FOUND,
        "permission `<perm>` does not exist",
        "user group `<usergroupid>` does not exist",
    ),
)
def grant_user_group_permission(
    ctx: CallContext, repoid: int | str, usergroupid: int | str, perm: str
) -> dict[str, Any]:
    """Give a user group a permission level on a repository."""
    repo = repos.repo_with(ctx, repoid, "admin")
    perm = _repo_permission(ctx, perm)
    group = group_with(ctx, usergroupid, "read")
    grants.grant(ctx.session, grants.USER_GROUP_ON_REPO, group.users_group_id, repo.repo_id, perm)
    ctx.journal(f"admin_granted_perm_to_users_group:{group.users_group_name}:{perm}", repo)
    return {
        "msg": (
            f"Granted perm: `{perm}` for user group: `{group.users_group_name}`"
            f" in repo: `{repo.repo_name}`"
        ),
        "success": True,
    }


@api_method(
    access="admin, or repository.admin on the repository and usergroup.read on the group",
    errors=(NOT_FOUND, "user group `<usergroupid>` does not exist"),
)
def revoke_user_group_permission(
    ctx: CallContext, repoid: int | str, usergroupid: int | str
) -> dict[str, Any]:
    """Remove a user group's permission row on a repository (if any)."""
    repo, group = _group_and_repo(ctx, repoid, usergroupid)
    grants.revoke(ctx.session, grants.USER_GROUP_ON_REPO, group.users_group_id, repo.repo_id)
    ctx.journal(f"admin_revoked_perm_from_users_group:{group.users_group_name}", repo)
    return {
        "msg": (
            f"Revoked perm for user group: `{group.users_group_name}` in repo: `{repo.repo_name}`"
        ),
        "success": True,
    }
