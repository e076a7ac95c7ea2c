"""Result objects exactly as Kallithea's API returns them (facts §2).

No object here ever carries an API key, a password hash or IP data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from repohost.db.models import Gist, RepoGroup, Repository, User, UserGroup
    from repohost.db.records import UserRecord


def user_object(
    user: User | UserRecord, extra_emails: Iterable[str] | None = None
) -> dict[str, Any]:
    """Facts §2.1: the primary e-mail first, then the extra ones.

    ``user`` is a ``User``, or a ``UserRecord`` with its ``extra_emails`` given.
    """
    if extra_emails is None:  # a User: its relationship
        extra_emails = (e.email for e in user.extra_emails)  # type: ignore[union-attr]
    return {
        "user_id": user.user_id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "emails": [user.email, *extra_emails],
        "active": user.active,
        "admin": user.admin,
    }


def user_group_object(group: UserGroup) -> dict[str, Any]:
    """Facts §2.4, with members."""
    return {
        "users_group_id": group.users_group_id,
        "group_name": group.users_group_name,
        "group_description": group.user_group_description,
        "active": group.users_group_active,
        "owner": group.owner.username,
        "members": [user_object(m.user) for m in group.members],
    }


def mask_credentials(url: str | None) -> str | None:
    """``https://user:*****@host/x``: the password of a clone URI replaced (DECISIONS.md).

    A URL with a user name and no password (``https://<token>@host/x``) carries a
    token in the user name, so the whole user part is masked.
    """
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    if parts.password is None:  # a token used as the user name is a secret too
        return urlunsplit(parts._replace(netloc=f"*****@{host}"))
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:*****@{host}"))


def repo_object(repo: Repository, *, show_credentials: bool) -> dict[str, Any]:
    """Facts §2.2 (0.7) plus 0.3's locking fields; clone URI masked unless allowed."""
    landing_type, _, landing_name = repo.landing_rev.partition(":")
    locked_by, locked_date = None, None
    if repo.locked:
        locked_by, locked_date = _lock_holder(repo)
    return {
        "repo_id": repo.repo_id,
        "repo_name": repo.repo_name,
        "repo_type": repo.repo_type,
        "clone_uri": repo.clone_uri if show_credentials else mask_credentials(repo.clone_uri),
        "private": repo.private,
        "created_on": repo.created_on,
        "description": repo.description,
        "landing_rev": [landing_type, landing_name],
        "owner": repo.owner.username,
        "fork_of": repo.fork.repo_name if repo.fork is not None else None,
        "enable_statistics": repo.enable_statistics,
        "enable_downloads": repo.enable_downloads,
        "enable_locking": repo.enable_locking,
        "locked_by": locked_by,
        "locked_date": locked_date,
        "last_changeset": _changeset_cache(repo),
    }


def _changeset_cache(repo: Repository) -> dict[str, Any]:
    cache = repo.changeset_cache
    if not cache:  # a row nobody has read from disk yet (refresh_changeset_cache)
        from repohost.git.read import EMPTY_CHANGESET

        return dict(EMPTY_CHANGESET)
    return {**cache, "date": datetime.fromisoformat(cache["date"])}


def _lock_holder(repo: Repository) -> tuple[dict[str, Any] | None, datetime | None]:
    from sqlalchemy.orm import object_session

    from repohost.db.models import User

    user_id, _, since = (repo.locked or "").partition(":")
    session = object_session(repo)
    holder = session.get(User, int(user_id)) if session and user_id.isdigit() else None
    when = datetime.fromtimestamp(float(since), UTC).replace(tzinfo=None) if since else None
    return (user_object(holder) if holder else None), when


def repo_group_object(group: RepoGroup, repositories: list[str]) -> dict[str, Any]:
    """Facts §2.3; ``repositories`` are the full names directly in the group."""
    return {
        "group_id": group.group_id,
        "group_name": group.group_name,
        "group_description": group.group_description,
        "parent_group": group.parent_group.group_name if group.parent_group else None,
        "repositories": repositories,
        "owner": group.owner.username,
    }


def gist_object(gist: Gist, base_url: str) -> dict[str, Any]:
    """Facts §2.6."""
    return {
        "gist_id": gist.gist_id,
        "type": gist.gist_type,
        "access_id": gist.gist_access_id,
        "description": gist.gist_description,
        "url": f"{base_url}/_admin/gists/{gist.gist_access_id}",
        "expires": float(gist.gist_expires),
        "created_on": gist.created_on,
    }


def members(user_rows: list[Any], group_rows: list[Any]) -> list[dict[str, str]]:
    """Facts §2.5: users first, then user groups, in the order of their rows."""
    return [
        {"name": row.user.username, "type": "user", "permission": row.permission.permission_name}
        for row in user_rows
    ] + [
        {
            "name": row.users_group.users_group_name,
            "type": "user_group",
            "permission": row.permission.permission_name,
        }
        for row in group_rows
    ]
