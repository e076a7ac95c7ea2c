"""Settling what killed calls left behind, so the database and the repository root agree.

A call that changes the repository root does so inside its database
transaction: the directory moves first, the rows commit after, and an undo runs
if the transaction rolls back (``CallContext.on_rollback``). A process killed
between the two (``kill -9``, a Lambda timeout, a lost host) runs no undo: a
new directory without its row, a renamed one under a name the database never
took, a deleted one in ``.trash/`` while its row is still there.

Before each such step the store writes an intent note (``repohost.git.storage``,
``<root>/.intents/``) that the call drops once its transaction has ended. A
note found later belongs to a call that died; ``reconcile`` asks the database
whether that call committed, by looking for the state a commit would have left,
and undoes the step if it did not:

====================  ==========================  ======================================
note                  committed when              otherwise
====================  ==========================  ======================================
``create_repo``       a row has the name          the directory goes to the trash
``rename_repo``       a row has the new name      the directory moves back (old row)
``trash_repo``        no row has the name         the trash entry moves back
``create_group``,     the same for group rows     the same
``rename_group``,
``trash_group``
``create_gist``,      a gist row has the          the same
``trash_gist``        access id
====================  ==========================  ======================================

An undo happens only to the very directory the step touched (its inode number
is in the note) and never replaces anything, so a note that is settled twice,
or after later calls reused the name, changes nothing.

When: ``python -m repohost.local`` settles every note and purges ``.tmp/`` and
``.trash/`` before it serves (nothing else runs then). Where other processes
may be serving calls (AWS), only notes older than ``STALE_SECONDS`` are
settled: no API call lives that long. ``rescan_repos`` settles those first, and
``recover()`` is the entry point for the worker or the migration function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from repohost.db.models import Gist, RepoGroup, Repository
from repohost.git.errors import GitError, InvalidName
from repohost.git.storage import RepoStore

log = logging.getLogger("repohost.recovery")

#: A note this old belongs to a dead call: Lambda stops any invocation at 15 minutes.
STALE_SECONDS = 16 * 60.0


@dataclass
class Recovered:
    #: Notes settled, and how many of them needed an undo.
    settled: int = 0
    undone: int = 0
    #: ``.trash/`` and ``.tmp/`` entries removed.
    purged: int = 0


def reconcile(
    session: Session, store: RepoStore, *, stale_after: float = STALE_SECONDS
) -> Recovered:
    """Settle every intent note older than ``stale_after`` seconds (see the module docstring).

    ``session`` is only read. A note whose undo fails stays for the next time.
    """
    outcome = Recovered()
    for path, record in store.pending_intents(stale_after):
        try:
            undone = _settle(session, store, record)
        except InvalidName as exc:  # a name no step could have used: nothing to undo
            log.warning("recovery: %s (%s) dropped: %s", record.get("op"), path.name, exc)
            undone = False
        except (GitError, OSError) as exc:
            log.warning("recovery: %s (%s) not settled: %s", record.get("op"), path.name, exc)
            continue
        if undone:
            outcome.undone += 1
            log.warning("recovery: undid %s", _describe(record))
        store.drop_intent(path)
        outcome.settled += 1
    return outcome


def recover(
    root: Path | str | None = None,
    *,
    stale_after: float = STALE_SECONDS,
) -> Recovered:
    """Settle old intent notes in a transaction of its own, then purge as old trash and staging.

    ``stale_after=0`` only when no other process serves calls on this root.
    """
    from repohost.config import get_settings
    from repohost.db.engine import transaction

    store = RepoStore(root if root is not None else get_settings().repos_root)
    with transaction() as session:
        outcome = reconcile(session, store, stale_after=stale_after)
    outcome.purged = store.purge_trash(stale_after=stale_after, trash_after=stale_after)
    return outcome


def _settle(session: Session, store: RepoStore, record: dict[str, object]) -> bool:
    """Undo the noted step if its transaction did not commit; True when something was undone."""
    op = record.get("op")
    inode = record.get("inode")
    if op in ("create_repo", "rename_repo", "trash_repo"):
        exists = _has(session, Repository.repo_name)
        path = store.path_for
    elif op in ("create_group", "rename_group", "trash_group"):
        exists = _has(session, RepoGroup.group_name)
        path = store.group_path
    elif op in ("create_gist", "trash_gist"):
        exists = _has(session, Gist.gist_access_id)
        path = store.gist_path
    else:
        log.warning("recovery: unknown intent %r dropped", op)
        return False
    if op.startswith("rename_"):
        old, new = _text(record, "old"), _text(record, "new")
        if exists(new) or not exists(old):
            return False
        return store.undo_rename(path(old), path(new), _inode(inode))
    name = _text(record, "access_id" if op.endswith("_gist") else "name")
    if op.startswith("create_"):
        return not exists(name) and store.undo_placement(path(name), _inode(inode))
    return exists(name) and store.undo_trash(_text(record, "trash"), path(name))


def _text(record: dict[str, object], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InvalidName(f"the note has no {key}")
    return value


def _inode(value: object) -> int:
    if not isinstance(value, int):
        raise InvalidName("the note has no inode number")
    return value


def _has(session: Session, column: Any) -> Callable[[str], bool]:
    def exists(value: str) -> bool:
        return session.scalar(select(column).where(column == value).limit(1)) is not None

    return exists


def requeue_jobs() -> int:
    """Send again every job that has not ended; for the in-process queue after a restart.

    That queue lived in the killed process, so its jobs (and one interrupted
    while running) would otherwise wait forever. Running a job twice is safe
    (``repohost.jobs.worker``). Returns how many were sent.
    """
    from repohost import jobs
    from repohost.db.engine import transaction
    from repohost.db.models import Job
    from repohost.jobs import queue

    with transaction() as session:
        waiting = list(
            session.execute(
                select(Job.job_id, Job.repository_id)
                .where(Job.state.not_in(jobs.FINAL), Job.repository_id.is_not(None))
                .order_by(Job.created_on, Job.job_id)
            )
        )
    for job_id, repo_id in waiting:
        queue.send(job_id, repo_id)
    return len(waiting)


def _describe(record: dict[str, object]) -> str:
    return ", ".join(f"{key}={value}" for key, value in record.items() if key != "inode")
