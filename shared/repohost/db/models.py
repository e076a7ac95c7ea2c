"""The data model: Kallithea's schema as far as the API needs it.

Table and column names follow Kallithea's so that anyone who knows its
database finds their way; the differences are deliberate (API keys are kept
only as hashes, in one table, with a hint).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, configure_mappers, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    # Naive UTC timestamps: the API prints them without a zone, as Kallithea does.
    return datetime.now(UTC).replace(tzinfo=None)


# --- users ----------------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    password: Mapped[str] = mapped_column(String(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    firstname: Mapped[str] = mapped_column(String(255), default="")
    lastname: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str] = mapped_column(String(255), default="", index=True)
    last_login: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    extern_type: Mapped[str] = mapped_column(String(255), default="internal")
    extern_name: Mapped[str] = mapped_column(String(255), default="")
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)

    extra_emails: Mapped[list[UserEmail]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserEmail.email_id"
    )
    ip_addresses: Mapped[list[UserIpMap]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserIpMap.ip_id"
    )
    api_keys: Mapped[list[UserApiKey]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="UserApiKey.api_key_id"
    )


class UserEmail(Base):
    """Additional e-mail addresses of a user (Kallithea's ``user_email_map``)."""

    __tablename__ = "user_email_map"

    email_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(255), unique=True)

    user: Mapped[User] = relationship(back_populates="extra_emails")


class UserIpMap(Base):
    """One entry of a user's IP whitelist: an address or a CIDR network."""

    __tablename__ = "user_ip_map"
    __table_args__ = (UniqueConstraint("user_id", "ip_addr"),)

    ip_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    ip_addr: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    user: Mapped[User] = relationship(back_populates="ip_addresses")


class UserApiKey(Base):
    """An API key, stored as its SHA-256 hash; ``hint`` keeps the last four characters."""

    __tablename__ = "user_api_keys"

    api_key_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(4))
    description: Mapped[str] = mapped_column(Text, default="")
    #: Unix time after which the key stops working; -1 = never.
    expires: Mapped[float] = mapped_column(Float, default=-1)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)

    user: Mapped[User] = relationship(back_populates="api_keys")


# --- user groups ----------------------------------------------------------------------------


class UserGroup(Base):
    __tablename__ = "users_groups"

    users_group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users_group_name: Mapped[str] = mapped_column(String(255), unique=True)
    user_group_description: Mapped[str] = mapped_column(Text, default="")
    users_group_active: Mapped[bool] = mapped_column(Boolean, default=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.user_id"))
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)

    owner: Mapped[User] = relationship()
    members: Mapped[list[UserGroupMember]] = relationship(
        back_populates="users_group",
        cascade="all, delete-orphan",
        order_by="UserGroupMember.users_group_member_id",
    )


class UserGroupMember(Base):
    __tablename__ = "users_groups_members"
    __table_args__ = (UniqueConstraint("users_group_id", "user_id"),)

    users_group_member_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )

    users_group: Mapped[UserGroup] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


# --- repositories and repository groups -----------------------------------------------------


class RepoGroup(Base):
    __tablename__ = "groups"

    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Full path, e.g. ``a/b/c``.
    group_name: Mapped[str] = mapped_column(String(255), unique=True)
    group_parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.group_id"), nullable=True, index=True
    )
    group_description: Mapped[str] = mapped_column(Text, default="")
    enable_locking: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.user_id"))
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)

    parent_group: Mapped[RepoGroup | None] = relationship(remote_side=[group_id])
    owner: Mapped[User] = relationship()


class Repository(Base):
    __tablename__ = "repositories"

    repo_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Full name including the group path, e.g. ``a/b/repo``.
    repo_name: Mapped[str] = mapped_column(String(255), unique=True)
    repo_state: Mapped[str] = mapped_column(String(255), default="repo_state_created")
    clone_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    repo_type: Mapped[str] = mapped_column(String(255), default="git")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.user_id"), index=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_statistics: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_downloads: Mapped[bool] = mapped_column(Boolean, default=True)
    enable_locking: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=_now, onupdate=_now)
    landing_rev: Mapped[str] = mapped_column(String(255), default="rev:tip")
    #: ``"<user_id>:<unix time>"`` while locked (0.3 locking), else NULL.
    locked: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fork_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.repo_id"), nullable=True, index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("groups.group_id"), nullable=True, index=True
    )
    #: The last changeset, read from the repository when it changes (``last_changeset``).
    changeset_cache: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Shared secret that signs this repository's push webhooks; never shown after it is set.
    webhook_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: A pull is queued and not yet started (webhook bursts coalesce on it).
    pull_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: ``get_repos``' JSON text for this row, written by a PostgreSQL trigger on every
    #: insert and update (migration 0004); never set from Python, NULL on SQLite.
    listing_head: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)
    listing_tail: Mapped[str | None] = mapped_column(Text, nullable=True, deferred=True)
    listing_date_plain: Mapped[bool | None] = mapped_column(Boolean, nullable=True, deferred=True)

    owner: Mapped[User] = relationship()
    fork: Mapped[Repository | None] = relationship(remote_side=[repo_id])
    group: Mapped[RepoGroup | None] = relationship()


# Names differing only in case would collide on case-insensitive clients and file
# systems: the database refuses them too, whatever races the checks in the methods.
Index("ix_repositories_repo_name_lower", func.lower(Repository.repo_name), unique=True)
Index("ix_groups_group_name_lower", func.lower(RepoGroup.group_name), unique=True)


class UserFollowing(Base):
    """A user following a repository (``followers`` in ``get_repo``)."""

    __tablename__ = "user_followings"
    __table_args__ = (UniqueConstraint("user_id", "follows_repository_id"),)

    user_following_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    follows_repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="CASCADE"), nullable=True, index=True
    )
    follows_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), nullable=True
    )
    follows_from: Mapped[datetime] = mapped_column(DateTime, default=_now)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


# --- permissions ----------------------------------------------------------------------------


class Permission(Base):
    """A permission name such as ``repository.read`` or ``hg.admin``."""

    __tablename__ = "permissions"

    permission_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    permission_name: Mapped[str] = mapped_column(String(255), unique=True)


class UserToPerm(Base):
    """A global permission granted to a user."""

    __tablename__ = "user_to_perm"
    __table_args__ = (UniqueConstraint("user_id", "permission_id"),)

    user_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))

    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupToPerm(Base):
    """A global permission granted to a user group."""

    __tablename__ = "users_group_to_perm"
    __table_args__ = (UniqueConstraint("users_group_id", "permission_id"),)

    users_group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE")
    )
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))

    permission: Mapped[Permission] = relationship(lazy="joined")


class UserRepoToPerm(Base):
    __tablename__ = "repo_to_perm"
    __table_args__ = (UniqueConstraint("user_id", "repository_id"),)

    repo_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupRepoToPerm(Base):
    __tablename__ = "users_group_repo_to_perm"
    __table_args__ = (UniqueConstraint("users_group_id", "repository_id"),)

    users_group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE")
    )
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="CASCADE"), index=True
    )

    users_group: Mapped[UserGroup] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserRepoGroupToPerm(Base):
    __tablename__ = "user_repo_group_to_perm"
    __table_args__ = (UniqueConstraint("user_id", "group_id"),)

    group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.group_id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupRepoGroupToPerm(Base):
    __tablename__ = "users_group_repo_group_to_perm"
    __table_args__ = (UniqueConstraint("users_group_id", "group_id"),)

    users_group_repo_group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    users_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE")
    )
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.group_id", ondelete="CASCADE"), index=True
    )

    users_group: Mapped[UserGroup] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserUserGroupToPerm(Base):
    """A user's permission on a user group (``usergroup.*``)."""

    __tablename__ = "user_user_group_to_perm"
    __table_args__ = (UniqueConstraint("user_id", "user_group_id"),)

    user_user_group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    user_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupUserGroupToPerm(Base):
    """A user group's permission on another user group."""

    __tablename__ = "user_group_user_group_to_perm"
    __table_args__ = (UniqueConstraint("target_user_group_id", "user_group_id"),)

    user_group_user_group_to_perm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The group the permission is about.
    target_user_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE"), index=True
    )
    permission_id: Mapped[int] = mapped_column(ForeignKey("permissions.permission_id"))
    #: The group that holds the permission.
    user_group_id: Mapped[int] = mapped_column(
        ForeignKey("users_groups.users_group_id", ondelete="CASCADE")
    )

    permission: Mapped[Permission] = relationship(lazy="joined")


# --- gists, locks, caches, journal ----------------------------------------------------------


class Gist(Base):
    __tablename__ = "gists"

    gist_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gist_access_id: Mapped[str] = mapped_column(String(255), unique=True)
    gist_description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.user_id"), index=True)
    #: Unix time of expiry; -1 = never (a float, as Kallithea reports it).
    gist_expires: Mapped[float] = mapped_column(Float, default=-1)
    gist_type: Mapped[str] = mapped_column(String(128), default="public")
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)
    modified_at: Mapped[datetime] = mapped_column(DateTime, default=_now)

    owner: Mapped[User] = relationship()


class Job(Base):
    """Work done outside the API call: initial mirrors, forks and pulls (the worker runs them)."""

    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="CASCADE"), nullable=True, index=True
    )
    #: ``queued``, ``running``, ``done`` or ``failed``.
    state: Mapped[str] = mapped_column(String(16), default="queued")
    #: What the job needs besides the repository (e.g. a clone URI), as JSON.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: A short, credential-free reason when ``failed``.
    error: Mapped[str] = mapped_column(Text, default="")
    created_on: Mapped[datetime] = mapped_column(DateTime, default=_now)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=_now, onupdate=_now)


class WebhookDelivery(Base):
    """Delivery ids already accepted, so a replayed webhook starts no second job."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="CASCADE"), index=True
    )
    received_on: Mapped[datetime] = mapped_column(DateTime, default=_now)


class CacheInvalidation(Base):
    """Cache keys per repository; a row turns inactive when the repository changes."""

    __tablename__ = "cache_invalidation"

    cache_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(255), unique=True)
    cache_args: Mapped[str] = mapped_column(String(255), index=True)
    cache_active: Mapped[bool] = mapped_column(Boolean, default=False)


class JournalEntry(Base):
    """Who did what, when (Kallithea's ``user_logs``). Names are kept for deleted objects."""

    __tablename__ = "user_logs"

    user_log_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True, index=True
    )
    username: Mapped[str] = mapped_column(String(255))
    repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("repositories.repo_id", ondelete="SET NULL"), nullable=True, index=True
    )
    repository_name: Mapped[str] = mapped_column(String(255), default="")
    user_ip: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(Text)
    action_date: Mapped[datetime] = mapped_column(DateTime, default=_now, server_default=func.now())


def fits(column: Any, value: str | None) -> bool:
    """Whether ``value`` fits the string ``column`` (e.g. ``User.firstname``); None fits."""
    return value is None or len(value) <= column.type.length


# Resolve the relationships while a function loads (see repohost.coldstart), not
# inside the first query it serves.
configure_mappers()
