"""The schema: Kallithea's tables as far as the API needs them, in SQLAlchemy Core.

Table and column names follow Kallithea's so that anyone who knows its
database finds their way; the differences are deliberate (API keys are kept
only as hashes, in one table, with a hint).

The schema lives here, apart from the ORM classes of ``repohost.db.models``,
because Core alone loads in a fraction of the time: the API function's cold
path (authentication, ``get_user``) queries these tables without ever
importing ``sqlalchemy.orm``. The models map onto the same ``Table`` objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)

metadata = MetaData()


def now() -> datetime:
    """Naive UTC: the API prints timestamps without a zone, as Kallithea does."""
    return datetime.now(UTC).replace(tzinfo=None)


def _user_fk(ondelete: str | None = "CASCADE") -> ForeignKey:
    return ForeignKey("users.user_id", ondelete=ondelete)


def _user_group_fk() -> ForeignKey:
    return ForeignKey("users_groups.users_group_id", ondelete="CASCADE")


def _repository_fk(ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey("repositories.repo_id", ondelete=ondelete)


def _permission_fk() -> ForeignKey:
    return ForeignKey("permissions.permission_id")


# --- users ----------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("username", String(255), unique=True, nullable=False),
    Column("password", String(255), default="", nullable=False),
    Column("active", Boolean, default=True, nullable=False),
    Column("admin", Boolean, default=False, nullable=False),
    Column("firstname", String(255), default="", nullable=False),
    Column("lastname", String(255), default="", nullable=False),
    Column("email", String(255), default="", nullable=False, index=True),
    Column("last_login", DateTime, nullable=True),
    Column("extern_type", String(255), default="internal", nullable=False),
    Column("extern_name", String(255), default="", nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
)

#: Additional e-mail addresses of a user.
user_email_map = Table(
    "user_email_map",
    metadata,
    Column("email_id", Integer, primary_key=True),
    Column("user_id", _user_fk(), nullable=False),
    Column("email", String(255), unique=True, nullable=False),
)

#: One entry of a user's IP whitelist: an address or a CIDR network.
user_ip_map = Table(
    "user_ip_map",
    metadata,
    Column("ip_id", Integer, primary_key=True),
    Column("user_id", _user_fk(), nullable=False),
    Column("ip_addr", String(255), nullable=False),
    Column("active", Boolean, default=True, nullable=False),
    UniqueConstraint("user_id", "ip_addr"),
)

#: An API key, stored as its SHA-256 hash; ``hint`` keeps the last four characters.
user_api_keys = Table(
    "user_api_keys",
    metadata,
    Column("api_key_id", Integer, primary_key=True),
    Column("user_id", _user_fk(), nullable=False, index=True),
    Column("key_hash", String(64), unique=True, nullable=False),
    Column("hint", String(4), nullable=False),
    Column("description", Text, default="", nullable=False),
    # Unix time after which the key stops working; -1 = never.
    Column("expires", Float, default=-1, nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
)

# --- user groups ----------------------------------------------------------------------------

users_groups = Table(
    "users_groups",
    metadata,
    Column("users_group_id", Integer, primary_key=True),
    Column("users_group_name", String(255), unique=True, nullable=False),
    Column("user_group_description", Text, default="", nullable=False),
    Column("users_group_active", Boolean, default=True, nullable=False),
    Column("owner_id", _user_fk(None), nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
)

users_groups_members = Table(
    "users_groups_members",
    metadata,
    Column("users_group_member_id", Integer, primary_key=True),
    Column("users_group_id", _user_group_fk(), nullable=False),
    Column("user_id", _user_fk(), nullable=False, index=True),
    UniqueConstraint("users_group_id", "user_id"),
)

# --- repositories and repository groups -----------------------------------------------------

groups = Table(
    "groups",
    metadata,
    Column("group_id", Integer, primary_key=True),
    # Full path, e.g. ``a/b/c``.
    Column("group_name", String(255), unique=True, nullable=False),
    Column("group_parent_id", ForeignKey("groups.group_id"), nullable=True, index=True),
    Column("group_description", Text, default="", nullable=False),
    Column("enable_locking", Boolean, default=False, nullable=False),
    Column("owner_id", _user_fk(None), nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
)

repositories = Table(
    "repositories",
    metadata,
    Column("repo_id", Integer, primary_key=True),
    # Full name including the group path, e.g. ``a/b/repo``.
    Column("repo_name", String(255), unique=True, nullable=False),
    Column("repo_state", String(255), default="repo_state_created", nullable=False),
    Column("clone_uri", Text, nullable=True),
    Column("repo_type", String(255), default="git", nullable=False),
    Column("owner_id", _user_fk(None), nullable=False, index=True),
    Column("private", Boolean, default=False, nullable=False),
    Column("enable_statistics", Boolean, default=False, nullable=False),
    Column("enable_downloads", Boolean, default=True, nullable=False),
    Column("enable_locking", Boolean, default=False, nullable=False),
    Column("description", Text, default="", nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
    Column("updated_on", DateTime, default=now, onupdate=now, nullable=False),
    Column("landing_rev", String(255), default="rev:tip", nullable=False),
    # ``"<user_id>:<unix time>"`` while locked (0.3 locking), else NULL.
    Column("locked", String(255), nullable=True),
    Column("fork_id", ForeignKey("repositories.repo_id"), nullable=True, index=True),
    Column("group_id", ForeignKey("groups.group_id"), nullable=True, index=True),
    # The last changeset, read from the repository when it changes (``last_changeset``).
    Column("changeset_cache", JSON, nullable=True),
    # Shared secret that signs this repository's push webhooks; never shown after it is set.
    Column("webhook_secret", String(255), nullable=True),
    # A pull is queued and not yet started (webhook bursts coalesce on it).
    Column("pull_pending", Boolean, default=False, server_default=false(), nullable=False),
    # ``get_repos``' JSON text for this row, written by a PostgreSQL trigger on every
    # insert and update (migration 0004); never set from Python, NULL on SQLite.
    Column("listing_head", Text, nullable=True),
    Column("listing_tail", Text, nullable=True),
    Column("listing_date_plain", Boolean, nullable=True),
)

# Names differing only in case would collide on case-insensitive clients and file
# systems: the database refuses them too, whatever races the checks in the methods.
Index("ix_repositories_repo_name_lower", func.lower(repositories.c.repo_name), unique=True)
Index("ix_groups_group_name_lower", func.lower(groups.c.group_name), unique=True)

#: A user following a repository (``followers`` in ``get_repo``).
user_followings = Table(
    "user_followings",
    metadata,
    Column("user_following_id", Integer, primary_key=True),
    Column("user_id", _user_fk(), nullable=False),
    Column("follows_repository_id", _repository_fk(), nullable=True, index=True),
    Column("follows_user_id", _user_fk(), nullable=True),
    Column("follows_from", DateTime, default=now, nullable=False),
    UniqueConstraint("user_id", "follows_repository_id"),
)

# --- permissions ----------------------------------------------------------------------------

#: A permission name such as ``repository.read`` or ``hg.admin``.
permissions = Table(
    "permissions",
    metadata,
    Column("permission_id", Integer, primary_key=True),
    Column("permission_name", String(255), unique=True, nullable=False),
)


def _grant_table(name: str, key: str, holder: str, target: tuple[str, str] | None) -> Table:
    """A table of permission grants: who (``holder``) holds which permission on what.

    ``holder`` is ``user_id`` or ``users_group_id``; ``target`` is the column
    naming the object and the key it refers to (None for global permissions).
    """
    holder_fk = _user_fk() if holder == "user_id" else _user_group_fk()
    columns: list[Any] = [
        Column(key, Integer, primary_key=True),
        Column(holder, holder_fk, nullable=False),
        Column("permission_id", _permission_fk(), nullable=False),
    ]
    if target is None:
        return Table(name, metadata, *columns, UniqueConstraint(holder, "permission_id"))
    column, refers_to = target
    columns.append(
        Column(column, ForeignKey(refers_to, ondelete="CASCADE"), nullable=False, index=True)
    )
    return Table(name, metadata, *columns, UniqueConstraint(holder, column))


_REPO = ("repository_id", "repositories.repo_id")
_GROUP = ("group_id", "groups.group_id")
_USER_GROUP = ("user_group_id", "users_groups.users_group_id")

#: Global permissions granted to users and to user groups.
user_to_perm = _grant_table("user_to_perm", "user_to_perm_id", "user_id", None)
users_group_to_perm = _grant_table(
    "users_group_to_perm", "users_group_to_perm_id", "users_group_id", None
)
repo_to_perm = _grant_table("repo_to_perm", "repo_to_perm_id", "user_id", _REPO)
users_group_repo_to_perm = _grant_table(
    "users_group_repo_to_perm", "users_group_to_perm_id", "users_group_id", _REPO
)
user_repo_group_to_perm = _grant_table(
    "user_repo_group_to_perm", "group_to_perm_id", "user_id", _GROUP
)
users_group_repo_group_to_perm = _grant_table(
    "users_group_repo_group_to_perm",
    "users_group_repo_group_to_perm_id",
    "users_group_id",
    _GROUP,
)
#: A user's permission on a user group (``usergroup.*``).
user_user_group_to_perm = _grant_table(
    "user_user_group_to_perm", "user_user_group_to_perm_id", "user_id", _USER_GROUP
)
#: A user group's permission on another user group.
user_group_user_group_to_perm = Table(
    "user_group_user_group_to_perm",
    metadata,
    Column("user_group_user_group_to_perm_id", Integer, primary_key=True),
    # The group the permission is about.
    Column("target_user_group_id", _user_group_fk(), nullable=False, index=True),
    Column("permission_id", _permission_fk(), nullable=False),
    # The group that holds the permission.
    Column("user_group_id", _user_group_fk(), nullable=False),
    UniqueConstraint("target_user_group_id", "user_group_id"),
)

# --- gists, jobs, webhooks, caches, journal -------------------------------------------------

gists = Table(
    "gists",
    metadata,
    Column("gist_id", Integer, primary_key=True),
    Column("gist_access_id", String(255), unique=True, nullable=False),
    Column("gist_description", Text, default="", nullable=False),
    Column("owner_id", _user_fk(None), nullable=False, index=True),
    # Unix time of expiry; -1 = never (a float, as Kallithea reports it).
    Column("gist_expires", Float, default=-1, nullable=False),
    Column("gist_type", String(128), default="public", nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
    Column("modified_at", DateTime, default=now, nullable=False),
)

#: Work done outside the API call: initial mirrors, forks and pulls (the worker runs them).
jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("repository_id", _repository_fk(), nullable=True, index=True),
    # ``queued``, ``running``, ``done`` or ``failed``.
    Column("state", String(16), default="queued", nullable=False),
    # What the job needs besides the repository (e.g. a clone URI), as JSON.
    Column("payload", JSON, default=dict, nullable=False),
    # A short, credential-free reason when ``failed``.
    Column("error", Text, default="", nullable=False),
    Column("created_on", DateTime, default=now, nullable=False),
    Column("updated_on", DateTime, default=now, onupdate=now, nullable=False),
)

#: Delivery ids already accepted, so a replayed webhook starts no second job.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(255), primary_key=True),
    Column("repository_id", _repository_fk(), nullable=False, index=True),
    Column("received_on", DateTime, default=now, nullable=False),
)

#: Cache keys per repository; a row turns inactive when the repository changes.
cache_invalidation = Table(
    "cache_invalidation",
    metadata,
    Column("cache_id", Integer, primary_key=True),
    Column("cache_key", String(255), unique=True, nullable=False),
    Column("cache_args", String(255), nullable=False, index=True),
    Column("cache_active", Boolean, default=False, nullable=False),
)

#: Who did what, when (Kallithea's ``user_logs``). Names are kept for deleted objects.
user_logs = Table(
    "user_logs",
    metadata,
    Column("user_log_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("user_id", _user_fk("SET NULL"), nullable=True, index=True),
    Column("username", String(255), nullable=False),
    Column("repository_id", _repository_fk("SET NULL"), nullable=True, index=True),
    Column("repository_name", String(255), default="", nullable=False),
    Column("user_ip", String(255), default="", nullable=False),
    Column("action", Text, nullable=False),
    Column("action_date", DateTime, default=now, server_default=func.now(), nullable=False),
)


def fits(column: Any, value: str | None) -> bool:
    """Whether ``value`` fits the string ``column`` (e.g. ``users.c.firstname``); None fits."""
    return value is None or len(value) <= column.type.length
