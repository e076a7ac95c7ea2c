"""Push webhooks from GitHub, GitLab and Gitea/Forgejo: verify, de-duplicate, coalesce, queue.

A webhook only says "the upstream changed": the body is never parsed, only
authenticated, and the answer is a queued pull of everything (the worker
fetches; nothing is fetched here, so the answer comes at once).

- Signatures, each with the repository's own secret and compared in constant
  time: GitHub ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``;
  Gitea ``X-Gitea-Signature`` and Forgejo ``X-Forgejo-Signature``: the bare hex
  HMAC; GitLab ``X-Gitlab-Token``: the secret itself. Gitea and Forgejo also
  send GitHub's headers, so theirs are looked at first.
- Anything not verified (no signature, a wrong one, an unknown repository, a
  repository without a secret) gets the same 401 with the same body, after the
  same HMAC work, so the answer does not tell whether a repository exists.
- A delivery id seen before for the repository (GitHub ``X-GitHub-Delivery``,
  GitLab ``Idempotency-Key`` else ``X-Gitlab-Event-UUID``, ``X-Gitea-Delivery``,
  ``X-Forgejo-Delivery``; without one, the body's SHA-256) is answered 200
  and starts nothing: providers retry, attackers replay.
- Bursts coalesce on ``Repository.pull_pending``: the flag is set with
  ``UPDATE ... WHERE pull_pending = false`` and a pull is queued only when that
  changed the row; the worker clears the flag when it starts the pull, so
  pushes during a pull queue exactly one more. A flag left set with no pull
  waiting (a job lost or failed before it started) does not block later
  webhooks for longer than ``STALE_PENDING``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from repohost import jobs
from repohost.db.models import Job, Repository, WebhookDelivery
from repohost.git.errors import InvalidName
from repohost.git.names import validate_repo_name

#: A queued pull older than this no longer holds back new ones (see the module docstring).
STALE_PENDING = timedelta(minutes=15)
#: Delivery ids are kept this long; GitHub lets users redeliver for a few days.
KEEP_DELIVERIES = timedelta(days=30)
#: Computed against when there is no real secret, so every refusal costs the same.
_NO_SECRET = secrets.token_hex(16)

Headers = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    signature_header: str
    event_header: str
    delivery_headers: tuple[str, ...]
    #: Events meaning "refs changed upstream".
    push_events: frozenset[str]
    ping_events: frozenset[str] = frozenset()


PROVIDERS = (
    Provider(
        "forgejo",
        "x-forgejo-signature",
        "x-forgejo-event",
        ("x-forgejo-delivery",),
        frozenset({"push", "create", "delete"}),
    ),
    Provider(
        "gitea",
        "x-gitea-signature",
        "x-gitea-event",
        ("x-gitea-delivery",),
        frozenset({"push", "create", "delete"}),
    ),
    Provider(
        "github",
        "x-hub-signature-256",
        "x-github-event",
        ("x-github-delivery",),
        frozenset({"push"}),
        frozenset({"ping"}),
    ),
    Provider(
        "gitlab",
        "x-gitlab-token",
        "x-gitlab-event",
        ("idempotency-key", "x-gitlab-event-uuid"),
        frozenset({"Push Hook", "Tag Push Hook"}),
    ),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The HTTP answer: status and a small JSON body."""

    status: int
    body: dict[str, str]
    #: For the log line: what happened, never anything secret.
    note: str


UNAUTHORIZED = Outcome(401, {"message": "Unauthorized"}, "refused")


def _digest(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _equal(given: str, expected: str) -> bool:
    """Constant-time comparison of header text (any characters) with the expected value."""
    return hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def signature_valid(provider: Provider, value: str, secret: str, body: bytes) -> bool:
    """Whether the provider's signature header ``value`` proves ``secret`` signed ``body``."""
    if provider.name == "gitlab":
        return _equal(value, secret)
    expected = _digest(secret, body)
    if provider.name == "github":
        expected = "sha256=" + expected
    return _equal(value.lower(), expected)


def identify(headers: Headers) -> tuple[Provider, str] | None:
    """The provider whose signature header is present, with the header's value."""
    for provider in PROVIDERS:
        value = headers.get(provider.signature_header)
        if value:
            return provider, value
    return None


def find_repository(session: Session, path: str) -> Repository | None:
    """The repository a hook path names: its full name, or ``_<id>``.

    Only a valid name reaches the database (no control characters, no ``..``).
    """
    if path.startswith("_") and path[1:].isascii() and path[1:].isdigit() and len(path) < 12:
        return session.get(Repository, int(path[1:]))
    try:
        validate_repo_name(path)
    except InvalidName:
        return None
    return session.scalars(select(Repository).where(Repository.repo_name == path)).one_or_none()


def _delivery_key(provider: Provider, repo_id: int, headers: Headers, body: bytes) -> str:
    """The id that makes a redelivery recognisable, scoped to provider and repository."""
    raw = next((headers[h] for h in provider.delivery_headers if headers.get(h)), None)
    if raw is None:
        raw = "body-sha256:" + hashlib.sha256(body).hexdigest()
    key = f"{provider.name}:{repo_id}:{raw.strip()}"
    if len(key) > 255 or not key.isascii() or not key.isprintable():
        digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
        key = f"{provider.name}:{repo_id}:sha256:{digest}"
    return key


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _first_delivery(session: Session, key: str, repo_id: int) -> bool:
    """Record the delivery id; False if it was recorded before (also by a concurrent call)."""
    try:
        with session.begin_nested():
            session.add(WebhookDelivery(delivery_id=key, repository_id=repo_id))
            session.flush()
    except IntegrityError:
        return False
    session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.repository_id == repo_id,
            WebhookDelivery.received_on < _now() - KEEP_DELIVERIES,
        )
    )
    return True


def claim_pull(session: Session, repo_id: int) -> bool:
    """Set ``pull_pending``; True when this call must queue the pull (see the module docstring).

    On PostgreSQL a concurrent caller's UPDATE waits for the first one's
    commit and then finds the flag set; SQLite runs one writer at a time.
    """
    changed = session.execute(
        update(Repository)
        .where(Repository.repo_id == repo_id, Repository.pull_pending.is_(False))
        .values(pull_pending=True)
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount == 1:
        return True
    waiting = session.scalars(
        select(Job.job_id)
        .where(
            Job.repository_id == repo_id,
            Job.kind == jobs.PULL,
            Job.state == jobs.QUEUED,
            Job.created_on > _now() - STALE_PENDING,
        )
        .limit(1)
    ).first()
    return waiting is None


def receive(session: Session, path: str, headers: Headers, body: bytes, source_ip: str) -> Outcome:
    """Handle one webhook inside the caller's transaction (``headers`` with lower-case names).

    A queued pull goes out when that transaction commits (``repohost.jobs``).
    """
    found = identify(headers)
    repo = find_repository(session, path)
    secret = repo.webhook_secret if repo is not None else None
    if found is None:
        _digest(_NO_SECRET, body)
        return UNAUTHORIZED
    provider, signature = found
    valid = signature_valid(provider, signature, secret or _NO_SECRET, body)
    if repo is None or not secret or not valid:
        return UNAUTHORIZED
    event = (headers.get(provider.event_header) or "").strip()
    if event in provider.ping_events:
        return Outcome(200, {"status": "ok"}, f"{provider.name} {event}")
    if event not in provider.push_events:
        return Outcome(200, {"status": "ignored"}, f"{provider.name} event ignored")
    key = _delivery_key(provider, repo.repo_id, headers, body)
    if not _first_delivery(session, key, repo.repo_id):
        return Outcome(200, {"status": "duplicate"}, f"{provider.name} delivery seen before")
    if not claim_pull(session, repo.repo_id):
        return Outcome(202, {"status": "coalesced"}, f"{provider.name} push, pull already queued")
    # The delivery key doubles as the SQS deduplication id; the journal credits the owner
    # from the provider's address (a webhook has no user).
    jobs.enqueue(session, jobs.PULL, repo.repo_id, {"ip": source_ip}, dedup_id=key)
    return Outcome(202, {"status": "queued"}, f"{provider.name} push, pull queued")
