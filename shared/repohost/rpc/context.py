"""What a method receives besides its arguments: the caller, the database, the request.

``ctx.db`` runs Core statements; ``ctx.session``, the ORM session over the same
transaction, is opened (and ``sqlalchemy.orm`` imported) when a method first
uses it.

It also ties filesystem changes to the database transaction: a method that
changes a repository directory registers how to undo it (``on_rollback``) or
what to finish once the rows are committed (``after_commit``), so the
database and the repository root never disagree about what exists. A process
killed before either runs leaves the store's intent notes behind, which
``repohost.recovery`` settles (see ``repohost.git.storage``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from repohost.auth.permissions import AuthUser
from repohost.config import Settings
from repohost.db.engine import Database
from repohost.rpc.errors import JSONRPCError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from repohost.db.models import Repository, User
    from repohost.git.storage import RepoStore

log = logging.getLogger("repohost.rpc")

Action = Callable[[], object]


@dataclass
class CallContext:
    db: Database
    caller: AuthUser
    #: The client address API Gateway saw.
    ip: str
    settings: Settings
    request_id: str
    #: ``https://host`` the client called, for URLs in results (gists).
    base_url: str = ""
    _after_commit: list[Action] = field(default_factory=list, repr=False)
    _on_rollback: list[Action] = field(default_factory=list, repr=False)
    _held: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def session(self) -> Session:
        return self.db.session

    @cached_property
    def caller_user(self) -> User:
        """The caller as an ORM object, for methods that link objects to them."""
        from repohost.db.models import User

        user = self.session.get(User, self.caller.user_id)
        if user is None:  # deleted by another call since this one authenticated
            raise JSONRPCError("Invalid API key")
        return user

    def named_user(self, ident: int | str | None) -> User:
        """The user ``ident`` (an id or a name) names, the caller when None; or the
        API's ``user `<ident>` does not exist``."""
        if ident is None:
            return self.caller_user
        from repohost.db import queries

        user = queries.get_user(self.session, ident)
        if user is None:
            raise JSONRPCError(f"user `{ident}` does not exist")
        return user

    def journal(self, action: str, repo: Repository | None = None) -> None:
        """Record that the caller did ``action`` (e.g. ``admin_created_user:bob``)."""
        from repohost.db.models import JournalEntry

        user = self.caller.user
        self.session.add(
            JournalEntry(
                user_id=user.user_id,
                username=user.username,
                repository_id=repo.repo_id if repo is not None else None,
                repository_name=repo.repo_name if repo is not None else "",
                user_ip=self.ip,
                action=action,
            )
        )

    # --- the filesystem, in step with the transaction -------------------------------------

    @cached_property
    def store(self) -> RepoStore:
        from repohost.git.storage import RepoStore

        root = self.settings.repos_root
        root.mkdir(parents=True, exist_ok=True)
        return RepoStore(root, intents=True)

    def on_rollback(self, undo: Action) -> None:
        """Run ``undo`` if the call fails after this point (latest first)."""
        self._on_rollback.append(undo)

    def after_commit(self, action: Action) -> None:
        """Run ``action`` once the transaction has committed."""
        self._after_commit.append(action)

    def lock_repository(self, key: int | str) -> None:
        """Serialize writers of one repository until the call ends.

        A PostgreSQL advisory lock covers every host; the file lock covers
        SQLite under ``make run`` (and is cheap on PostgreSQL too).
        """
        from repohost.git.locks import repo_write_lock

        if self.db.on_postgresql:
            self.db.execute(select(func.pg_advisory_xact_lock(lock_number(key))))
        self._held.enter_context(repo_write_lock(self.store.root, key, timeout=60))

    def finish(self, committed: bool) -> None:
        """Called once by the dispatcher when the transaction is over."""
        actions = self._after_commit if committed else reversed(self._on_rollback)
        settled = True
        for action in actions:
            try:
                action()
            except Exception:
                # After a commit only the trash is left to empty (purge_trash's job too).
                settled = committed
                log.exception(
                    "after %s: a filesystem step failed",
                    "commit" if committed else "rollback",
                    extra={"request_id": self.request_id},
                )
        if "store" in self.__dict__:
            if settled:
                self.store.settle_intents()
            else:  # an undo failed: the notes stay for repohost.recovery
                log.warning(
                    "filesystem steps left for recovery", extra={"request_id": self.request_id}
                )
        self._held.close()


def lock_number(key: int | str) -> int:
    """A stable 63-bit advisory-lock number for a repository key."""
    import hashlib

    digest = hashlib.blake2b(f"repohost:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
