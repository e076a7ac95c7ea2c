"""What a method receives besides its arguments: the caller, the session, the request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from repohost.auth.permissions import AuthUser
from repohost.config import Settings
from repohost.db.models import JournalEntry, Repository


@dataclass
class CallContext:
    session: Session
    caller: AuthUser
    #: The client address API Gateway saw.
    ip: str
    settings: Settings
    request_id: str

    def journal(self, action: str, repo: Repository | None = None) -> None:
        """Record that the caller did ``action`` (e.g. ``admin_created_user:bob``)."""
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
