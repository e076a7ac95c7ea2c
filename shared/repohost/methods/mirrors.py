"""``pull``: update a repository from its upstream, at once when that fits the time budget.

Source, as Kallithea 0.7: the ``clone_uri`` argument (used once, not stored),
else the stored ``clone_uri``, else the fork parent's directory; with none,
``Unable to pull changes from `<repo>```. A URL breaking a rule of
``repohost.remotes`` answers ``clone_uri refused: <rule>``; any failure of the
fetch answers ``Unable to pull changes from `<repo>``` (the cause is logged,
without credentials) and changes nothing.

The answer is Kallithea's ``{"msg": "Pulled from `<repo>`", "repository": "<repo>"}``.
When the work goes to the worker instead, the same ``msg`` (Kallithea clients
check only for an error) plus ``"task": "<job id>"`` and ``"queued": true``.
That happens when:

- the repository still waits for its first content (``create_repo`` with a
  ``clone_uri``, a fork made as a job) or that failed (``repo_state_error``):
  the pending job is reused, or a new one is queued;
- another writer holds the repository (a worker pull, say): a pull is queued
  behind it rather than waiting past API Gateway's 29 s;
- the fetch would outgrow ``pull_budget_seconds``: it is abandoned, unchanged,
  and queued.

A queued plain pull joins one already waiting (``pull_pending``, as webhooks
do). A synchronous pull leaves ``pull_pending`` alone: a pull already queued
still runs and finds nothing new.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import func, select

from repohost import jobs, repos
from repohost.db import queries
from repohost.db.models import Job, Repository
from repohost.git.errors import LockTimeout
from repohost.git.fetch import FetchError, OutOfTime, fetch_into
from repohost.git.locks import repo_write_lock
from repohost.jobs import worker
from repohost.remotes import Remote, RemotePolicy, RemoteRefused, mask
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

log = logging.getLogger("repohost.mirrors")

#: How long ``pull`` waits for a repository another writer holds before queueing instead.
BUSY_WAIT = 1.0


@api_method(
    admin_only=True,
    errors=(
        "repository `<repoid>` does not exist",
        "clone_uri refused: <rule>",
        "Unable to pull changes from `<repo_name>`",
    ),
)
def pull(ctx: CallContext, repoid: int | str, clone_uri: str | None = None) -> dict[str, Any]:
    """Fetch every branch and tag from the upstream (or the fork's parent) into the repository."""
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None:
        raise repos.not_found(repoid)
    deadline = time.monotonic() + ctx.settings.pull_budget_seconds
    policy = RemotePolicy.from_settings(ctx.settings)
    try:
        remote = worker.source_of(ctx.store, repo, clone_uri, policy)
    except RemoteRefused as exc:
        raise JSONRPCError(str(exc)) from None
    failed = JSONRPCError(f"Unable to pull changes from `{repo.repo_name}`")
    if remote is None:
        raise failed
    if repo.repo_state != worker.CREATED:
        return _handed_over(repo, _first_content(ctx, repo, remote, clone_uri))
    if not _try_advisory_lock(ctx, repo.repo_id):
        return _handed_over(repo, _queue_pull(ctx, repo, clone_uri))
    try:
        with repo_write_lock(ctx.store.root, repo.repo_id, timeout=BUSY_WAIT):
            path = ctx.store.path_for(repo.repo_name)
            result = fetch_into(path, remote, policy, deadline=deadline)
            repo.changeset_cache = worker.changeset_cache(ctx.store, repo)
    except (LockTimeout, OutOfTime):
        return _handed_over(repo, _queue_pull(ctx, repo, clone_uri))
    except RemoteRefused as exc:
        log.warning("pull of %s from %s: %s", repo.repo_name, mask(remote.url), exc)
        raise JSONRPCError(str(exc)) from None
    except FetchError as exc:
        log.warning("pull of %s from %s failed: %s", repo.repo_name, mask(remote.url), exc)
        raise failed from None
    ctx.journal(worker.pull_action(result), repo)
    return {"msg": f"Pulled from `{repo.repo_name}`", "repository": repo.repo_name}


def _try_advisory_lock(ctx: CallContext, repo_id: int) -> bool:
    """PostgreSQL: the repository's advisory lock if free now (held until the call ends)."""
    from repohost.rpc.context import lock_number

    if not ctx.db.on_postgresql:
        return True
    return bool(ctx.session.scalar(select(func.pg_try_advisory_xact_lock(lock_number(repo_id)))))


def _first_content(
    ctx: CallContext, repo: Repository, remote: Remote, clone_uri: str | None
) -> Job:
    """The job that fills a repository still empty: the pending one, or a new one."""
    if clone_uri is None:
        pending = jobs.active_job(ctx.session, repo.repo_id)
        if pending is not None:
            return pending
    repo.repo_state = worker.PENDING
    kind = jobs.PULL if clone_uri else jobs.FORK if remote.is_local else jobs.MIRROR
    return repos.queue_job(ctx, kind, repo, clone_uri)


def _queue_pull(ctx: CallContext, repo: Repository, clone_uri: str | None) -> Job:
    from repohost.webhooks import claim_pull

    if clone_uri is None and not claim_pull(ctx.session, repo.repo_id):
        waiting = jobs.active_job(ctx.session, repo.repo_id, (jobs.PULL,))
        if waiting is not None:
            return waiting
    return repos.queue_job(ctx, jobs.PULL, repo, clone_uri)


def _handed_over(repo: Repository, job: Job) -> dict[str, Any]:
    return {
        "msg": f"Pulled from `{repo.repo_name}`",
        "repository": repo.repo_name,
        "task": job.job_id,
        "queued": True,
    }
