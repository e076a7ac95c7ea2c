"""A small JSON-RPC client for the tests, over the Lambda handler or real HTTP."""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.support import loghygiene


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> dict[str, Any]:
        data = json.loads(self.body)
        assert isinstance(data, dict), data
        assert set(data) == {"id", "result", "error"}, data
        return data


class Transport(Protocol):
    def post(
        self, body: bytes | None, headers: dict[str, str], source_ip: str = "127.0.0.1"
    ) -> Reply: ...


@dataclass
class LambdaTransport:
    """Calls the dispatcher Lambda's handler with an API Gateway 2.0 event."""

    def post(
        self, body: bytes | None, headers: dict[str, str], source_ip: str = "127.0.0.1"
    ) -> Reply:
        import base64

        from repohost.http.api import handle_event

        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "POST /_admin/api",
            "rawPath": "/_admin/api",
            "rawQueryString": "",
            "headers": {k.lower(): v for k, v in headers.items()},
            "requestContext": {
                "http": {"method": "POST", "path": "/_admin/api", "sourceIp": source_ip},
                "requestId": uuid.uuid4().hex,
            },
            "isBase64Encoded": False,
        }
        if body is not None:
            event["headers"]["content-length"] = str(len(body))
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        response = handle_event(event, None)
        payload = response["body"]
        raw = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        return Reply(response["statusCode"], dict(response.get("headers", {})), raw)


@dataclass
class HttpTransport:
    """Posts to the local server over real HTTP on loopback."""

    base_url: str

    def post(
        self, body: bytes | None, headers: dict[str, str], source_ip: str = "127.0.0.1"
    ) -> Reply:
        assert source_ip == "127.0.0.1", "over HTTP the source address is the real one"
        request = urllib.request.Request(  # noqa: S310 - loopback URL built by the tests
            f"{self.base_url}/_admin/api", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read())


class CallFailed(AssertionError):
    pass


@dataclass
class Api:
    transport: Transport
    key: str
    ip: str = "127.0.0.1"
    last: Reply | None = field(default=None, repr=False)

    def as_user(self, key: str, ip: str | None = None) -> Api:
        return Api(self.transport, key, ip or self.ip)

    def envelope(self, method: Any, args: Any = None, **kw: Any) -> dict[str, Any]:
        body = {"id": kw.pop("id", 7), "api_key": kw.pop("key", self.key), "method": method}
        body["args"] = {} if args is None else args
        loghygiene.remember_in(body["args"])
        headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
        self.last = self.transport.post(json.dumps(body).encode(), headers, self.ip)
        assert self.last.status == 200
        envelope = self.last.envelope
        loghygiene.remember_in(envelope["result"])
        return envelope

    def call(self, method: str, **args: Any) -> Any:
        """The result; fails the test if the call answered an error."""
        envelope = self.envelope(method, args)
        if envelope["error"] is not None:
            raise CallFailed(f"{method}: {envelope['error']}")
        return envelope["result"]

    def error(self, method: str, **args: Any) -> str:
        """The error string; fails the test if the call succeeded."""
        envelope = self.envelope(method, args)
        assert envelope["result"] is None, envelope
        assert isinstance(envelope["error"], str), envelope
        return envelope["error"]

    def new_user(self, username: str, **fields: Any) -> tuple[int, str]:
        """Create a user as admin; return its id and its API key."""
        fields.setdefault("email", f"{username}@example.com")
        result = Api(self.transport, self.key).call("create_user", username=username, **fields)
        return result["user"]["user_id"], result["api_key"]
