"""ORM lookups shared by the methods, with Kallithea's identifier rules (``records.identify``).

Callers get None for "no such object" and report it with the object's own
not-found message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from repohost.db.models import Gist, Permission, RepoGroup, Repository, User, UserEmail, UserGroup
from repohost.db.records import identify


def get_user(session: Session, ident: Any) -> User | None:
    return _by_id_or_name(session, User, User.username, ident)


def user_by_name(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def user_group_by_name(session: Session, name: str) -> UserGroup | None:
    return session.scalars(
        select(UserGroup).where(UserGroup.users_group_name == name)
    ).one_or_none()


def get_user_group(session: Session, ident: Any) -> UserGroup | None:
    return _by_id_or_name(session, UserGroup, UserGroup.users_group_name, ident)


def _by_id_or_name(session: Session, entity: Any, name_column: Any, ident: Any) -> Any:
    key = identify(ident)
    if key is None:
        return None
    if isinstance(key, int):
        return session.get(entity, key)
    return session.scalars(select(entity).where(name_column == key)).one_or_none()


def get_repo(session: Session, ident: Any) -> Repository | None:
    """By id or full name (``group/sub/repo``)."""
    return _by_id_or_name(session, Repository, Repository.repo_name, ident)


def repo_group_by_name(session: Session, path: str) -> RepoGroup | None:
    return session.scalars(select(RepoGroup).where(RepoGroup.group_name == path)).one_or_none()


def get_repo_group(session: Session, ident: Any) -> RepoGroup | None:
    """By id or full path (``group/sub``)."""
    return _by_id_or_name(session, RepoGroup, RepoGroup.group_name, ident)


def get_gist(session: Session, ident: Any) -> Gist | None:
    """By id or access id (public gists use their id as access id)."""
    gist = _by_id_or_name(session, Gist, Gist.gist_access_id, ident)
    if gist is None and isinstance(ident, str):
        gist = session.scalars(select(Gist).where(Gist.gist_access_id == ident)).one_or_none()
    return gist


def get_permission(session: Session, name: Any) -> Permission | None:
    if not isinstance(name, str):
        return None
    return session.scalars(
        select(Permission).where(Permission.permission_name == name)
    ).one_or_none()


def email_taken(session: Session, email: str, except_user_id: int | None = None) -> bool:
    """Whether any user has ``email`` as main or extra address (case-insensitive)."""
    lowered = email.lower()
    main = select(User.user_id).where(func.lower(User.email) == lowered)
    extra = select(UserEmail.user_id).where(func.lower(UserEmail.email) == lowered)
    if except_user_id is not None:
        main = main.where(User.user_id != except_user_id)
        extra = extra.where(UserEmail.user_id != except_user_id)
    return session.execute(main.union(extra).limit(1)).first() is not None
