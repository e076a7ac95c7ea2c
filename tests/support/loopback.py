"""Small loopback HTTP servers whose answers each test chooses (misbehaving APIs, S3)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """A request as the loopback server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Wait (for the test to end) instead of answering.
    hang: bool = False
    #: Close the connection without any answer.
    drop: bool = False


Responder = Callable[[Seen], Reply]


def envelope(seen: Seen, result: Any = None, error: Any = None) -> Reply:
    """A well-formed answer echoing the request's id."""
    body = json.dumps({"id": seen.json["id"], "result": result, "error": error}).encode()
    return Reply(200, body, {"Content-Type": "application/json"})


class Loopback:
    """An HTTP server on 127.0.0.1 answering every request with ``respond(seen)``."""

    def __init__(self, respond: Responder, port: int = 0) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        self.released = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                owner.seen.append(seen)
                reply = owner.respond(seen)
                if reply.hang:
                    owner.released.wait(30)
                    return
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
