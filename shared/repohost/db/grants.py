"""Writing permission rows: one upsert and one delete for every kind of grant.

A grant replaces the holder's existing row on the object (there is at most
one per holder and object, as in Kallithea).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from repohost.db import queries
from repohost.db.models import (
    Permission,
    UserGroupRepoGroupToPerm,
    UserGroupRepoToPerm,
    UserRepoGroupToPerm,
    UserRepoToPerm,
    UserUserGroupToPerm,
)


@dataclass(frozen=True, slots=True)
class GrantKind:
    table: Any
    holder: str  # column naming who holds the permission
    target: str  # column naming the object it is on


USER_ON_REPO = GrantKind(UserRepoToPerm, "user_id", "repository_id")
USER_GROUP_ON_REPO = GrantKind(UserGroupRepoToPerm, "users_group_id", "repository_id")
USER_ON_REPO_GROUP = GrantKind(UserRepoGroupToPerm, "user_id", "group_id")
USER_GROUP_ON_REPO_GROUP = GrantKind(UserGroupRepoGroupToPerm, "users_group_id", "group_id")
USER_ON_USER_GROUP = GrantKind(UserUserGroupToPerm, "user_id", "user_group_id")


def _where(kind: GrantKind, holder_id: int, target_id: int) -> tuple[Any, Any]:
    return (
        getattr(kind.table, kind.holder) == holder_id,
        getattr(kind.table, kind.target) == target_id,
    )


def grant(
    session: Session, kind: GrantKind, holder_id: int, target_id: int, permission: str | Permission
) -> None:
    perm = (
        permission
        if isinstance(permission, Permission)
        else queries.get_permission(session, permission)
    )
    if perm is None:
        raise ValueError(f"no permission {permission!r}")
    row = session.scalars(select(kind.table).where(*_where(kind, holder_id, target_id))).first()
    if row is None:
        session.add(kind.table(**{kind.holder: holder_id, kind.target: target_id}, permission=perm))
    else:
        row.permission = perm
    session.flush()


def revoke(session: Session, kind: GrantKind, holder_id: int, target_id: int) -> None:
    session.execute(delete(kind.table).where(*_where(kind, holder_id, target_id)))


def rows_on(session: Session, kind: GrantKind, target_id: int) -> list[Any]:
    """The rows on one object, in the order they were made."""
    pk = kind.table.__mapper__.primary_key[0]
    return list(
        session.scalars(
            select(kind.table).where(getattr(kind.table, kind.target) == target_id).order_by(pk)
        )
    )
