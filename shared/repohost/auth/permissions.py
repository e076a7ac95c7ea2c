"""Who may do what: Kallithea 0.7's "highest wins" permission computation (facts §4).

For every object kind the level a user has is the highest of: the anonymous
``default`` user's row, the rows of the active user groups the user is in,
and the user's own row. Repositories add two rules: the owner is always
admin, and a private repository starts from ``none``. Admins have admin on
everything. Each computation is a fixed number of queries, whatever the
number of objects.

The queries are Core statements over ``repohost.db.tables``: the API
function authenticates and answers ``get_user`` without loading the ORM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from sqlalchemy import Select, and_, bindparam, literal, null, select

from repohost.auth.keys import DEFAULT_USER
from repohost.db import tables as t
from repohost.db.records import Executor, UserFacts

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
    entity: Any  # the objects' table
    object_id: Any  # the object's primary key column
    object_name: Any  # the column naming it in results
    user_table: Any
    user_object_col: Any
    group_table: Any
    group_object_col: Any
    group_holder_col: Any  # the user group holding a group_table row


REPOS = _Kind(
    "repository",
    t.repositories,
    t.repositories.c.repo_id,
    t.repositories.c.repo_name,
    t.repo_to_perm,
    t.repo_to_perm.c.repository_id,
    t.users_group_repo_to_perm,
    t.users_group_repo_to_perm.c.repository_id,
    t.users_group_repo_to_perm.c.users_group_id,
)
REPO_GROUPS = _Kind(
    "group",
    t.groups,
    t.groups.c.group_id,
    t.groups.c.group_name,
    t.user_repo_group_to_perm,
    t.user_repo_group_to_perm.c.group_id,
    t.users_group_repo_group_to_perm,
    t.users_group_repo_group_to_perm.c.group_id,
    t.users_group_repo_group_to_perm.c.users_group_id,
)
USER_GROUPS = _Kind(
    "usergroup",
    t.users_groups,
    t.users_groups.c.users_group_id,
    t.users_groups.c.users_group_name,
    t.user_user_group_to_perm,
    t.user_user_group_to_perm.c.user_group_id,
    t.user_group_user_group_to_perm,
    t.user_group_user_group_to_perm.c.target_user_group_id,
    t.user_group_user_group_to_perm.c.user_group_id,
)

_permissions = t.permissions.c
_members = t.users_groups_members.c
_user_groups = t.users_groups.c


@dataclass
class AuthUser:
    """A user together with what it may do, computed lazily and cached for one call.

    ``db`` runs the queries: an ORM session, or a call's ``Database``.
    """

    db: Executor
    user: UserFacts
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
        users = t.users.c
        return int(
            self.db.scalars(select(users.user_id).where(users.username == DEFAULT_USER)).one()
        )

    @cached_property
    def _active_group_ids(self) -> list[int]:
        return list(
            self.db.scalars(
                select(_members.users_group_id)
                .join(t.users_groups, _user_groups.users_group_id == _members.users_group_id)
                .where(_members.user_id == self.user_id, _user_groups.users_group_active)
            )
        )

    # --- global permissions -----------------------------------------------------------------

    @cached_property
    def global_permissions(self) -> frozenset[str]:
        if self.is_admin:
            return frozenset({"hg.admin"})
        own, groups = t.user_to_perm, t.users_group_to_perm
        names = self.db.scalars(
            select(_permissions.permission_name)
            .join(own, own.c.permission_id == _permissions.permission_id)
            .where(own.c.user_id.in_({self.default_user_id, self.user_id}))
            .union_all(
                select(_permissions.permission_name)
                .join(groups, groups.c.permission_id == _permissions.permission_id)
                .where(groups.c.users_group_id.in_(self._active_group_ids))
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

    def _start(self, k: _Kind, default: str | None, owner_id: int | None, private: bool) -> str:
        """The level before grants: the default user's row, or the owner and private rules."""
        if self.is_admin:
            return f"{k.prefix}.admin"
        if k is REPOS:
            return _repository_start(self.user_id, default, owner_id, private)
        return default or f"{k.prefix}.none"

    @staticmethod
    def _default_rows(k: _Kind, query: Select[Any]) -> Select[Any]:
        """``query`` (from ``k.entity``) plus the default user's permission on each object.

        The default user's id is a subquery, so that it costs no statement of its own
        (over an alias, never correlated with a ``users`` the query may join).
        """
        anonymous = t.users.alias().c
        default_user = (
            select(anonymous.user_id)
            .where(anonymous.username == DEFAULT_USER)
            .correlate(None)
            .scalar_subquery()
        )
        return query.outerjoin(
            k.user_table,
            and_(k.user_object_col == k.object_id, k.user_table.c.user_id == default_user),
        ).outerjoin(t.permissions, _permissions.permission_id == k.user_table.c.permission_id)

    def _grants(self, k: _Kind, ids: list[int] | None) -> Any:
        """``(object id, permission)`` of the user's own rows and their active user groups' rows.

        A statement to run with ``self._params(ids)``.
        """
        return _grants_statement(k.prefix, ids is not None)

    def _params(self, ids: list[int] | None) -> dict[str, Any]:
        return {"user_id": self.user_id} | ({} if ids is None else {"ids": ids})

    @staticmethod
    def _raise(levels: dict[int, str], grants: Iterable[Any]) -> None:
        """Raise each object's level to its grants where they are higher (highest wins)."""
        for object_id, permission in grants:
            level = levels.get(object_id)
            if level is not None and weight(permission) > weight(level):
                levels[object_id] = permission

    def _levels(self, k: _Kind, object_ids: Iterable[int] | None) -> dict[int, tuple[str, str]]:
        """``{object id: (object name, permission)}`` for the given objects (None = all).

        One statement: the objects with the default user's rows, then (for
        non-admins) the user's and their active user groups' rows.
        """
        ids = None if object_ids is None else list(object_ids)
        query = _levels_statement(k.prefix, ids is not None, not self.is_admin)
        names: dict[int, str] = {}
        levels: dict[int, str] = {}
        granted = []
        for object_id, name, permission, owner_id, is_private, is_grant in self.db.execute(
            query, self._params(ids)
        ):
            if is_grant:
                granted.append((object_id, permission))
            else:
                names[object_id] = name
                levels[object_id] = self._start(k, permission, owner_id, is_private)
        self._raise(levels, granted)
        return {object_id: (names[object_id], level) for object_id, level in levels.items()}

    @staticmethod
    def with_default_repo_permission(query: Select[Any]) -> tuple[Select[Any], Any]:
        """``query`` (from ``Repository``) outer-joined with the default user's rows.

        Returns the query and the column naming the default user's permission,
        for ``repository_levels`` (which also needs ``owner_id`` and ``private``).
        """
        return AuthUser._default_rows(REPOS, query), _permissions.permission_name

    def repository_levels(
        self, rows: Iterable[tuple[int, str | None, int, bool]]
    ) -> dict[int, str]:
        """The user's level on each repository of ``rows``.

        ``rows`` are ``(repo_id, default user's permission, owner_id, private)``
        (see ``with_default_repo_permission``); one more statement reads the
        user's own and their user groups' rows (none for admins).
        """
        if self.is_admin:
            return {row[0]: "repository.admin" for row in rows}
        user_id = self.user_id  # (this runs for every repository of get_repos: kept lean)
        levels = {
            repo_id: _repository_start(user_id, default, owner_id, private)
            for repo_id, default, owner_id, private in rows
        }
        if levels:
            self._raise(levels, self.db.execute(self._grants(REPOS, None), self._params(None)))
        return levels

    def repository_level(
        self, default: str | None, owner_id: int, private: bool, grants: Iterable[str]
    ) -> str:
        """``repository_levels`` for one repository whose grants the caller has read.

        ``grants`` are the permissions of the user's own row and of the rows of
        their active user groups on it; no statement.
        """
        level = self._start(REPOS, default, owner_id, private)
        if not self.is_admin:
            for permission in grants:
                level = highest(level, permission) or level
        return level

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
        """The ``permissions`` block of ``get_user`` (facts §2.9).

        Objects the user has no access to (``*.none``) are left out: Kallithea
        lists them, which names private repositories to anyone who asks for their
        own permissions.
        """

        def by_name(k: _Kind) -> dict[str, str]:
            levels = self._levels(k, None).values()
            return dict(sorted((n, p) for n, p in levels if not p.endswith(".none")))

        return {
            "global": sorted(self.global_permissions),
            "repositories": by_name(REPOS),
            "repositories_groups": by_name(REPO_GROUPS),
            "user_groups": by_name(USER_GROUPS),
        }


# --- the statements, built once (building them costs more than running them) -------------


def _kind(prefix: str) -> _Kind:
    return {k.prefix: k for k in (REPOS, REPO_GROUPS, USER_GROUPS)}[prefix]


@cache
def _grants_statement(prefix: str, some: bool) -> Any:
    """The user's (``:user_id``) own and active user groups' rows; on ``:ids`` when ``some``."""
    k = _kind(prefix)
    own = (
        select(k.user_object_col, _permissions.permission_name)
        .join(t.permissions, _permissions.permission_id == k.user_table.c.permission_id)
        .where(k.user_table.c.user_id == bindparam("user_id"))
    )
    holder = k.group_holder_col
    groups = (
        select(k.group_object_col, _permissions.permission_name)
        .join(t.permissions, _permissions.permission_id == k.group_table.c.permission_id)
        .join(t.users_groups_members, _members.users_group_id == holder)
        .join(t.users_groups, _user_groups.users_group_id == holder)
        .where(_members.user_id == bindparam("user_id"), _user_groups.users_group_active)
    )
    if some:
        own = own.where(k.user_object_col.in_(bindparam("ids", expanding=True)))
        groups = groups.where(k.group_object_col.in_(bindparam("ids", expanding=True)))
    return own.union_all(groups)


@cache
def _levels_statement(prefix: str, some: bool, with_grants: bool) -> Any:
    """``AuthUser._levels``'s query: objects (``:ids`` when ``some``), then grants if asked."""
    k = _kind(prefix)
    repo = k is REPOS
    owner = t.repositories.c.owner_id if repo else null()
    private = t.repositories.c.private if repo else null()
    base = AuthUser._default_rows(
        k,
        select(
            k.object_id,
            k.object_name,
            _permissions.permission_name,
            owner.label("owner_id"),
            private.label("private"),
            literal(False).label("grant"),
        ).select_from(k.entity),
    )
    if some:
        base = base.where(k.object_id.in_(bindparam("ids", expanding=True)))
    if not with_grants:
        return base
    grants = _grants_statement(prefix, some).subquery()
    return base.union_all(select(grants.c[0], null(), grants.c[1], null(), null(), literal(True)))


def default_level(db: Executor, prefix: str) -> str:
    """The level the anonymous user's global permissions give new objects of a kind."""
    grants, users = t.user_to_perm.c, t.users.c
    names = db.scalars(
        select(_permissions.permission_name)
        .join(t.user_to_perm, grants.permission_id == _permissions.permission_id)
        .join(t.users, users.user_id == grants.user_id)
        .where(users.username == DEFAULT_USER, _permissions.permission_name.like(f"{prefix}.%"))
    ).all()
    best = None
    for name in names:
        best = highest(best, name)
    return best or f"{prefix}.read"


def _repository_start(
    user_id: int, default: str | None, owner_id: int | None, private: bool
) -> str:
    """A non-admin's level on a repository before grants (``AuthUser._start``)."""
    if owner_id == user_id:
        return "repository.admin"
    if private:
        return "repository.none"
    return default or "repository.none"


def at_least(permission: str, level: str) -> bool:
    """Whether ``permission`` (e.g. ``repository.write``) reaches ``level`` (e.g. ``read``)."""
    return weight(permission) >= _LEVEL_WEIGHT[level]
