"""The ORM classes: typed objects and relationships over the tables of ``repohost.db.tables``.

Each class maps one table; its annotations give the column types to the type
checker (the columns themselves are defined once, in ``tables``). Methods that
change objects use these; the hot read path uses the tables directly, so that
a cold start need not import ``sqlalchemy.orm``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, configure_mappers, deferred, relationship

from repohost.db import tables


class Base(DeclarativeBase):
    metadata = tables.metadata


# --- users ----------------------------------------------------------------------------------


class User(Base):
    __table__ = tables.users

    user_id: Mapped[int]
    username: Mapped[str]
    password: Mapped[str]
    active: Mapped[bool]
    admin: Mapped[bool]
    firstname: Mapped[str]
    lastname: Mapped[str]
    email: Mapped[str]
    last_login: Mapped[datetime | None]
    extern_type: Mapped[str]
    extern_name: Mapped[str]
    created_on: Mapped[datetime]

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
    __table__ = tables.user_email_map

    email_id: Mapped[int]
    user_id: Mapped[int]
    email: Mapped[str]

    user: Mapped[User] = relationship(back_populates="extra_emails")


class UserIpMap(Base):
    __table__ = tables.user_ip_map

    ip_id: Mapped[int]
    user_id: Mapped[int]
    ip_addr: Mapped[str]
    active: Mapped[bool]

    user: Mapped[User] = relationship(back_populates="ip_addresses")


class UserApiKey(Base):
    __table__ = tables.user_api_keys

    api_key_id: Mapped[int]
    user_id: Mapped[int]
    key_hash: Mapped[str]
    hint: Mapped[str]
    description: Mapped[str]
    expires: Mapped[float]
    created_on: Mapped[datetime]

    user: Mapped[User] = relationship(back_populates="api_keys")


# --- user groups ----------------------------------------------------------------------------


class UserGroup(Base):
    __table__ = tables.users_groups

    users_group_id: Mapped[int]
    users_group_name: Mapped[str]
    user_group_description: Mapped[str]
    users_group_active: Mapped[bool]
    owner_id: Mapped[int]
    created_on: Mapped[datetime]

    owner: Mapped[User] = relationship()
    members: Mapped[list[UserGroupMember]] = relationship(
        back_populates="users_group",
        cascade="all, delete-orphan",
        order_by="UserGroupMember.users_group_member_id",
    )


class UserGroupMember(Base):
    __table__ = tables.users_groups_members

    users_group_member_id: Mapped[int]
    users_group_id: Mapped[int]
    user_id: Mapped[int]

    users_group: Mapped[UserGroup] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


# --- repositories and repository groups -----------------------------------------------------


class RepoGroup(Base):
    __table__ = tables.groups

    group_id: Mapped[int]
    group_name: Mapped[str]
    group_parent_id: Mapped[int | None]
    group_description: Mapped[str]
    enable_locking: Mapped[bool]
    owner_id: Mapped[int]
    created_on: Mapped[datetime]

    parent_group: Mapped[RepoGroup | None] = relationship(remote_side=[tables.groups.c.group_id])
    owner: Mapped[User] = relationship()


class Repository(Base):
    __table__ = tables.repositories

    repo_id: Mapped[int]
    repo_name: Mapped[str]
    repo_state: Mapped[str]
    clone_uri: Mapped[str | None]
    repo_type: Mapped[str]
    owner_id: Mapped[int]
    private: Mapped[bool]
    enable_statistics: Mapped[bool]
    enable_downloads: Mapped[bool]
    enable_locking: Mapped[bool]
    description: Mapped[str]
    created_on: Mapped[datetime]
    updated_on: Mapped[datetime]
    landing_rev: Mapped[str]
    locked: Mapped[str | None]
    fork_id: Mapped[int | None]
    group_id: Mapped[int | None]
    changeset_cache: Mapped[dict[str, Any] | None]
    webhook_secret: Mapped[str | None]
    pull_pending: Mapped[bool]
    # Only get_repos reads these (see the table): never loaded with the object.
    listing_head: Mapped[str | None] = deferred(tables.repositories.c.listing_head)
    listing_tail: Mapped[str | None] = deferred(tables.repositories.c.listing_tail)
    listing_date_plain: Mapped[bool | None] = deferred(tables.repositories.c.listing_date_plain)

    owner: Mapped[User] = relationship()
    fork: Mapped[Repository | None] = relationship(remote_side=[tables.repositories.c.repo_id])
    group: Mapped[RepoGroup | None] = relationship()


class UserFollowing(Base):
    __table__ = tables.user_followings

    user_following_id: Mapped[int]
    user_id: Mapped[int]
    follows_repository_id: Mapped[int | None]
    follows_user_id: Mapped[int | None]
    follows_from: Mapped[datetime]

    user: Mapped[User] = relationship(foreign_keys=[tables.user_followings.c.user_id])


# --- permissions ----------------------------------------------------------------------------


class Permission(Base):
    __table__ = tables.permissions

    permission_id: Mapped[int]
    permission_name: Mapped[str]


class UserToPerm(Base):
    __table__ = tables.user_to_perm

    user_to_perm_id: Mapped[int]
    user_id: Mapped[int]
    permission_id: Mapped[int]

    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupToPerm(Base):
    __table__ = tables.users_group_to_perm

    users_group_to_perm_id: Mapped[int]
    users_group_id: Mapped[int]
    permission_id: Mapped[int]

    permission: Mapped[Permission] = relationship(lazy="joined")


class UserRepoToPerm(Base):
    __table__ = tables.repo_to_perm

    repo_to_perm_id: Mapped[int]
    user_id: Mapped[int]
    permission_id: Mapped[int]
    repository_id: Mapped[int]

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupRepoToPerm(Base):
    __table__ = tables.users_group_repo_to_perm

    users_group_to_perm_id: Mapped[int]
    users_group_id: Mapped[int]
    permission_id: Mapped[int]
    repository_id: Mapped[int]

    users_group: Mapped[UserGroup] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserRepoGroupToPerm(Base):
    __table__ = tables.user_repo_group_to_perm

    group_to_perm_id: Mapped[int]
    user_id: Mapped[int]
    permission_id: Mapped[int]
    group_id: Mapped[int]

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupRepoGroupToPerm(Base):
    __table__ = tables.users_group_repo_group_to_perm

    users_group_repo_group_to_perm_id: Mapped[int]
    users_group_id: Mapped[int]
    permission_id: Mapped[int]
    group_id: Mapped[int]

    users_group: Mapped[UserGroup] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserUserGroupToPerm(Base):
    __table__ = tables.user_user_group_to_perm

    user_user_group_to_perm_id: Mapped[int]
    user_id: Mapped[int]
    permission_id: Mapped[int]
    user_group_id: Mapped[int]

    user: Mapped[User] = relationship()
    permission: Mapped[Permission] = relationship(lazy="joined")


class UserGroupUserGroupToPerm(Base):
    __table__ = tables.user_group_user_group_to_perm

    user_group_user_group_to_perm_id: Mapped[int]
    target_user_group_id: Mapped[int]
    permission_id: Mapped[int]
    user_group_id: Mapped[int]

    permission: Mapped[Permission] = relationship(lazy="joined")


# --- gists, jobs, webhooks, caches, journal -------------------------------------------------


class Gist(Base):
    __table__ = tables.gists

    gist_id: Mapped[int]
    gist_access_id: Mapped[str]
    gist_description: Mapped[str]
    owner_id: Mapped[int]
    gist_expires: Mapped[float]
    gist_type: Mapped[str]
    created_on: Mapped[datetime]
    modified_at: Mapped[datetime]

    owner: Mapped[User] = relationship()


class Job(Base):
    __table__ = tables.jobs

    job_id: Mapped[str]
    kind: Mapped[str]
    repository_id: Mapped[int | None]
    state: Mapped[str]
    payload: Mapped[dict[str, Any]]
    error: Mapped[str]
    created_on: Mapped[datetime]
    updated_on: Mapped[datetime]


class WebhookDelivery(Base):
    __table__ = tables.webhook_deliveries

    delivery_id: Mapped[str]
    repository_id: Mapped[int]
    received_on: Mapped[datetime]


class CacheInvalidation(Base):
    __table__ = tables.cache_invalidation

    cache_id: Mapped[int]
    cache_key: Mapped[str]
    cache_args: Mapped[str]
    cache_active: Mapped[bool]


class JournalEntry(Base):
    __table__ = tables.user_logs

    user_log_id: Mapped[int]
    user_id: Mapped[int | None]
    username: Mapped[str]
    repository_id: Mapped[int | None]
    repository_name: Mapped[str]
    user_ip: Mapped[str]
    action: Mapped[str]
    action_date: Mapped[datetime]


# Resolve the relationships while a function loads (see repohost.coldstart), not
# inside the first query it serves.
configure_mappers()
