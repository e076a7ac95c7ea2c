"""Repository logic shared by the method modules: access, directories in step with rows.

Every change to a repository directory happens inside the call's database
transaction and registers its undo, so a failure on either side leaves both
as they were (see ``CallContext.on_rollback``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from repohost.auth.permissions import at_least, default_level
from repohost.db import grants, queries
from repohost.db.models import Job, RepoGroup, Repository, User, UserFollowing
from repohost.db.tables import fits
from repohost.methods._objects import repo_object
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError

LANDING_TYPES = ("rev", "branch", "tag", "book")

#: View keywords of the key-accessible GET URLs (``/<repo>/raw/...``): a repository
#: or group segment spelled like one would make those URLs ambiguous.
RESERVED_SEGMENTS = frozenset(
    {
        "raw",
        "rawfile",
        "archive",
        "changeset-diff",
        "raw-changeset",
        "changeset-patch",
        "changeset-download",
        "feed",
    }
)


def reserved(full_name: str) -> bool:
    return any(segment in RESERVED_SEGMENTS for segment in full_name.split("/"))


def not_found(repoid: object) -> JSONRPCError:
    return JSONRPCError(f"repository `{repoid}` does not exist")


def repo_with(ctx: CallContext, repoid: int | str, level: str) -> Repository:
    """The repository, if the caller has ``level`` on it; otherwise it "does not exist"."""
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None or not at_least(ctx.caller.repo_permission(repo.repo_id), level):
        raise not_found(repoid)
    return repo


def locked_repo_with(ctx: CallContext, repoid: int | str, level: str) -> Repository:
    """``repo_with``, then the repository's write lock, then the row read again.

    A writer that read the row before another one renamed or deleted it must
    not act on the old name: after the lock it sees the row as it now is, or
    that it is gone.
    """
    repo = repo_with(ctx, repoid, level)
    ctx.lock_repository(repo.repo_id)
    fresh = ctx.session.get(Repository, repo.repo_id, populate_existing=True)
    if fresh is None or not at_least(ctx.caller.repo_permission(fresh.repo_id), level):
        raise not_found(repoid)
    return fresh


def show_credentials(ctx: CallContext, repo: Repository) -> bool:
    """Only admins and repository admins see a clone URI's password (DECISIONS.md)."""
    return ctx.caller.is_admin or ctx.caller.repo_permission(repo.repo_id) == "repository.admin"


def result(ctx: CallContext, repo: Repository) -> dict[str, Any]:
    answer = repo_object(repo, show_credentials=show_credentials(ctx, repo))
    if repo.fork is not None and not may_read(ctx, repo.fork.repo_id):
        answer["fork_of"] = None  # a private origin's name is not shown through its forks
    return answer


def may_read(ctx: CallContext, repo_id: int) -> bool:
    """Whether the caller may read the repository (for admins, without a query)."""
    return ctx.caller.is_admin or at_least(ctx.caller.repo_permission(repo_id), "read")


def valid_landing_rev(value: str) -> bool:
    kind, sep, name = value.partition(":")
    return kind in LANDING_TYPES and bool(sep and name) and fits(Repository.landing_rev, value)


def name_taken(ctx: CallContext, full_name: str) -> Repository | None:
    """An existing repository whose name equals ``full_name`` ignoring case.

    Names differing only in case would collide on case-insensitive clients
    (and file systems), so they count as taken.
    """
    return ctx.session.scalars(
        select(Repository).where(func.lower(Repository.repo_name) == full_name.lower())
    ).first()


def group_taken(ctx: CallContext, full_name: str, except_group: RepoGroup | None = None) -> bool:
    """Whether a repository group has ``full_name``, ignoring case (see ``name_taken``)."""
    query = select(RepoGroup.group_id).where(func.lower(RepoGroup.group_name) == full_name.lower())
    if except_group is not None:
        query = query.where(RepoGroup.group_id != except_group.group_id)
    return ctx.session.scalars(query.limit(1)).first() is not None


def check_create_rights(ctx: CallContext, full_name: str, owner: int | str | None) -> User:
    """Kallithea 0.7's checks before creating (or forking to) ``full_name``; returns the owner."""
    group_path, slash, _last = full_name.rpartition("/")
    if slash:
        group = queries.repo_group_by_name(ctx.session, group_path)
        if group is None:
            raise JSONRPCError(f"repo group `{group_path}` not found")
        permission = ctx.caller.repo_group_permission(group.group_id)
        if not ctx.caller.is_admin and not at_least(permission, "write"):
            if not at_least(permission, "read"):  # a group hidden from the caller: as if missing
                raise JSONRPCError(f"repo group `{group_path}` not found")
            raise JSONRPCError(f"no permission to create repo in {group_path}")
    elif not ctx.caller.has_global("hg.create.repository"):
        raise JSONRPCError("no permission to create top level repo")
    if owner is not None and not ctx.caller.is_admin:
        raise JSONRPCError("Only Kallithea admin can specify `owner` param")
    return ctx.named_user(owner)


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


@contextmanager
def git_data(ctx: CallContext, repo_name: str, repoid: int | str) -> Iterator[Any]:
    """The repository's git data (a dulwich ``Repo``), for a method that found its row.

    A directory that is gone or unsafe (``StorageError``, e.g. swapped for a link)
    answers as a missing repository would: ``repository `<repoid>` does not exist``.
    """
    from repohost.git import read
    from repohost.git.errors import StorageError

    try:
        with read.open_repo(ctx.store.path_for(repo_name)) as git_repo:
            yield git_repo
    except StorageError:
        raise not_found(repoid) from None


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


# --- clone URIs, and work handed to the worker (``repohost.jobs``) ----------------------------

#: A fork is copied during the call when the source's ``objects/`` holds at most this
#: many bytes in at most this many files (an estimate, not measured on EFS: a few
#: seconds at its burst throughput, well inside API Gateway's 29 s); a bigger one
#: gets an empty repository that a job fills from the source.
FORK_SYNC_BYTES = 64 * 1024 * 1024
FORK_SYNC_FILES = 2000


def check_clone_uri(ctx: CallContext, uri: str) -> None:
    """Refuse a ``clone_uri`` breaking a rule of ``repohost.remotes`` (the error names it)."""
    from repohost.remotes import RemotePolicy, RemoteRefused, check_clone_uri

    try:
        check_clone_uri(uri, RemotePolicy.from_settings(ctx.settings))
    except RemoteRefused as exc:
        raise JSONRPCError(str(exc)) from None


def queue_job(ctx: CallContext, kind: str, repo: Repository, clone_uri: str | None = None) -> Job:
    """Queue a job for ``repo`` crediting the caller; it is sent once the call commits."""
    from repohost import jobs

    payload: dict[str, Any] = {"user_id": ctx.caller.user_id, "ip": ctx.ip}
    if clone_uri:
        payload["clone_uri"] = clone_uri
    job = jobs.enqueue(ctx.session, kind, repo.repo_id, payload)
    assert job is not None  # only a repeated deduplication id yields none
    return job


def fork_is_quick(ctx: CallContext, source_name: str) -> bool:
    """Whether the source is small enough to fork during the call (counting stops early)."""
    import os

    from repohost.git.errors import StorageError

    try:
        objects = ctx.store.path_for(source_name) / "objects"
    except StorageError:  # an unsafe path: the copy (``clone_local``) refuses it with the reason
        return True
    files_left, bytes_left = FORK_SYNC_FILES, FORK_SYNC_BYTES
    for folder, _dirs, files in os.walk(objects):
        for name in files:
            files_left -= 1
            try:
                bytes_left -= os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
            if files_left < 0 or bytes_left < 0:
                return False
    return True
