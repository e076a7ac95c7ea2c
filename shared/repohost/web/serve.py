"""What every GET view shares: routing within the path, the caller, access, responses.

The flow of one request (facts §5.1–§5.2, DECISIONS.md "Web views"):

1. Only GET and HEAD are served.
2. The path is split into repository name, view keyword and the rest, trying
   the shortest repository name first (Kallithea's non-greedy match); a first
   segment ``_<id>`` stands for the repository with that id.
3. A key (``?api_key=`` or ``Authorization: Bearer``) on a view that is not
   whitelisted is refused with 403 before the key is looked at. A bad key,
   an inactive user's key or a refused address is 403 too, whether or not
   the repository exists. No key means the anonymous ``default`` user.
4. A repository the caller may not read answers exactly like a missing one
   (404), so private names stay private.

All of it runs on SQLAlchemy Core (``repohost.db.tables``), like the API
function's authentication: a view function's cold start never loads the ORM.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import select

from repohost.auth import ipaccess
from repohost.auth.keys import DEFAULT_USER, holder_of_key
from repohost.auth.permissions import AuthUser, at_least
from repohost.config import Settings, get_settings
from repohost.db import records
from repohost.db import tables as t
from repohost.db.engine import Database, call_transaction
from repohost.db.records import UserRecord
from repohost.http.events import Event, bearer_key, header, request_id, response, source_ip

log = logging.getLogger("repohost.web")

NOT_FOUND_TEXT = "Not found"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, message: str) -> Response:
    return Response(status, message + "\n", "text/plain; charset=utf-8")


NOT_FOUND = text(404, NOT_FOUND_TEXT)


@dataclass(frozen=True, slots=True)
class ViewedRepository:
    """The columns of a ``repositories`` row that the views use."""

    repo_id: int
    repo_name: str
    enable_downloads: bool
    created_on: datetime


_VIEWED_COLUMNS = tuple(t.repositories.c[f.name] for f in fields(ViewedRepository))


@dataclass
class ViewRequest:
    """A request for a repository the caller may read."""

    db: Database
    settings: Settings
    caller: AuthUser
    repo: ViewedRepository
    #: What follows the view keyword, percent-decoded (e.g. ``["tip", "src", "a.py"]``).
    rest: list[str]
    query: dict[str, str]
    headers: dict[str, str]
    method: str
    request_id: str
    #: The revision or file name exactly as the client wrote it (first segment after the view).
    raw_rest: list[str] = field(default_factory=list)


Renderer = Callable[[ViewRequest], Response]


@dataclass(frozen=True, slots=True)
class View:
    """One Kallithea view: its keyword in the URL and its whitelist name."""

    keyword: str
    name: str
    render: Renderer
    #: Feeds accept keys whatever the whitelist says (facts §5.1).
    always_key_accessible: bool = False


def _split(raw_path: str) -> list[str]:
    return [urllib.parse.unquote(s, errors="strict") for s in raw_path.strip("/").split("/")]


def _candidates(segments: list[str], keywords: set[str]) -> list[tuple[str, str, list[str]]]:
    """Every ``(repository name, keyword, rest)`` reading of the path, shortest name first."""
    return [
        ("/".join(segments[:i]), segments[i], segments[i + 1 :])
        for i in range(1, len(segments))
        if segments[i] in keywords
    ]


def _find_repo(db: Database, name: str) -> ViewedRepository | None:
    repos = t.repositories.c
    first, _, remainder = name.partition("/")
    if first.startswith("_") and first[1:].isascii() and first[1:].isdigit() and len(first) < 12:
        by_id = db.scalar(select(repos.repo_name).where(repos.repo_id == int(first[1:])))
        if by_id is not None:
            name = by_id + ("/" + remainder if remainder else "")
    row = db.execute(select(*_VIEWED_COLUMNS).where(repos.repo_name == name)).one_or_none()
    return None if row is None else ViewedRepository(*row)


def _query(event: Event) -> dict[str, str]:
    raw = event.get("rawQueryString") or ""
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


def _caller(db: Database, key: str | None, ip: str) -> AuthUser | Response:
    user: UserRecord | None
    if key is not None:
        holder = holder_of_key(db, key)
        if holder is None:
            return text(403, "Invalid API key")
        user, whitelist = holder.user, holder.whitelist
    else:
        user = records.find_user(db, DEFAULT_USER)
        if user is None or not user.active:
            return text(403, "Anonymous access is disabled: give an API key")
        whitelist = ipaccess.whitelist(db, user)
    if not ipaccess.allows(whitelist, ip):
        return text(403, f"IP {ip} not allowed")
    return AuthUser(db, user)


def serve(event: Event, views: list[View]) -> Event:
    """Answer one API Gateway 2.0 event for one of ``views``."""
    rid = request_id(event)
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET").upper()
    try:
        answer = _answer(event, views, method, rid)
    except Exception:
        log.exception("view failed", extra={"request_id": rid})
        answer = text(500, "Internal server error")
    return _to_event(answer, method, rid)


def _answer(event: Event, views: list[View], method: str, rid: str) -> Response:
    if method not in ("GET", "HEAD"):
        return Response(405, "Method not allowed\n", headers={"Allow": "GET, HEAD"})
    by_keyword = {view.keyword: view for view in views}
    try:
        segments = _split(event.get("rawPath", ""))
    except UnicodeDecodeError:
        return NOT_FOUND
    if any(not s or s in (".", "..") or "\x00" in s for s in segments[:-1]):
        return NOT_FOUND
    query = _query(event)
    settings = get_settings()
    key = bearer_key(event) or query.get("api_key")
    given_key = bearer_key(event) is not None or "api_key" in query
    raw_segments = event.get("rawPath", "").strip("/").split("/")
    with call_transaction() as db:
        caller: AuthUser | Response | None = None
        for repo_name, keyword, rest in _candidates(segments, set(by_keyword)):
            view = by_keyword[keyword]
            if given_key and not (
                view.always_key_accessible or view.name in settings.api_access_whitelist
            ):
                return text(403, "API key access is not enabled for this view")
            if caller is None:
                # Settled before any repository is looked up, so that a refusal (bad
                # key, refused address, anonymous access off) reads the same whether
                # the repository exists or not.
                caller = _caller(db, key if given_key else None, source_ip(event))
            if isinstance(caller, Response):
                return caller
            repo = _find_repo(db, repo_name)
            if repo is None:
                continue
            if not at_least(caller.repo_permission(repo.repo_id), "read"):
                return NOT_FOUND
            request = ViewRequest(
                db=db,
                settings=settings,
                caller=caller,
                repo=repo,
                rest=rest,
                query=query,
                headers=event.get("headers") or {},
                method=method,
                request_id=rid,
                raw_rest=raw_segments[len(segments) - len(rest) :],
            )
            return view.render(request)
    return NOT_FOUND


def _to_event(answer: Response, method: str, rid: str) -> Event:
    headers = {"X-Request-Id": rid, "X-Content-Type-Options": "nosniff", **answer.headers}
    body = answer.body
    if method == "HEAD":
        length = len(body.encode() if isinstance(body, str) else body)
        headers.setdefault("Content-Length", str(length))
        body = b""
    event = response(answer.status, body, answer.content_type, headers)
    if answer.status == 304:
        # A cache copies a 304's headers onto the response it stored (RFC 9111 §4.3.4):
        # a Content-Type here would retype the stored file.
        del event["headers"]["Content-Type"]
    return event


def header_value(request: ViewRequest, name: str) -> str | None:
    return header({"headers": request.headers}, name.lower())


def etag_matches(request: ViewRequest, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 wants there)."""
    value = header_value(request, "if-none-match")
    if value is None:
        return False
    if value.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in value.split(","))
