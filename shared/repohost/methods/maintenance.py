"""Maintenance: ``rescan_repos``, ``invalidate_cache``, and 0.3's ``lock`` / ``get_locks``.

``rescan_repos`` adopts bare git repositories put under the root by other
means (a copied Kallithea root, ``git clone --bare``), as Kallithea does
(facts §6.2). ``lock`` and ``get_locks`` are Kallithea 0.3's (facts §3.1,
§6.7): the lock is advisory, recorded on the repository as
``"<user_id>:<unix time>"``; nothing in repohost refuses work because of it.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from repohost import repos
from repohost.auth.permissions import at_least, default_level
from repohost.db import grants, queries
from repohost.db.models import CacheInvalidation, RepoGroup, Repository, User
from repohost.db.records import as_id
from repohost.methods.users import NOT_SAME_USER
from repohost.rpc.context import CallContext
from repohost.rpc.encoding import dumps
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

log = logging.getLogger("repohost.maintenance")

NOT_FOUND = "repository `<repoid>` does not exist"
RESCAN_FAILED = "Error occurred during rescan repositories action"
INVALIDATE_FAILED = "Error occurred during cache invalidation action"

#: What ``git init`` writes into ``description``; Kallithea calls such a repository unnamed.
_GIT_DEFAULT_DESCRIPTION = "Unnamed repository"
_DESCRIPTION_LIMIT = 4096


class _Skip(Exception):
    """This directory cannot be adopted; the rescan logs why and goes on."""


# --- rescan_repos ---------------------------------------------------------------------------


@api_method(admin_only=True, errors=(RESCAN_FAILED,))
def rescan_repos(ctx: CallContext, remove_obsolete: bool = False) -> dict[str, list[str]]:
    """Adopt bare git repositories found under the root; list (or delete) rows missing on disk.

    ``removed`` lists the missing repositories whether or not ``remove_obsolete``
    is set; only with it are their rows deleted (forks detached, nothing on
    disk touched). A directory that cannot be adopted is skipped and logged.
    """
    # Repositories a job is still filling are not "missing" (their directory may come later).
    from repohost.jobs.worker import PENDING

    try:
        # First undo what calls killed long ago left half-done, lest it be adopted.
        from repohost.git.storage import RepoStore
        from repohost.recovery import reconcile

        reconcile(ctx.session, RepoStore(ctx.store.root))
        on_disk = set(ctx.store.iter_repositories())
        known = {
            name: state
            for name, state in ctx.session.execute(
                select(Repository.repo_name, Repository.repo_state)
            )
        }
        added = [name for name in sorted(on_disk - known.keys()) if _adopt(ctx, name)]
        missing = sorted(
            name for name, state in known.items() if name not in on_disk and state != PENDING
        )
        removed = [name for name in missing if not remove_obsolete or _forget(ctx, name)]
    except Exception:
        log.exception("rescan failed", extra={"request_id": ctx.request_id})
        raise JSONRPCError(RESCAN_FAILED) from None
    return {"added": added, "removed": removed}


def _first_admin(ctx: CallContext) -> User:
    admin = ctx.session.scalars(select(User).where(User.admin).order_by(User.user_id)).first()
    if admin is None:
        raise _Skip("there is no admin to own it")
    return admin


def _adopt(ctx: CallContext, name: str) -> bool:
    """Register one directory (and its missing groups); False when it was skipped."""
    try:
        with ctx.session.begin_nested():
            if repos.reserved(name):
                raise _Skip("a segment is a reserved view keyword")
            clash = repos.name_taken(ctx, name)
            if clash is not None:
                raise _Skip(f"it differs only in case from repository {clash.repo_name!r}")
            owner = _first_admin(ctx)
            repo = Repository(
                repo_name=name,
                repo_type="git",
                description=_description(ctx.store.path_for(name)) or f"{name} repository",
                private=False,
                enable_statistics=False,
                enable_downloads=True,
                owner=owner,
                group=_ensure_groups(ctx, name, owner),
            )
            repos.insert(ctx, repo, copy_permissions=False)
            repos.refresh_changeset_cache(ctx, repo)
            ctx.session.flush()
    except _Skip as exc:
        log.warning("rescan: skipping %r: %s", name, exc)
        return False
    except Exception as exc:
        # Kallithea 0.7 skips a repository that fails to register and goes on.
        log.warning("rescan: skipping %r: %s: %s", name, type(exc).__name__, exc)
        return False
    log.info("rescan: added %r", name)
    return True


def _description(path: Path) -> str:
    """The repository's own ``description`` file, unless it is git's placeholder.

    Opened without following a symbolic link and read only so far, so a
    planted link or a huge file cannot make the rescan read anything else.
    """
    try:
        fd = os.open(path / "description", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        text = handle.read(_DESCRIPTION_LIMIT).decode("utf-8", "replace").strip()
    return "" if text.startswith(_GIT_DEFAULT_DESCRIPTION) else text


def _ensure_groups(ctx: CallContext, name: str, owner: User) -> RepoGroup | None:
    """The repository's group, creating each missing level as Kallithea's rescan does."""
    parent: RepoGroup | None = None
    segments = name.split("/")[:-1]
    for depth in range(1, len(segments) + 1):
        path = "/".join(segments[:depth])
        group = queries.repo_group_by_name(ctx.session, path)
        if group is None:
            if repos.name_taken(ctx, path) is not None:
                raise _Skip(f"group {path!r} would have a repository's name")
            group = RepoGroup(
                group_name=path,
                group_description=f"{path} group",
                owner=owner,
                parent_group=parent,
            )
            ctx.session.add(group)
            ctx.session.flush()
            default = queries.user_by_name(ctx.session, "default")
            assert default is not None
            level = default_level(ctx.session, "group")
            kind = grants.USER_ON_REPO_GROUP
            grants.grant(ctx.session, kind, default.user_id, group.group_id, level)
            log.info("rescan: added group %r", path)
        parent = group
    return parent


def _forget(ctx: CallContext, name: str) -> bool:
    """Delete the row of a repository missing on disk, detaching its forks.

    The repository's write lock is taken and the disk checked again first, so
    a rename or creation finishing meanwhile is not mistaken for a loss.
    """
    repo = queries.get_repo(ctx.session, name)
    if repo is None:
        return False
    ctx.lock_repository(repo.repo_id)
    ctx.session.refresh(repo)
    if repo.repo_name != name or ctx.store.repo_exists(name):
        return False
    ctx.session.execute(
        update(Repository).where(Repository.fork_id == repo.repo_id).values(fork_id=None)
    )
    ctx.journal(f"user_deleted_repo:{name}")
    ctx.session.delete(repo)
    ctx.session.flush()
    log.info("rescan: removed %r from the database", name)
    return True


# --- invalidate_cache -----------------------------------------------------------------------


@api_method(
    access="admin, or repository.write on the repository",
    errors=(NOT_FOUND, INVALIDATE_FAILED),
)
def invalidate_cache(ctx: CallContext, repoid: int | str) -> dict[str, str]:
    """Re-read the repository's newest changeset from disk and mark its cache rows stale."""
    repo = repos.repo_with(ctx, repoid, "write")
    try:
        repos.refresh_changeset_cache(ctx, repo)
        ctx.session.execute(
            update(CacheInvalidation)
            .where(CacheInvalidation.cache_args == repo.repo_name)
            .values(cache_active=False)
        )
        ctx.session.flush()
    except Exception:
        log.exception("cache invalidation failed", extra={"request_id": ctx.request_id})
        raise JSONRPCError(INVALIDATE_FAILED) from None
    return {
        "msg": f"Cache for repository `{repoid}` was invalidated",
        "repository": repo.repo_name,
    }


# --- lock / get_locks (Kallithea 0.3) -------------------------------------------------------


def _lock_parts(repo: Repository) -> tuple[int | None, str | None]:
    """``(user id, time string)`` from the ``"<user_id>:<unix time>"`` column, or Nones."""
    if not repo.locked:
        return None, None
    user_id, _, since = repo.locked.partition(":")
    return (int(user_id) if user_id.isdigit() else None), (since or None)


@api_method(
    access=(
        "admin, or repository.write on the repository (non-admins only for themselves,"
        " by numeric id)"
    ),
    errors=(
        NOT_FOUND,
        NOT_SAME_USER,
        "user `<userid>` does not exist",
        "Error occurred locking repository `<repo_name>`",
    ),
)
def lock(
    ctx: CallContext,
    repoid: int | str,
    locked: bool | None = None,
    userid: int | str | None = None,
) -> dict[str, Any]:
    """Show a repository's lock, or with ``locked`` set or clear it (for ``userid``).

    Advisory, as in Kallithea 0.3 whatever ``enable_locking`` says; the
    result shapes and messages are 0.3's (facts §3.1).
    """
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None:
        raise repos.not_found(repoid)
    if not ctx.caller.is_admin:
        if not at_least(ctx.caller.repo_permission(repo.repo_id), "write"):
            raise repos.not_found(repoid)
        if userid is not None and as_id(userid) != ctx.caller.user_id:
            raise JSONRPCError(NOT_SAME_USER)
    user = ctx.named_user(userid)
    name = repo.repo_name
    if locked is None:
        return _lock_state(ctx, repo)
    try:
        since: float | None = None
        if locked:
            since = time.time()
            repo.locked = f"{user.user_id}:{since}"
        else:
            repo.locked = None
        ctx.session.flush()
    except Exception:
        log.exception("lock change failed", extra={"request_id": ctx.request_id})
        raise JSONRPCError(f"Error occurred locking repository `{name}`") from None
    return {
        "repo": name,
        "locked": locked,
        "locked_since": since,
        "locked_by": user.username,
        "lock_state_changed": True,
        "msg": f"User `{user.username}` set lock state for repo `{name}` to `{locked}`",
    }


def _lock_state(ctx: CallContext, repo: Repository) -> dict[str, Any]:
    name = repo.repo_name
    holder_id, since = _lock_parts(repo)
    if since is None:
        return {
            "repo": name,
            "locked": False,
            "locked_since": None,
            "locked_by": None,
            "lock_state_changed": False,
            "msg": f"Repo `{name}` not locked.",
        }
    holder = ctx.session.get(User, holder_id) if holder_id is not None else None
    username = holder.username if holder is not None else None
    when = datetime.fromtimestamp(float(since), UTC).replace(tzinfo=None)
    return {
        "repo": name,
        "locked": True,
        "locked_since": since,
        "locked_by": username,
        "lock_state_changed": False,
        "msg": f"Repo `{name}` locked by `{username}` on `{dumps(when)}`.",
    }


@api_method(
    access=(
        "any user for their own locks; admin for anyone's (without userid: admins see"
        " every lock, other users only their own)"
    ),
    errors=(NOT_SAME_USER, "user `<userid>` does not exist"),
)
def get_locks(ctx: CallContext, userid: int | str | None = None) -> list[dict[str, Any]]:
    """The locked repositories, as repository objects; by default only the caller's.

    Kallithea 0.3 lists every lock when ``userid`` is omitted, even to a
    non-admin (private repositories included); repohost shows a non-admin
    only their own locks, on repositories they may still read.
    """
    own = as_id(userid) == ctx.caller.user_id
    if not ctx.caller.is_admin and userid is not None and not own:
        raise JSONRPCError(NOT_SAME_USER)
    holder: User | None = None
    if userid is not None or not ctx.caller.is_admin:
        holder = ctx.named_user(userid)
    rows = ctx.session.scalars(
        select(Repository).where(Repository.locked.is_not(None)).order_by(Repository.repo_id)
    )
    readable = None if ctx.caller.is_admin else ctx.caller.repo_permissions()
    found = []
    for repo in rows:
        holder_id, since = _lock_parts(repo)
        if since is None or (holder is not None and holder_id != holder.user_id):
            continue
        if readable is not None and not at_least(readable.get(repo.repo_id, ""), "read"):
            continue
        found.append(repos.result(ctx, repo))
    return found
