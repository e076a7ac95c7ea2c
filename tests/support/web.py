"""GET requests to the key-accessible views, over real HTTP or through a function's handler."""

from __future__ import annotations

import base64
import http.client
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def http_get(
    base_url: str,
    path: str,
    *,
    key: str | None = None,
    bearer: str | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Page:
    """``path`` is sent as written (already percent-encoded); ``key`` goes in ``?api_key=``."""
    if key is not None:
        path += ("&" if "?" in path else "?") + urllib.parse.urlencode({"api_key": key})
    sent = dict(headers or {})
    if bearer is not None:
        sent["Authorization"] = f"Bearer {bearer}"
    host, port = urllib.parse.urlsplit(base_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        return Page(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def lambda_get(
    handler: Any,
    path: str,
    *,
    key: str | None = None,
    bearer: str | None = None,
    source_ip: str = "127.0.0.1",
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Page:
    """Call a view function's handler with the event API Gateway would send."""
    raw_path, _, raw_query = path.partition("?")
    if key is not None:
        raw_query += ("&" if raw_query else "") + urllib.parse.urlencode({"api_key": key})
    sent = {k.lower(): v for k, v in (headers or {}).items()}
    if bearer is not None:
        sent["authorization"] = f"Bearer {bearer}"
    event = {
        "version": "2.0",
        "routeKey": f"ANY {raw_path}",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": sent,
        "requestContext": {
            "http": {"method": method, "path": raw_path, "sourceIp": source_ip},
            "requestId": uuid.uuid4().hex,
            "domainName": "127.0.0.1",
        },
        "isBase64Encoded": False,
    }
    response = handler(event, None)
    body = response.get("body", "")
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return Page(response["statusCode"], dict(response.get("headers", {})), raw)
