"""Jobs: work that outlives an API call (initial mirrors, forks of big repositories, pulls).

``enqueue(session, kind, repo_id, payload=None, dedup_id=None) -> Job | None``
adds a ``Job`` row (state ``queued``) to the caller's session; its id goes to
the queue (``repohost.jobs.queue``) only after that session's transaction
commits, and is forgotten if it rolls back. The hook is a SQLAlchemy session
event, so any caller (an RPC method, the webhook handler with its own
transaction, the worker) gets it with nothing to call afterwards. A job added
inside a savepoint that rolls back is still sent; the worker skips ids it
cannot find. A failed send is logged and leaves the row ``queued``.

``dedup_id`` is the message deduplication id on SQS; ``enqueue`` returns None
(and queues nothing) when the same id was used for the same repository within
SQS's five-minute window, so a repeated request leaves no stray ``queued`` row.

Kinds (``repohost.jobs.worker`` runs them): ``mirror`` fills a new repository
from its ``clone_uri``, ``fork`` fills a new fork from its parent, ``pull``
updates a repository (payload ``clone_uri`` overrides the stored one). Payload
``user_id`` and ``ip`` name whom the journal credits. States: ``queued``,
``running``, ``done``, ``failed``; a job in ``done`` or ``failed`` never runs again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from repohost.db.models import Job

log = logging.getLogger("repohost.jobs")

MIRROR, FORK, PULL = "mirror", "fork", "pull"
KINDS = (MIRROR, FORK, PULL)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINAL = (DONE, FAILED)

#: SQS FIFO drops a message whose deduplication id it saw this recently.
DEDUP_WINDOW = timedelta(minutes=5)
_UNSENT = "repohost.jobs.unsent"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def enqueue(
    session: Session,
    kind: str,
    repo_id: int,
    payload: dict[str, Any] | None = None,
    dedup_id: str | None = None,
) -> Job | None:
    """Add a queued job, sent once the session commits (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    data = dict(payload or {})
    if dedup_id is not None:
        if _seen(session, repo_id, dedup_id):
            return None
        data["dedup_id"] = dedup_id
    job = Job(job_id=uuid.uuid4().hex, kind=kind, repository_id=repo_id, state=QUEUED, payload=data)
    session.add(job)
    session.flush()
    session.info.setdefault(_UNSENT, []).append((job.job_id, repo_id, dedup_id))
    return job


def _seen(session: Session, repo_id: int, dedup_id: str) -> bool:
    recent = session.scalars(
        select(Job.payload).where(
            Job.repository_id == repo_id, Job.created_on > _now() - DEDUP_WINDOW
        )
    )
    return any(payload.get("dedup_id") == dedup_id for payload in recent)


def active_job(session: Session, repo_id: int, kinds: tuple[str, ...] = KINDS) -> Job | None:
    """The newest job of the repository that has not ended (queued or running)."""
    return session.scalars(
        select(Job)
        .where(Job.repository_id == repo_id, Job.kind.in_(kinds), Job.state.not_in(FINAL))
        .order_by(Job.created_on.desc())
        .limit(1)
    ).first()


@event.listens_for(Session, "after_commit")
def _send_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the outer transaction may still roll back
    from repohost.jobs import queue

    for job_id, repo_id, dedup_id in session.info.pop(_UNSENT, ()):
        try:
            queue.send(job_id, repo_id, dedup_id)
        except Exception:
            log.exception("job %s: committed but not sent; it stays queued", job_id)


@event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_UNSENT, None)
