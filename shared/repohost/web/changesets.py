"""Diffs and patches of one changeset (facts §5.5).

- ``/{repo}/changeset-diff/{rev}`` and the old alias ``/{repo}/raw-changeset/{rev}``
  (``ChangesetController:changeset_raw``): the diff, ``text/plain``.
- ``/{repo}/changeset-download/{rev}`` (``:changeset_download``): the same
  body as an attachment named after the first 12 characters of the revision
  as the URL gives it (``tip.diff``), not the resolved id.
- ``/{repo}/changeset-patch/{rev}`` (``:changeset_patch``): Kallithea's git
  header (``From <id> <date>``, ``From:``, ``Date:``, ``Subject: [PATCH]``,
  ``---``), a blank line, then the diff. Dates are ``YYYY-MM-DD HH:MM:SS``
  (UTC), the commit message without its final newlines.

The diff is against the first parent (a root commit against the empty tree),
git-style with full index lines, binary patches and rename detection
(``repohost.git.diff``). Query: ``context=<n>`` lines of context (default 3;
anything that is not a number ≥ 0 means 3), ``ignorews=<anything non-empty>``
ignores whitespace (``-w``; such a diff no longer applies, as in Kallithea).
A range ``<a>...<b>`` serves ``<b>``'s changeset once both ends exist, as
Kallithea's loop over the range leaves the last one.

Headers and caching as the file views (``nosniff``, the sandboxing CSP): a
strong ETag of the commit id (plus the options when they are not the
defaults), ``If-None-Match`` → 304 before any diff is computed. A diff
bigger than one Lambda response can carry answers 413.
"""

from __future__ import annotations

from collections.abc import Callable

from repohost.git.blobs import open_repository
from repohost.git.diff import commit_diff
from repohost.git.errors import GitError, ReadError
from repohost.git.read import changeset_summary, open_repo, resolve_revision
from repohost.http.events import Event
from repohost.web.files import (
    MAX_BODY_BYTES,
    NO_REVISION,
    SANDBOX,
    attachment,
    cache_headers,
    plain_text_type,
    repository_path,
    too_large,
)
from repohost.web.serve import (
    NOT_FOUND,
    Response,
    View,
    ViewRequest,
    etag_matches,
    serve,
    text,
)

__all__ = ["VIEWS", "handle_event"]

DEFAULT_CONTEXT = 3
#: libgit2 takes the context as a 32-bit number; more than this is the whole file anyway.
MAX_CONTEXT = 1_000_000


def _context(query: dict[str, str]) -> int:
    value = query.get("context", "")
    if not (value.isascii() and value.isdigit()):
        return DEFAULT_CONTEXT
    return min(int(value), MAX_CONTEXT)


def _patch_header(summary: dict) -> bytes:
    date = summary["date"].strftime("%Y-%m-%d %H:%M:%S")
    message = summary["message"].rstrip("\n")
    return (
        f"From {summary['raw_id']} {date}\n"
        f"From: {summary['author']}\n"
        f"Date: {date}\n"
        f"Subject: [PATCH] {message}\n"
        "---\n\n"
    ).encode()


def _render(request: ViewRequest, kind: str) -> Response:
    if len(request.rest) != 1:
        return NOT_FOUND
    revision = request.rest[0]
    start, dots, end = revision.rpartition("...")
    if dots and not (start and end):
        return text(404, NO_REVISION)
    context = _context(request.query)
    ignore_whitespace = bool(request.query.get("ignorews"))
    try:
        path = repository_path(request)
        with open_repo(path) as repo:
            if dots:
                resolve_revision(repo, start)
            commit_id = resolve_revision(repo, end)
            summary = changeset_summary(repo, commit_id) if kind == "patch" else None
    except ReadError:
        return text(404, NO_REVISION)
    except GitError:  # the directory is gone or unsafe: as if the repository did not exist
        return NOT_FOUND
    options = (f"-U{context}" if context != DEFAULT_CONTEXT else "") + (
        "-w" if ignore_whitespace else ""
    )
    headers = cache_headers(request, f'"{commit_id}{options}"')
    if etag_matches(request, headers["ETag"]):
        return Response(304, b"", headers=headers)
    body = commit_diff(
        open_repository(path), commit_id, context=context, ignore_whitespace=ignore_whitespace
    )
    if summary is not None:
        body = _patch_header(summary) + body
    if len(body) > MAX_BODY_BYTES:
        return too_large("This diff", len(body), "Fetch the changeset with git instead.")
    if kind == "download":
        headers["Content-Disposition"] = attachment(f"{revision[:12]}.diff")
    headers["Content-Security-Policy"] = SANDBOX
    return Response(200, body, plain_text_type(body), headers)


def _view(kind: str) -> Callable[[ViewRequest], Response]:
    return lambda request: _render(request, kind)


VIEWS = [
    View("changeset-diff", "ChangesetController:changeset_raw", _view("diff")),
    View("raw-changeset", "ChangesetController:changeset_raw", _view("diff")),
    View("changeset-patch", "ChangesetController:changeset_patch", _view("patch")),
    View("changeset-download", "ChangesetController:changeset_download", _view("download")),
]


def handle_event(event: Event, context: object) -> Event:
    """The changesets function's Lambda handler."""
    return serve(event, VIEWS)
