"""Settings, read once per process from environment variables.

Every knob a deployment has lives here, so the README's configuration table
and ``template.yaml`` can be checked against one place.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    #: SQLAlchemy URL. ``postgresql+pg8000://…`` on AWS, ``sqlite:///…`` locally.
    database_url: str = "sqlite:///data/repohost.sqlite"
    #: Secrets Manager secret (ARN or name) holding ``username``/``password``
    #: for the database; fills in the URL's credentials when set.
    db_secret_arn: str = ""
    #: Use RDS IAM authentication tokens instead of a password.
    db_iam_auth: bool = False
    #: Whether the database connection must use TLS (RDS, RDS Proxy).
    db_tls: bool = False
    #: PEM file of the CAs that may sign the database's certificate (with ``db_tls``),
    #: e.g. Amazon RDS's bundle for a direct connection; empty: the system's store.
    db_ca_file: str = ""
    #: Root directory holding the bare git repositories (the EFS mount on AWS).
    repos_root: Path = Path("data/repos")
    #: Largest JSON-RPC request body accepted, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: Repository type used when ``create_repo`` is not told one.
    default_repo_type: str = "git"
    #: Kallithea view names that accept ``?api_key=`` (0.3 whitelist model).
    api_access_whitelist: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {
                "ChangesetController:changeset_patch",
                "ChangesetController:changeset_raw",
                "FilesController:raw",
                "FilesController:archivefile",
            }
        )
    )
    #: Value reported as ``kallithea_version`` by ``get_server_info``.
    compat_version: str = "0.7.0"
    #: S3 bucket caching built archives (AWS); empty: the local folder below.
    archive_bucket: str = ""
    #: Folder caching built archives when there is no bucket (``make run``, tests).
    archive_cache_dir: Path = Path("data/archive-cache")
    #: Largest archive sent in the response body, in bytes; a larger one is a
    #: redirect to S3. Lambda's 6 MB response limit holds about 4.4 MB once
    #: base64-encoded. Without a bucket every archive is sent in the body.
    archive_inline_limit: int = 4 * 1024 * 1024
    #: Changesets in a repository's RSS and Atom feeds (Kallithea's ``rss_items_per_page``).
    feed_items: int = 20
    #: SQS FIFO queue the worker reads jobs from; empty: an in-process queue (``make run``).
    job_queue_url: str = ""
    #: Let a ``clone_uri`` name a local directory or ``file://`` URL. Tests only: it
    #: reads any repository on the server past its permissions (Kallithea's mis-feature).
    allow_local_remotes: bool = False
    #: Networks a ``clone_uri`` may reach although loopback, private, link-local or
    #: otherwise non-public; empty: none (``true`` in the environment: every address).
    allow_private_remotes: tuple[str, ...] = ()
    #: Seconds ``pull`` fetches before handing the rest to the worker (API Gateway
    #: gives up at 29 s).
    pull_budget_seconds: float = 25.0


def _networks(raw: str) -> tuple[str, ...]:
    """``true``: every address; otherwise comma-separated networks (``10.1.0.0/16,fd00::/8``)."""
    if _bool(raw):
        return ("0.0.0.0/0", "::/0")
    if raw.strip().lower() in {"", "0", "false", "no", "off"}:
        return ()
    items = (item.strip() for item in raw.split(","))
    return tuple(str(ipaddress.ip_network(item, strict=False)) for item in items if item)


def _whitelist(raw: str) -> frozenset[str]:
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


def settings_from_env(env: dict[str, str] | os._Environ[str] = os.environ) -> Settings:
    """Build settings from ``REPOHOST_*`` variables; anything unset keeps its default."""
    defaults = Settings()
    get = env.get
    whitelist = get("REPOHOST_API_ACCESS_WHITELIST")
    return Settings(
        database_url=get("REPOHOST_DATABASE_URL", defaults.database_url),
        db_secret_arn=get("REPOHOST_DB_SECRET_ARN", ""),
        db_iam_auth=_bool(get("REPOHOST_DB_IAM_AUTH", "false")),
        db_tls=_bool(get("REPOHOST_DB_TLS", "false")),
        db_ca_file=get("REPOHOST_DB_CA_FILE", ""),
        repos_root=Path(get("REPOHOST_REPOS_ROOT", str(defaults.repos_root))),
        max_body_bytes=int(get("REPOHOST_MAX_BODY_BYTES", str(defaults.max_body_bytes))),
        default_repo_type=get("REPOHOST_DEFAULT_REPO_TYPE", defaults.default_repo_type),
        api_access_whitelist=(
            _whitelist(whitelist) if whitelist is not None else defaults.api_access_whitelist
        ),
        archive_bucket=get("REPOHOST_ARCHIVE_BUCKET", ""),
        archive_cache_dir=Path(get("REPOHOST_ARCHIVE_CACHE_DIR", str(defaults.archive_cache_dir))),
        archive_inline_limit=int(
            get("REPOHOST_ARCHIVE_INLINE_LIMIT", str(defaults.archive_inline_limit))
        ),
        feed_items=int(get("REPOHOST_FEED_ITEMS", str(defaults.feed_items))),
        job_queue_url=get("REPOHOST_JOB_QUEUE_URL", ""),
        allow_local_remotes=_bool(get("REPOHOST_ALLOW_LOCAL_REMOTES", "false")),
        allow_private_remotes=_networks(get("REPOHOST_ALLOW_PRIVATE_REMOTES", "")),
        pull_budget_seconds=float(
            get("REPOHOST_PULL_BUDGET_SECONDS", str(defaults.pull_budget_seconds))
        ),
    )


@cache
def get_settings() -> Settings:
    """The process-wide settings (tests reset them with ``get_settings.cache_clear()``)."""
    return settings_from_env()
