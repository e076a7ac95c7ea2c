"""``POST /_admin/api``: the JSON-RPC endpoint's Lambda entry point."""

from __future__ import annotations

import gzip
from typing import Any

from repohost.http.events import (
    Event,
    base_url,
    bearer_key,
    body_bytes,
    header,
    request_id,
    response,
    source_ip,
)
from repohost.logs import configure_logging
from repohost.rpc.dispatcher import RpcRequest, handle, too_large

configure_logging()


#: Answers above this go out gzip-compressed to clients that accept it.
GZIP_ABOVE = 64 * 1024
#: JSON-RPC answers are repetitive: level 1 makes 6 MB of repositories 0.26 MB in 8 ms,
#: where level 6 takes 17 ms for 0.22 MB.
GZIP_LEVEL = 1
#: What fits Lambda's 6 MB response once the event's JSON wraps the body.
PAYLOAD_LIMIT = 6 * 1024 * 1024 - 64 * 1024


def handle_event(event: Event, _context: Any = None) -> Event:
    """Every answer is HTTP 200 with a JSON envelope, as Kallithea's (facts §1.2).

    A large answer is gzip-compressed when the client accepts it; one that
    would not fit Lambda's response limit uncompressed is refused with an
    error envelope saying how to get it.
    """
    rid = request_id(event)
    body = handle(
        RpcRequest(
            body=body_bytes(event),
            source_ip=source_ip(event),
            request_id=rid,
            bearer_key=bearer_key(event),
            base_url=base_url(event),
        )
    )
    headers = {"X-Request-Id": rid}
    if len(body) > GZIP_ABOVE:
        if "gzip" in (header(event, "accept-encoding") or "").lower():
            data = gzip.compress(body.encode(), compresslevel=GZIP_LEVEL)
            headers |= {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return response(200, data, "application/json", headers)
        if len(body.encode()) > PAYLOAD_LIMIT:  # bytes: an answer may hold non-ASCII text
            body = too_large(body)
    return response(200, body, "application/json", headers)
