"""``POST /_admin/api``: the JSON-RPC endpoint's Lambda entry point."""

from __future__ import annotations

from typing import Any

from repohost.http.events import (
    Event,
    base_url,
    bearer_key,
    body_bytes,
    request_id,
    response,
    source_ip,
)
from repohost.logs import configure_logging
from repohost.rpc.dispatcher import RpcRequest, handle

configure_logging()


def handle_event(event: Event, _context: Any = None) -> Event:
    """Every answer is HTTP 200 with a JSON envelope, as Kallithea's (facts §1.2)."""
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
    return response(200, body, "application/json", {"X-Request-Id": rid})
