"""Reading API Gateway 2.0 events: body, headers, client address, credentials."""

from __future__ import annotations

import base64
import uuid
from typing import Any

Event = dict[str, Any]


def header(event: Event, name: str) -> str | None:
    """A request header by lower-case name (API Gateway lower-cases them)."""
    headers = event.get("headers") or {}
    return headers.get(name)


def body_bytes(event: Event) -> bytes | None:
    """The raw request body; None when the request had none and no Content-Length."""
    body = event.get("body")
    if body is None:
        return b"" if header(event, "content-length") is not None else None
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def source_ip(event: Event) -> str:
    """The address API Gateway saw; forwarded-for headers are never trusted."""
    return event.get("requestContext", {}).get("http", {}).get("sourceIp", "")


def request_id(event: Event) -> str:
    return event.get("requestContext", {}).get("requestId") or uuid.uuid4().hex


def base_url(event: Event) -> str:
    """``https://<host>`` as the client called it (API Gateway serves HTTPS only)."""
    context = event.get("requestContext", {})
    host = context.get("domainName") or header(event, "host") or ""
    scheme = "http" if host.startswith(("127.", "localhost")) else "https"
    return f"{scheme}://{host}" if host else ""


def bearer_key(event: Event) -> str | None:
    value = header(event, "authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def response(
    status: int, body: str | bytes, content_type: str, extra: dict[str, str] | None = None
) -> Event:
    """An API Gateway 2.0 response; bytes go out base64-encoded."""
    headers = {"Content-Type": content_type, **(extra or {})}
    if isinstance(body, bytes):
        return {
            "statusCode": status,
            "headers": headers,
            "body": base64.b64encode(body).decode("ascii"),
            "isBase64Encoded": True,
        }
    return {"statusCode": status, "headers": headers, "body": body, "isBase64Encoded": False}
