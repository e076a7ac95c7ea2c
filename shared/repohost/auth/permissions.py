"""Who may do what: Kallithea 0.7's "highest wins" permission computation (facts §4).

For every object kind the level a user has is the highest of: the anonymous
``default`` user's row, the rows of the active user groups the user is in,
and the user's own row. Repositories add two rules: the owner is always
admin, and a private repository starts from ``none``. Admins have admin on
everything. Each computation is a fixed number of queries, whatever the
number of objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from repohost.auth.keys import DEFAULT_USER
from repohost.db.models import (
    Permission,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserGroupMember,
    UserGroupRepoGroupToPerm,
    UserGroupRepoToPerm,
    UserGroupToPerm,
    UserGroupUserGroupToPerm,
    UserRepoGroupToPerm,
    UserRepoToPerm,
    UserToPerm,
    UserUserGroupToPerm,
)

LEVELS = ("none", "read", "write", "admin")
_LEVEL_WEIGHT = {"none": 0, "read": 1, "write": 3, "admin": 4}

#: Global switches and their weights; per kind only the heaviest is kept.
GLOBAL_WEIGHTS = {
    "hg.create.none": 0,
    "hg.create.repository": 1,
    "hg.fork.none": 0,
    "hg.fork.repository": 1,
    "hg.usergroup.create.false": 0,
    "hg.usergroup.create.true": 1,
    "hg.register.none": 0,
    "hg.register.manual_activate": 1,
    "hg.register.auto_activate": 2,
    "hg.extern_activate.manual": 0,
    "hg.extern_activate.auto": 1,
}
OBJECT_PREFIXES = ("repository", "group", "usergroup")

ALL_PERMISSIONS = (
    "hg.admin",
    *GLOBAL_WEIGHTS,
    *(f"{prefix}.{level}" for prefix in OBJECT_PREFIXES for level in LEVELS),
)

#: What the anonymous user is given on a fresh install (facts §4.1).
DEFAULT_GLOBAL_PERMISSIONS = (
    "repository.read",
    "group.read",
    "usergroup.read",
    "hg.create.repository",
    "hg.fork.repository",
    "hg.usergroup.create.false",
    "hg.register.manual_activate",
    "hg.extern_activate.auto",
)


def weight(permission: str) -> int:
    """Weight of a permission name within its kind (unknown names weigh nothing)."""
    if permission in GLOBAL_WEIGHTS:
        return GLOBAL_WEIGHTS[permission]
    return _LEVEL_WEIGHT.get(permission.rpartition(".")[2], 0)


def kind(permission: str) -> str:
    return permission.rpartition(".")[0]


def highest(current: str | None, candidate: str | None) -> str | None:
    if candidate is None:
        return current
    if current is None or weight(candidate) > weight(current):
        return candidate
    return current


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one kind of object stores its permission rows."""

    prefix: str
    entity: Any
    object_id: Any  # the object's primary key column
    object_name: Any  # the column naming it in results
    user_table: Any
    user_object_col: Any
    group_table: Any
    group_object_col: Any


REPOS = _Kind(
    "repository",
    Repository,
    Repository.repo_id,
    Repository.repo_name,
    UserRepoToPerm,
    UserRepoToPerm.repository_id,
    UserGroupRepoToPerm,
    UserGroupRepoToPerm.repository_id,
)
REPO_GROUPS = _Kind(
    "group",
    RepoGroup,
    RepoGroup.group_id,
    RepoGroup.group_name,
    UserRepoGroupToPerm,
    UserRepoGroupToPerm.group_id,
    UserGroupRepoGroupToPerm,
    UserGroupRepoGroupToPerm.group_id,
)
USER_GROUPS = _Kind(
    "usergroup",
    UserGroup,
    UserGroup.users_group_id,
    UserGroup.users_group_name,
    UserUserGroupToPerm,
    UserUserGroupToPerm.user_group_id,
    UserGroupUserGroupToPerm,
    UserGroupUserGroupToPerm.target_user_group_id,
)


@dataclass
class AuthUser:
    """A user together with what it may do, computed lazily and cached for one call."""

    session: Session
    user: User
    _default_user_id: int | None = field(default=None, repr=False)

    @property
    def user_id(self) -> int:
        return self.user.user_id

    @property
    def is_admin(self) -> bool:
        return self.user.admin

    @cached_property
    def default_user_id(self) -> int:
        if self._default_user_id is not None:
            return self._default_user_id
        return self.session.scalars(select(User.user_id).where(User.username == DEFAULT_USER)).one()

    @cached_property
    def _active_group_ids(self) -> list[int]:
        return list(
            self.session.scalars(
                select(UserGroupMember.users_group_id)
                .join(UserGroup, UserGroup.users_group_id == UserGroupMember.users_group_id)
                .where(UserGroupMember.user_id == self.user_id, UserGroup.users_group_active)
            )
        )

    # --- global permissions -----------------------------------------------------------------

    @cached_property
    def global_permissions(self) -> frozenset[str]:
        if self.is_admin:
            return frozenset({"hg.admin"})
        names = self.session.scalars(
            select(Permission.permission_name)
            .join(UserToPerm, UserToPerm.permission_id == Permission.permission_id)
            .where(UserToPerm.user_id.in_({self.default_user_id, self.user_id}))
            .union_all(
                select(Permission.permission_name)
                .join(UserGroupToPerm, UserGroupToPerm.permission_id == Permission.permission_id)
                .where(UserGroupToPerm.users_group_id.in_(self._active_group_ids))
            )
        )
        best: dict[str, str] = {}
        for name in names:
            best[kind(name)] = highest(best.get(kind(name)), name) or name
        return frozenset(best.values())

    def has_global(self, *names: str) -> bool:
        """True for admins, or when any of ``names`` is among the global permissions."""
        return self.is_admin or any(n in self.global_permissions for n in names)

    # --- object permissions -----------------------------------------------------------------

    def _levels(self, k: _Kind, object_ids: Iterable[int] | None) -> dict[int, tuple[str, str]]:
        """``{object id: (object name, permission)}`` for the given objects (None = all)."""
        ids = None if object_ids is None else list(object_ids)

        def only(query: Select[Any], column: Any) -> Select[Any]:
            return query if ids is None else query.where(column.in_(ids))

        extra: list[Any] = []
        if k is REPOS:
            extra = [Repository.owner_id, Repository.private]
        base = only(
            select(k.object_id, k.object_name, Permission.permission_name, *extra)
            .select_from(k.entity)
            .outerjoin(
                k.user_table,
                and_(
                    k.user_object_col == k.object_id,
                    k.user_table.user_id == self.default_user_id,
                ),
            )
            .outerjoin(Permission, Permission.permission_id == k.user_table.permission_id),
            k.object_id,
        )
        result: dict[int, tuple[str, str]] = {}
        for row in self.session.execute(base):
            object_id, name, permission = row[0], row[1], row[2]
            if self.is_admin:
                permission = f"{k.prefix}.admin"
            elif k is REPOS and row[3] == self.user_id:
                permission = "repository.admin"
            elif k is REPOS and row[4]:
                permission = "repository.none"
            result[object_id] = (name, permission or f"{k.prefix}.none")
        if self.is_admin or not result:
            return result
        grants = only(
            select(k.user_object_col, Permission.permission_name)
            .join(Permission, Permission.permission_id == k.user_table.permission_id)
            .where(k.user_table.user_id == self.user_id),
            k.user_object_col,
        )
        if self._active_group_ids:
            group_holder = (
                k.group_table.user_group_id if k is USER_GROUPS else k.group_table.users_group_id
            )
            grants = grants.union_all(
                only(
                    select(k.group_object_col, Permission.permission_name)
                    .join(Permission, Permission.permission_id == k.group_table.permission_id)
                    .where(group_holder.in_(self._active_group_ids)),
                    k.group_object_col,
                )
            )
        for object_id, permission in self.session.execute(grants):
            if object_id in result:
                name, current = result[object_id]
                result[object_id] = (name, highest(current, permission) or current)
        return result

    def repo_permission(self, repo_id: int) -> str:
        return self._levels(REPOS, [repo_id]).get(repo_id, ("", "repository.none"))[1]

    def repo_group_permission(self, group_id: int) -> str:
        return self._levels(REPO_GROUPS, [group_id]).get(group_id, ("", "group.none"))[1]

    def user_group_permission(self, users_group_id: int) -> str:
        return self._levels(USER_GROUPS, [users_group_id]).get(
            users_group_id, ("", "usergroup.none")
        )[1]

    def repo_permissions(self, repo_ids: Iterable[int] | None = None) -> dict[int, str]:
        return {i: p for i, (_n, p) in self._levels(REPOS, repo_ids).items()}

    def user_group_permissions(self, ids: Iterable[int] | None = None) -> dict[int, str]:
        return {i: p for i, (_n, p) in self._levels(USER_GROUPS, ids).items()}

    def repo_group_permissions(self, ids: Iterable[int] | None = None) -> dict[int, str]:
        return {i: p for i, (_n, p) in self._levels(REPO_GROUPS, ids).items()}

    def permissions_summary(self) -> dict[str, Any]:
        """The ``permissions`` block of ``get_user`` (facts §2.9)."""

        def by_name(k: _Kind) -> dict[str, str]:
            return dict(sorted(self._levels(k, None).values()))

        return {
            "global": sorted(self.global_permissions),
            "repositories": by_name(REPOS),
            "repositories_groups": by_name(REPO_GROUPS),
            "user_groups": by_name(USER_GROUPS),
        }


def default_level(session: Session, prefix: str) -> str:
    """The level the anonymous user's global permissions give new objects of a kind."""
    names = session.scalars(
        select(Permission.permission_name)
        .join(UserToPerm, UserToPerm.permission_id == Permission.permission_id)
        .join(User, User.user_id == UserToPerm.user_id)
        .where(User.username == DEFAULT_USER, Permission.permission_name.like(f"{prefix}.%"))
    ).all()
    best = None
    for name in names:
        best = highest(best, name)
    return best or f"{prefix}.read"


def at_least(permission: str, level: str) -> bool:
    """Whether ``permission`` (e.g. ``repository.write``) reaches ``level`` (e.g. ``read``)."""
    return weight(permission) >= _LEVEL_WEIGHT[level]
