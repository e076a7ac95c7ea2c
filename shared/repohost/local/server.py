"""A local stand-in for API Gateway (HTTP API, payload 2.0) in front of the Lambda handlers.

``sam local`` needs Docker; this needs nothing: it reads ``template.yaml``, builds the
event API Gateway would send, and calls the same handler function in-process.

Decisions where API Gateway's behaviour has no local equivalent:

* One invocation at a time per function (a lock per function), like one warm Lambda
  instance: handlers may keep per-process state such as a reused database connection.
* ``HEAD`` matches only ``ANY`` and ``HEAD`` routes (a ``GET`` route does not match it,
  as on API Gateway); the response to ``HEAD`` carries headers but no body.
* The function's ``Environment`` from the template is not applied: locally the process
  environment (``REPOHOST_*``) configures everything, and the template's values point at
  AWS resources. CORS settings of the API are not emulated.
* A handler running past its ``Timeout`` is not stopped (threads cannot be killed); a
  warning is logged instead.
* Handler modules are loaded by file path and their directory is not put on
  ``sys.path``: handlers import shared code from the installed ``repohost`` package.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
import secrets
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from repohost.local.template import Route, match_route, routes_from_template, sort_routes

log = logging.getLogger(__name__)

#: API Gateway's payload limit for HTTP APIs.
MAX_REQUEST_BODY = 10 * 1024 * 1024
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
API_ID = "local"

_TEXT_SUBTYPES = frozenset({"json", "xml", "javascript", "x-javascript", "ecmascript"})
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Handler = Callable[[dict[str, Any], Any], Any]


class _Refused(Exception):
    """A request refused before any handler runs; answered like API Gateway does."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class LambdaContext:
    """The attributes of the Lambda Python runtime's context that handlers use."""

    function_name: str
    memory_limit_in_mb: int
    timeout: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: None = None
    client_context: None = None
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def is_text_content_type(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text rather than base64."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    if kind == "text":
        return True
    return kind == "application" and (
        subtype in _TEXT_SUBTYPES or subtype.endswith(("+json", "+xml"))
    )


def _new_request_id() -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def _request_time(now: float) -> str:
    t = time.gmtime(now)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def build_event(
    route: Route,
    path_parameters: dict[str, str],
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes | None,
    source_ip: str,
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload-2.0 event API Gateway would send for this request."""
    now = time.time() if now is None else now
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":  # 2.0 moves cookies out of the headers
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            merged[key] = f"{merged[key]},{value}" if key in merged else value
    forwarded = merged.get("x-forwarded-for")
    merged["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    merged.setdefault("x-forwarded-proto", "http")

    domain = merged.get("host", "localhost")
    request_id = request_id or _new_request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": _request_time(now),
        "timeEpoch": int(now * 1000),
    }
    encoded = False
    if body is not None:
        text: str | None = None
        if is_text_content_type(merged.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        encoded = text is None
        event["body"] = base64.b64encode(body).decode("ascii") if encoded else text
    event["isBase64Encoded"] = encoded
    return event


@dataclass(frozen=True, slots=True)
class Response:
    """What goes back to the client: status, header lines and body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, message: str) -> Response:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", "application/json")], body)


def _header_value(name: str, value: Any) -> str:
    if isinstance(value, str | int | float | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    raise ValueError(f"header {name!r} has a non-scalar value {value!r}")


def response_from_result(result: Any) -> Response:
    """Turn a handler's return value into a response the way API Gateway (2.0) does.

    A dict with ``statusCode`` is a response; anything else is a 200 JSON body (a
    ``str`` verbatim, other values JSON-encoded). A malformed response raises
    ``ValueError`` (API Gateway answers those with 500).
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("Content-Type", "application/json")], body.encode())
    status = result["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"statusCode must be an integer HTTP status, got {status!r}")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name, _header_value(name, value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise ValueError(f"multiValueHeaders[{name!r}] must be a list")
        headers.extend((name, _header_value(name, v)) for v in values)
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", _header_value("cookies", cookie)))
    headers = [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP]
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise ValueError(f"body must be a string, got {type(body).__name__}")
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body, validate=True)
    else:
        data = body.encode("utf-8")
    return Response(status, headers, data)


class _Functions:
    """Loads each function's handler once and runs one invocation at a time per function."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._handlers: dict[str, Handler] = {}
        self._load_lock = threading.Lock()
        self._locks = {route.function_name: threading.Lock() for route in routes}

    def _load(self, route: Route) -> Handler:
        with self._load_lock:
            handler = self._handlers.get(route.function_name)
            if handler is not None:
                return handler
            module_path, _, attr = route.handler.rpartition(".")
            if not module_path:
                raise RuntimeError(f"{route.function_name}: Handler {route.handler!r} lacks '.'")
            file = route.code_uri / (module_path.replace(".", "/") + ".py")
            if not file.is_file():
                raise RuntimeError(f"{route.function_name}: no handler module at {file}")
            # A unique module name per function: several functions have an ``app.py``.
            name = f"_repohost_local.{route.function_name}.{module_path}".replace(".", "_")
            spec = importlib.util.spec_from_file_location(name, file)
            if spec is None or spec.loader is None:
                raise RuntimeError(f"{route.function_name}: cannot load {file}")
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]  # a broken module is retried on the next request
                raise
            handler = getattr(module, attr)
            self._handlers[route.function_name] = handler
            return handler

    def invoke(self, route: Route, event: dict[str, Any]) -> Any:
        handler = self._load(route)
        with self._locks[route.function_name]:
            context = LambdaContext(route.function_name, route.memory_size, route.timeout)
            result = handler(event, context)
        if context.get_remaining_time_in_millis() == 0:
            log.warning(
                "%s ran longer than its Timeout of %ss; Lambda would have stopped it",
                route.function_name,
                route.timeout,
            )
        return result


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 makes the kernel drop or reset connections
    # when many clients connect at once (200 in benchmarks/load.py); API Gateway takes them.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, host: str, port: int, routes: list[Route]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.routes = sort_routes(routes)
        self.functions = _Functions(routes)
        super().__init__((host, port), _RequestHandler)


class _RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into one Lambda invocation."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: benchmarks measure calls, not connects
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def do_any(self) -> None:
        started = time.perf_counter()
        raw_path, _, raw_query = self._target()
        request_id = _new_request_id()
        response = self._respond_to(raw_path, raw_query, request_id)
        elapsed = (time.perf_counter() - started) * 1000
        # Logged before the response is written, so it is there even if the client left.
        # Never the query string: it may hold ``api_key``.
        log.info(
            '%s "%s %s" %d %.1f ms',
            self.client_address[0],
            self.command,
            raw_path,
            response.status,
            elapsed,
        )
        self._send(response, request_id)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_any

    def _target(self) -> tuple[str, str, str]:
        target = self.path
        if not target.startswith("/"):  # absolute-form request target
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return target.partition("?")

    def _respond_to(self, raw_path: str, raw_query: str, request_id: str) -> Response:
        try:
            body = self._read_body()
        except _Refused as exc:
            self.close_connection = True  # the rest of the body is still on the wire
            return _json_response(exc.status, exc.message)
        found = match_route(self.server.routes, self.command, raw_path)
        if found is None:
            return _json_response(404, "Not Found")
        route, params = found
        event = build_event(
            route,
            params,
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=self.headers.items(),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            request_id=request_id,
        )
        try:
            return response_from_result(self.server.functions.invoke(route, event))
        except Exception:
            log.exception("%s failed on %s %s", route.function_name, self.command, raw_path)
            return _json_response(500, "Internal Server Error")

    def _read_body(self) -> bytes | None:
        """The request body, or None when the request has none (no body in the event)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = self._read_chunked()
        elif (length := self.headers.get("Content-Length")) is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Refused(400, "Bad Request") from None
            if size < 0:
                raise _Refused(400, "Bad Request")
            if size > MAX_REQUEST_BODY:
                raise _Refused(413, "Request Entity Too Large")
            data = self.rfile.read(size)
            if len(data) != size:
                raise _Refused(400, "Bad Request")
        else:
            return None
        return data or None

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Refused(400, "Bad Request") from None
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BODY:
                raise _Refused(413, "Request Entity Too Large")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _Refused(400, "Bad Request")
            chunks.append(chunk)
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields: API Gateway does not pass them on
        return b"".join(chunks)

    def handle_expect_100(self) -> bool:
        """Refuse an oversized body before the client sends it."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_REQUEST_BODY:
            self.close_connection = True
            self._send(_json_response(413, "Request Entity Too Large"), _new_request_id())
            return False
        return super().handle_expect_100()

    def _send(self, response: Response, request_id: str) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("apigw-requestid", request_id)
        no_body = response.status in (204, 304) or response.status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return "repohost-local"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: :meth:`do_any` writes the access line (without the query string)."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only http.server's own errors get here; their text may quote the request line.
        log.warning("%s: HTTP error (%s)", self.client_address[0], args[0] if args else "?")


class LocalServer:
    """Serves every HTTP route of a SAM template on a local address.

    ``port=0`` picks a free port (see :attr:`url`). Use :meth:`start`/:meth:`stop` (or a
    ``with`` block) to run it in a background thread, :meth:`serve_forever` in the
    foreground.
    """

    def __init__(self, template: str | Path, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.routes: list[Route] = routes_from_template(template)
        self._httpd = _HTTPServer(host, port, self.routes)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread; returns at once."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="repohost-local", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C raises KeyboardInterrupt here)."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
