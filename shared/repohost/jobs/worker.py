"""Running one job: fetch into the repository, then record the result in the database.

``run_job(job_id)`` is what the worker Lambda (``functions/worker``) and the
in-process queue call. It is idempotent, because SQS delivers at least once:

- a job that is gone (its repository was deleted) or already ``done``/``failed``
  is skipped; the state is read again once the repository's lock is held, so
  two deliveries of one job running at once do the work once;
- a fetch moves refs only to what the remote has, so running it twice changes
  nothing the second time; a fork is a fetch from the parent's directory, so a
  repeated fork job finds its target complete and does nothing.

Outcomes: the fetch worked → ``done``, the repository ``repo_state_created``
with its ``last_changeset`` refreshed, and for a pull a ``push_remote:<new tips>``
journal entry (Kallithea's action name); the fetch failed or the remote was
refused → ``failed`` with a credential-free reason, nothing in the repository
changed, and a repository still waiting for its first content is marked
``repo_state_error`` (``pull`` tries again; Kallithea would have deleted it).
Anything else (a lock not obtained, the database) raises, so the queue retries.
Once a job has ended its payload loses any ``clone_uri`` (it may hold a password).

A plain pull clears ``pull_pending`` when it starts, not when it ends, so a
push arriving during the fetch queues exactly one more pull (``repohost.webhooks``).

Locks, in the API's order: PostgreSQL's advisory lock of the repository (held by
the job's transaction), then its file lock. On SQLite (``make run``) the read
transaction is committed before the fetch, so a long fetch does not hold the
database's only write lock.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from repohost import jobs
from repohost.config import Settings, get_settings
from repohost.db.engine import transaction
from repohost.db.models import Job, JournalEntry, Repository, User
from repohost.git.fetch import FetchError, FetchResult, fetch_into
from repohost.git.locks import repo_write_lock
from repohost.git.storage import RepoStore
from repohost.remotes import Remote, RemotePolicy, RemoteRefused, mask, parse

log = logging.getLogger("repohost.jobs")

CREATED, PENDING, ERROR = "repo_state_created", "repo_state_pending", "repo_state_error"
#: Longest wait for a repository's file lock (an API call holds it for seconds).
LOCK_WAIT = 120.0


def source_of(
    store: RepoStore, repo: Repository, clone_uri: str | None, policy: RemotePolicy
) -> Remote | None:
    """Kallithea 0.7's order: the given URL, the stored one, the fork parent's directory.

    URLs are parsed against the rules again (they may have changed since the URL
    was stored); their addresses are checked when the fetch connects.
    """
    uri = clone_uri or repo.clone_uri
    if uri:
        return parse(uri, policy)
    if repo.fork is not None:
        return Remote.local(str(store.path_for(repo.fork.repo_name)))
    return None


def changeset_cache(store: RepoStore, repo: Repository) -> dict[str, Any]:
    """The ``last_changeset`` read from disk, as ``Repository.changeset_cache`` stores it."""
    from repohost.git import read

    with read.open_repo(store.path_for(repo.repo_name)) as git_repo:
        changeset = read.last_changeset(git_repo)
    return {**changeset, "date": changeset["date"].isoformat()}


def pull_action(result: FetchResult) -> str:
    return "push_remote:" + ",".join(result.tips)


def run_job(job_id: str) -> None:
    """Run a job to ``done`` or ``failed``; raises only when a retry may succeed."""
    settings = get_settings()
    store = RepoStore(settings.repos_root)
    with transaction() as session:
        job = session.get(Job, job_id)
        if job is None or job.state in jobs.FINAL:
            log.info("job %s: %s, skipped", job_id, "gone" if job is None else job.state)
            return
        if job.kind not in jobs.KINDS:
            raise ValueError(f"job {job_id}: unknown kind {job.kind!r}")
        repo_id = job.repository_id
        if repo_id is None:  # its repository was deleted (the row is usually gone with it)
            _end(job, jobs.DONE)
            return
        job.state = jobs.RUNNING
        if job.kind == jobs.PULL and "clone_uri" not in job.payload:
            session.execute(
                update(Repository).where(Repository.repo_id == repo_id).values(pull_pending=False)
            )
    with ExitStack() as held, transaction() as session:
        _lock(session, held, store, repo_id)
        job = session.get(Job, job_id)
        repo = session.get(Repository, repo_id)
        if job is None or repo is None or job.state in jobs.FINAL:
            return  # deleted meanwhile (with its jobs), or another delivery ran it
        _run(session, settings, store, job, repo)


def _lock(session: Session, held: ExitStack, store: RepoStore, repo_id: int) -> None:
    from repohost.rpc.context import lock_number

    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(lock_number(repo_id))))
    held.enter_context(repo_write_lock(store.root, repo_id, timeout=LOCK_WAIT))


def _run(
    session: Session, settings: Settings, store: RepoStore, job: Job, repo: Repository
) -> None:
    policy = RemotePolicy.from_settings(settings)
    where = f"job {job.job_id} ({job.kind} of {repo.repo_name})"
    try:
        remote = source_of(store, repo, job.payload.get("clone_uri"), policy)
        if remote is None:
            raise FetchError("no clone_uri and no fork parent to pull from")
        if session.get_bind().dialect.name == "sqlite":
            session.commit()  # see the module docstring
        log.info("%s: fetching from %s", where, mask(remote.url))
        result = fetch_into(store.path_for(repo.repo_name), remote, policy)
    except (RemoteRefused, FetchError) as exc:
        log.warning("%s: failed: %s", where, exc)
        if repo.repo_state != CREATED:
            repo.repo_state = ERROR
        _end(job, jobs.FAILED, str(exc))
        return
    repo.changeset_cache = changeset_cache(store, repo)
    repo.repo_state = CREATED
    if job.kind == jobs.PULL:
        _journal(session, job, repo, pull_action(result))
    _end(job, jobs.DONE)
    log.info("%s: done, %d refs moved", where, len(result.moved))


def _end(job: Job, state: str, error: str = "") -> None:
    job.state = state
    job.error = error
    if "clone_uri" in job.payload:
        job.payload = {k: v for k, v in job.payload.items() if k != "clone_uri"}


def _journal(session: Session, job: Job, repo: Repository, action: str) -> None:
    """Credit whoever asked (payload ``user_id``), else the owner (a webhook has no user)."""
    user_id = job.payload.get("user_id")
    user = session.get(User, user_id) if user_id is not None else None
    user = user or repo.owner
    session.add(
        JournalEntry(
            user_id=user.user_id,
            username=user.username,
            repository_id=repo.repo_id,
            repository_name=repo.repo_name,
            user_ip=job.payload.get("ip", ""),
            action=action,
        )
    )
