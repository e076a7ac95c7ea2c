"""``POST /_admin/hooks/{repo+}``: push webhooks, answered at once (see ``repohost.webhooks``).

The path names the repository by full name (``group/sub/repo``) or by
``_<id>``. The body is read raw (base64-decoded when API Gateway encoded it),
because the signature covers the exact bytes. Logs carry the outcome, never
a header, the body or a secret.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from repohost import webhooks
from repohost.db.engine import transaction
from repohost.http.events import Event, body_bytes, request_id, response, source_ip
from repohost.logs import configure_logging

configure_logging()
log = logging.getLogger("repohost.hooks")

PREFIX = "/_admin/hooks/"


def _repo_path(event: Event) -> str:
    """The ``{repo+}`` part, percent-decoded; "" when it cannot name a repository."""
    raw = event.get("rawPath") or ""
    if not raw.startswith(PREFIX):
        return ""
    try:
        return urllib.parse.unquote(raw[len(PREFIX) :], errors="strict")
    except UnicodeDecodeError:
        return ""


def handle_event(event: Event, _context: Any = None) -> Event:
    """Answer one webhook: 202 when a pull is queued or already waiting, 401 when not verified."""
    rid = request_id(event)
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST").upper()
    if method != "POST":
        return response(405, '{"message": "Method Not Allowed"}', "application/json")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    path = _repo_path(event)
    try:
        with transaction() as session:
            body = body_bytes(event) or b""
            outcome = webhooks.receive(session, path, headers, body, source_ip(event))
    except Exception:
        log.exception("webhook failed", extra={"request_id": rid})
        return response(500, '{"message": "Internal Server Error"}', "application/json")
    extra: dict[str, Any] = {"request_id": rid, "status": outcome.status}
    if outcome.status != 401:  # a refused path is the caller's text, not a repository
        extra["repo"] = path
    log.info("webhook %s: %s", outcome.status, outcome.note, extra=extra)
    return response(
        outcome.status, json.dumps(outcome.body), "application/json", {"X-Request-Id": rid}
    )
