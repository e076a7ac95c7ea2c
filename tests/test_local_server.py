"""The local runner (``make run``): template routes served over real HTTP as API Gateway would.

Everything goes through a real socket on 127.0.0.1 against the fixture template in
``tests/fixtures/local_template``, whose handlers echo back what they were given.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from repohost.local import LocalServer, Route, TemplateError, match_route, routes_from_template
from repohost.local.template import sort_routes

FIXTURES = Path(__file__).parent / "fixtures" / "local_template"
TEMPLATE = FIXTURES / "template.yaml"
BINARY = bytes(range(256))


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(TEMPLATE, port=0) as srv:
        yield srv


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="repohost.local")
    return caplog


def call(
    server: LocalServer | str,
    path: str,
    *,
    method: str = "GET",
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Message, bytes]:
    url = server if isinstance(server, str) else server.url
    request = urllib.request.Request(  # noqa: S310 - always our own http:// server
        url + path, data=data, headers=headers or {}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def echo(server: LocalServer, path: str, **kwargs: Any) -> dict[str, Any]:
    status, _, body = call(server, path, **kwargs)
    assert status == 200, body
    return json.loads(body)


def raw_exchange(server: LocalServer, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client library fixing them up); status and body back."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# --- template reading and route matching -------------------------------------------


def test_template_routes_short_tags_and_globals() -> None:
    routes = {r.route_key: r for r in routes_from_template(TEMPLATE)}
    assert set(routes) == {
        "POST /_admin/api",
        "GET /items/{name}",
        "GET /files/{path+}",
        "GET /repos/{repo}/files/{path+}",
        "ANY /anything",
        "GET /items/special",
        "ANY /{proxy+}",
        "GET /boom",
        "GET /malformed",
        "GET /binary",
        "GET /bare",
        "GET /text",
        "GET /overlap",
        "GET /missing",
    }
    rpc = routes["POST /_admin/api"]
    assert rpc.method == "POST"  # the template says "post"
    assert (rpc.function_name, rpc.handler) == ("EchoFunction", "app.echo")
    assert rpc.code_uri == (FIXTURES / "echo").resolve()
    assert rpc.timeout == 7  # !Ref EchoTimeout -> the parameter's Default
    assert rpc.memory_size == 256  # from Globals
    other = routes["ANY /{proxy+}"]
    assert (other.code_uri, other.handler) == ((FIXTURES / "other").resolve(), "app.handler")
    assert other.timeout == 5  # Globals.Function.Timeout
    assert "ScheduledFunction" not in {r.function_name for r in routes.values()}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/a/{rest+}/b", "greedy variable must be last"),
        ("/a/{broken", "bad variable"),
        ("no-slash", "must start with '/'"),
    ],
)
def test_template_rejects_bad_paths(tmp_path: Path, path: str, message: str) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n"
        "      Handler: app.handler\n"
        "      Events:\n"
        "        E:\n"
        "          Type: HttpApi\n"
        f"          Properties: {{Path: '{path}', Method: GET}}\n"
    )
    with pytest.raises(TemplateError, match=re.escape(message)):
        routes_from_template(template)


def _route(method: str, path: str) -> Route:
    return Route(method, path, "Fn", Path("/nowhere"), "app.handler", 3)


PRECEDENCE_ROUTES = sort_routes(
    _route(m, p)
    for m, p in [
        ("ANY", "$default"),
        ("ANY", "/{proxy+}"),
        ("GET", "/pets/{proxy+}"),
        ("GET", "/pets/dog/{id}"),
        ("GET", "/pets/dog/1"),
        ("ANY", "/pets/{kind}/{id}"),
        ("GET", "/pets/{kind}/{id}"),
        ("GET", "/pets/{kind}/toys"),
        ("HEAD", "/pets"),
        ("GET", "/owners/{proxy+}"),
        ("GET", "/{who}/cats/{proxy+}"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "route_key", "params"),
    [
        ("GET", "/pets/dog/1", "GET /pets/dog/1", {}),
        ("GET", "/pets/dog/2", "GET /pets/dog/{id}", {"id": "2"}),
        ("GET", "/pets/cat/toys", "GET /pets/{kind}/toys", {"kind": "cat"}),
        ("GET", "/pets/cat/1", "GET /pets/{kind}/{id}", {"kind": "cat", "id": "1"}),
        ("POST", "/pets/cat/1", "ANY /pets/{kind}/{id}", {"kind": "cat", "id": "1"}),
        ("GET", "/pets/cat/1/2", "GET /pets/{proxy+}", {"proxy": "cat/1/2"}),
        ("POST", "/pets/cat/1/2", "ANY /{proxy+}", {"proxy": "pets/cat/1/2"}),
        ("GET", "/pets", "ANY /{proxy+}", {"proxy": "pets"}),
        ("HEAD", "/pets", "HEAD /pets", {}),
        ("HEAD", "/pets/dog/1", "ANY /pets/{kind}/{id}", {"kind": "dog", "id": "1"}),
        ("GET", "/pets/a%2Fb/c%20d", "GET /pets/{kind}/{id}", {"kind": "a/b", "id": "c d"}),
        ("GET", "/", "$default", {}),
        # Left to right: the literal "owners" decides before the longer route's "cats".
        ("GET", "/owners/cats/x", "GET /owners/{proxy+}", {"proxy": "cats/x"}),
        ("GET", "/vets/cats/x", "GET /{who}/cats/{proxy+}", {"who": "vets", "proxy": "x"}),
    ],
)
def test_match_route_precedence(
    method: str, path: str, route_key: str, params: dict[str, str]
) -> None:
    found = match_route(PRECEDENCE_ROUTES, method, path)
    assert found is not None
    route, got = found
    assert (route.route_key, got) == (route_key, params)


def test_match_route_without_default_finds_nothing() -> None:
    routes = sort_routes([_route("GET", "/a/{x}"), _route("GET", "/b/{rest+}")])
    assert match_route(routes, "GET", "/a") is None
    assert match_route(routes, "GET", "/a/") is None  # a variable needs a non-empty segment
    assert match_route(routes, "GET", "/b") is None  # a greedy variable needs one segment
    assert match_route(routes, "POST", "/a/1") is None


# --- the event handed to the handler ---------------------------------------------------


def test_get_event_shape_and_context(
    server: LocalServer, access_log: pytest.LogCaptureFixture
) -> None:
    query = "a=1&a=2&b=x%20y&c=p+q&flag&api_key=SECRETKEY"
    status, headers, body = call(server, f"/items/foo%20bar?{query}", headers={"User-Agent": "t/1"})
    assert status == 200
    seen = json.loads(body)
    event = seen["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{name}"
    assert event["rawPath"] == "/items/foo%20bar"
    assert event["rawQueryString"] == query
    assert event["queryStringParameters"] == {
        "a": "1,2",
        "b": "x y",
        "c": "p q",
        "flag": "",
        "api_key": "SECRETKEY",
    }
    assert event["pathParameters"] == {"name": "foo bar"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    assert "cookies" not in event
    assert event["headers"]["user-agent"] == "t/1"
    assert event["headers"]["host"] == server.url.removeprefix("http://")
    assert all(name == name.lower() for name in event["headers"])

    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "GET",
        "path": "/items/foo%20bar",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "t/1",
    }
    assert ctx["routeKey"] == "GET /items/{name}"
    assert ctx["stage"] == "$default"
    assert ctx["requestId"] == headers["apigw-requestid"]
    assert ctx["domainName"] == event["headers"]["host"]
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", ctx["time"])
    assert isinstance(ctx["timeEpoch"], int)
    assert {"accountId", "apiId", "domainPrefix"} <= set(ctx)

    context = seen["context"]
    assert context["function_name"] == "EchoFunction"
    assert context["memory_limit_in_mb"] == 256
    assert context["invoked_function_arn"].endswith(":function:EchoFunction")
    assert context["log_group_name"] == "/aws/lambda/EchoFunction"
    assert 0 < context["remaining_ms"] <= 7000
    assert context["aws_request_id"]

    lines = [r.getMessage() for r in access_log.records if r.name.startswith("repohost.local")]
    assert any('"GET /items/foo%20bar" 200' in line for line in lines), lines
    assert not any("SECRETKEY" in line or "?" in line for line in lines), lines


def test_repeated_headers_cookies_and_forwarded_for(server: LocalServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        conn.putrequest("GET", "/items/x")
        conn.putheader("X-Dup", "1")
        conn.putheader("X-Dup", "2")
        conn.putheader("Cookie", "a=1; b=2")
        conn.putheader("X-Forwarded-For", "203.0.113.9")
        conn.endheaders()
        response = conn.getresponse()
        event = json.loads(response.read())["event"]
    finally:
        conn.close()
    assert event["headers"]["x-dup"] == "1,2"
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]
    # The client's own header is kept, the real peer is appended and is the source IP.
    assert event["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_greedy_path_parameter_is_decoded(server: LocalServer) -> None:
    event = echo(server, "/files/a/b%2Fc/d%20e.txt")["event"]
    assert event["routeKey"] == "GET /files/{path+}"
    assert event["rawPath"] == "/files/a/b%2Fc/d%20e.txt"
    assert event["pathParameters"] == {"path": "a/b/c/d e.txt"}


@pytest.mark.parametrize(
    ("content_type", "payload", "as_text"),
    [
        ("application/json", '{"x":"é"}'.encode(), True),
        ("text/plain; charset=utf-8", "zwölf".encode(), True),
        ("application/vnd.api+json", b"{}", True),
        ("application/xml", b"<a/>", True),
        ("application/json", b"\xff\xfe not utf-8", False),
        ("application/octet-stream", BINARY, False),
        ("application/x-www-form-urlencoded", b"a=1&b=2", False),
        ("image/png", b"\x89PNG", False),
    ],
)
def test_post_body_text_or_base64(
    server: LocalServer, content_type: str, payload: bytes, as_text: bool
) -> None:
    event = echo(
        server, "/_admin/api", method="POST", data=payload, headers={"Content-Type": content_type}
    )["event"]
    assert event["routeKey"] == "POST /_admin/api"
    assert event["isBase64Encoded"] is (not as_text)
    if as_text:
        assert event["body"] == payload.decode("utf-8")
    else:
        assert base64.b64decode(event["body"]) == payload


def test_chunked_request_body(server: LocalServer) -> None:
    data = iter([b'{"id":1,', b'"method":"test"', b"}"])  # an iterable: urllib sends chunks
    event = echo(
        server, "/_admin/api", method="POST", data=data, headers={"Content-Type": "text/plain"}
    )["event"]
    assert event["headers"]["transfer-encoding"] == "chunked"
    assert event["body"] == '{"id":1,"method":"test"}'
    assert event["isBase64Encoded"] is False


def test_post_without_content_length_has_no_body(server: LocalServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        conn.putrequest("POST", "/_admin/api")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 200
        event = json.loads(response.read())["event"]
    finally:
        conn.close()
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_empty_body_is_no_body(server: LocalServer) -> None:
    event = echo(
        server, "/_admin/api", method="POST", data=b"", headers={"Content-Type": "text/plain"}
    )["event"]
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_keep_alive_connection_serves_several_requests(server: LocalServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    try:
        for body in (b'{"n":1}', b'{"n":2}'):
            conn.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["event"]["body"] == body.decode()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n", 413),
        (
            b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n"
            b"Expect: 100-continue\r\n\r\n",
            413,
        ),
        (
            b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"A00001\r\n",  # one chunk of 10 MiB + 1 byte
            413,
        ),
        (b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n", 400),
        (b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
)
def test_refused_request_bodies(server: LocalServer, request_bytes: bytes, status: int) -> None:
    got, body = raw_exchange(server, request_bytes)
    assert got == status
    expected = "Request Entity Too Large" if status == 413 else "Bad Request"
    assert json.loads(body) == {"message": expected}


def test_refused_body_closes_the_connection(server: LocalServer) -> None:
    # The unread body is still on the wire: what follows it must not be taken as a request.
    status, rest = raw_exchange(
        server,
        b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n"
        b"GET /items/x HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert status == 413
    assert b"HTTP/1.1" not in rest


def test_body_at_the_limit_is_accepted(server: LocalServer) -> None:
    payload = b"a" * (10 * 1024 * 1024)
    event = echo(
        server,
        "/_admin/api",
        method="POST",
        data=payload,
        headers={"Content-Type": "application/octet-stream"},
    )["event"]
    assert len(base64.b64decode(event["body"])) == len(payload)


# --- routing over HTTP -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "function", "route_key"),
    [
        ("GET", "/items/special", "_OtherFunction_", "GET /items/special"),
        ("GET", "/items/other", "_EchoFunction_", "GET /items/{name}"),
        ("GET", "/repos/r1/files/a/b", "_EchoFunction_", "GET /repos/{repo}/files/{path+}"),
        ("GET", "/repos/r1/tags", "_OtherFunction_", "ANY /{proxy+}"),
        ("POST", "/items/other", "_OtherFunction_", "ANY /{proxy+}"),
        ("DELETE", "/anything", "_EchoFunction_", "ANY /anything"),
    ],
)
def test_precedence_over_http(
    server: LocalServer, method: str, path: str, function: str, route_key: str
) -> None:
    _, _, body = call(server, path, method=method)
    seen = json.loads(body)
    assert function in seen["module"]
    assert seen["event"]["routeKey"] == route_key


def test_one_invocation_at_a_time_per_function(server: LocalServer) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: call(server, "/overlap"), range(2)))
    assert [json.loads(body) for _, _, body in results] == [{"peak": 1}, {"peak": 1}]


def test_functions_sharing_a_module_name_are_distinct(server: LocalServer) -> None:
    echo_module = echo(server, "/items/x")["module"]
    _, _, body = call(server, "/items/special")
    other_module = json.loads(body)["module"]
    assert echo_module != other_module
    assert echo_module in sys.modules and other_module in sys.modules


def test_response_headers_multi_values_and_cookies(server: LocalServer) -> None:
    status, headers, _ = call(server, "/items/special")
    assert status == 202
    assert headers["x-function"] == "other"
    assert headers.get_all("x-multi") == ["1", "2"]
    assert headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]


def test_base64_response_is_decoded(server: LocalServer) -> None:
    status, headers, body = call(server, "/binary")
    assert status == 201
    assert headers["Content-Type"] == "application/octet-stream"
    assert body == BINARY


@pytest.mark.parametrize(("path", "body"), [("/bare", {"answer": 42}), ("/text", "plain words")])
def test_result_without_status_code_is_a_200_json_body(
    server: LocalServer, path: str, body: Any
) -> None:
    status, headers, raw = call(server, path)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert (json.loads(raw) if isinstance(body, dict) else raw.decode()) == body


def test_handler_exception_is_500_and_logged(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    status, headers, body = call(server, "/boom")
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "Internal Server Error"}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert any("boom from the fixture" in str(r.exc_info[1]) for r in errors if r.exc_info)


@pytest.mark.parametrize("path", ["/malformed", "/missing"])
def test_malformed_response_or_missing_handler_is_500(server: LocalServer, path: str) -> None:
    status, _, body = call(server, path)
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_unrouted_request_is_404(server: LocalServer) -> None:
    status, headers, body = call(server, "/")
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "Not Found"}


def test_head_matches_any_routes_only_and_has_no_body(server: LocalServer) -> None:
    status, headers, body = call(server, "/anything", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0  # the size the GET-like body would have
    # On the wire too (http.client would not read a body after HEAD anyway).
    assert raw_exchange(server, b"HEAD /anything HTTP/1.1\r\nHost: x\r\n\r\n") == (200, b"")
    # GET /items/{name} does not take HEAD; ANY /{proxy+} does.
    status, headers, body = call(server, "/items/x", method="HEAD")
    assert (status, headers["x-function"], body) == (202, "other", b"")


def test_default_route() -> None:
    with LocalServer(FIXTURES / "default.yaml", port=0) as srv:
        root = echo(srv, "/")["event"]
        assert root["routeKey"] == "GET /"
        other = echo(srv, "/some/where?x=1", method="POST", data=b"{}")["event"]
    assert other["routeKey"] == "$default"
    assert other["requestContext"]["routeKey"] == "$default"
    assert other["rawPath"] == "/some/where"
    assert "pathParameters" not in other


def test_stopped_server_releases_its_port() -> None:
    srv = LocalServer(TEMPLATE, port=0).start()
    url = srv.url
    srv.stop()
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # would fail with EADDRINUSE while still bound


# --- python -m repohost.local ---------------------------------------------------------

# The database steps are the lead's modules; here stubs record that main() calls them in
# order and hand back a key, so this test checks the runner and not the database.
MAIN_WITH_STUB_DB = """
import sys, types
calls = []
db = types.ModuleType("repohost.db")
migrate = types.ModuleType("repohost.db.migrate")
bootstrap = types.ModuleType("repohost.db.bootstrap")
migrate.upgrade = lambda: calls.append("upgrade")
bootstrap.ensure_defaults = lambda: calls.append("ensure_defaults")
def ensure_first_admin(key):
    print("stub:", calls, repr(key), flush=True)
    return NEW_KEY
bootstrap.ensure_first_admin = ensure_first_admin
db.migrate, db.bootstrap = migrate, bootstrap
recovery = types.ModuleType("repohost.recovery")
recovery.recover = lambda *a, **k: types.SimpleNamespace(settled=0, undone=0, purged=0)
recovery.requeue_jobs = lambda: 0
sys.modules["repohost.recovery"] = recovery
sys.modules.update(
    {"repohost.db": db, "repohost.db.migrate": migrate, "repohost.db.bootstrap": bootstrap}
)
from repohost.local.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("new_key", "stop_signal"),
    [("k" * 40, signal.SIGINT), (None, signal.SIGTERM)],
)
def test_main_prepares_prints_serves_and_stops_cleanly(
    tmp_path: Path, new_key: str | None, stop_signal: signal.Signals
) -> None:
    env = {
        **os.environ,
        "PORT": "0",
        "REPOHOST_DATABASE_URL": "sqlite:///data/db/repohost.sqlite",
        "REPOHOST_REPOS_ROOT": "data/repos",
        "ADMIN_API_KEY": "chosen-key",
        "PYTHONUNBUFFERED": "1",
    }
    script = MAIN_WITH_STUB_DB.replace("NEW_KEY", repr(new_key))
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "--template", str(TEMPLATE)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = []
        assert proc.stdout is not None
        while line := proc.stdout.readline():
            printed.append(line)
            if "curl" in line:
                break
        banner = "".join(printed)
        found = re.search(r"serving on (http://127\.0\.0\.1:\d+)", banner)
        assert found, banner + (proc.stderr.read() if proc.poll() is not None else "")
        url = found.group(1)
        status, _, body = call(url, "/items/x")
        assert (status, json.loads(body)["event"]["rawPath"]) == (200, "/items/x")
        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "stub: ['upgrade', 'ensure_defaults'] 'chosen-key'" in banner
    assert (tmp_path / "data" / "db").is_dir()
    assert (tmp_path / "data" / "repos").is_dir()
    assert '"GET /items/x" 200' in err  # the access log goes to stderr
    shown = new_key or "<an admin API key>"
    curl = (
        f"curl -s {url}/_admin/api -H 'Content-Type: application/json' "
        f'--data \'{{"id":1,"api_key":"{shown}","method":"get_user","args":{{}}}}\''
    )
    assert curl in banner
    if new_key:
        assert f"Admin API key (shown once): {new_key}" in banner
    else:
        assert "admin already exists" in banner
        assert "create_api_key" in banner
    assert out == ""  # everything was printed before serving


def test_main_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "repohost.local", "--template", str(TEMPLATE)],
            cwd=tmp_path,
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr
    assert "Traceback" not in result.stderr
