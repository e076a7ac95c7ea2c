"""Changesets (Kallithea 0.7): ``get_changesets`` and ``get_changeset``.

A repository the caller may not read "does not exist" here as everywhere:
Kallithea 0.7 answers ``Access denied to repo <repo_name>``, naming it even to a
caller who gave only its id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from repohost import repos
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
BAD_DATE = "`<start_date | end_date>` must be a date like 2024-01-31T23:59:59"
BACKWARDS = "Start revision `<start>` cannot be after end revision `<end>`"


def _date(name: str, value: str | None) -> datetime | None:
    if not value:  # 0.7: an empty string is no bound
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        raise JSONRPCError(f"`{name}` must be a date like 2024-01-31T23:59:59") from None


@api_method(
    access="repository.read on the repository",
    errors=(
        "repository `<repoid>` does not exist",
        BAD_DATE,
        "Repository is empty",
        "branch `<branch_name>` does not exist",
        "Changeset <start | end> does not exist",
        BACKWARDS,
    ),
)
def get_changesets(
    ctx: CallContext,
    repoid: int | str,
    start: str | None = None,
    end: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    branch_name: str | None = None,
    reverse: bool = False,
    with_file_list: bool = False,
    max_revisions: int | None = None,
) -> list[dict[str, Any]]:
    """Changesets, oldest first (newest first with ``reverse``).

    ``max_revisions`` keeps the newest N, still returned oldest first.
    """
    from repohost.git import read
    from repohost.git.errors import BranchNotFound, EmptyRepository, InvalidRange, RevisionNotFound

    repo = repos.repo_with(ctx, repoid, "read")
    since, until = _date("start_date", start_date), _date("end_date", end_date)
    try:
        with repos.git_data(ctx, repo.repo_name, repoid) as git_repo:
            try:
                return read.list_changesets(
                    git_repo,
                    start=start,
                    end=end,
                    start_date=since,
                    end_date=until,
                    branch_name=branch_name,
                    reverse=reverse,
                    max_revisions=max_revisions,
                    with_file_list=with_file_list,
                )
            except RevisionNotFound:
                # ``start`` is resolved first: name it if it is the wrong one
                wrong = start if start and not _resolves(git_repo, start) else end
                raise JSONRPCError(f"Changeset {wrong} does not exist") from None
    except BranchNotFound:
        raise JSONRPCError(f"branch `{branch_name}` does not exist") from None
    except EmptyRepository:
        raise JSONRPCError("Repository is empty") from None
    except InvalidRange:
        raise JSONRPCError(
            f"Start revision `{start}` cannot be after end revision `{end}`"
        ) from None


def _resolves(git_repo: Any, revision: str) -> bool:
    from repohost.git import read
    from repohost.git.errors import ReadError

    try:
        read.resolve_revision(git_repo, revision)
    except ReadError:
        return False
    return True


@api_method(
    access="repository.read on the repository",
    errors=(
        "repository `<repoid>` does not exist",
        "Changeset <raw_id> does not exist",
    ),
)
def get_changeset(
    ctx: CallContext, repoid: int | str, raw_id: str, with_reviews: bool = False
) -> dict[str, Any]:
    """One changeset with its author split and the files it added, changed and removed."""
    from repohost.git import read
    from repohost.git.errors import ReadError

    repo = repos.repo_with(ctx, repoid, "read")
    try:
        with repos.git_data(ctx, repo.repo_name, repoid) as git_repo:
            changeset = read.changeset_detail(git_repo, raw_id)
    except ReadError:
        raise JSONRPCError(f"Changeset {raw_id} does not exist") from None
    if with_reviews:
        changeset["reviews"] = []  # repohost has no review statuses (no pull requests)
    return changeset
