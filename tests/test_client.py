"""``repohost.client``: the request it sends, the answers it refuses, what it retries, downloads.

Misbehaving servers are small loopback HTTP servers (``Loopback``); the real API is
the local server over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from repohost.client import (
    ApiError,
    BadResponse,
    ConnectionFailed,
    DownloadFailed,
    IdMismatch,
    KallitheaClient,
    Timeout,
    is_read_only,
)
from tests.conftest import ADMIN_KEY
from tests.support.loopback import Loopback, Reply, Responder, Seen, envelope, free_port


@pytest.fixture
def loopback() -> Iterator[Callable[[Responder], Loopback]]:
    servers: list[Loopback] = []

    def start(respond: Responder) -> Loopback:
        server = Loopback(respond).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def client_for(url: str, **kw: Any) -> KallitheaClient:
    kw.setdefault("backoff", 0)
    return KallitheaClient(url, "k" * 40, **kw)


# --- against the real API -------------------------------------------------------------------


def test_calls_the_api(db: str, local_server: str) -> None:
    client = KallitheaClient(local_server + "/", ADMIN_KEY)
    assert client.endpoint == f"{local_server}/_admin/api"
    me = client.call("get_user")
    assert me["username"] == "admin"
    assert client.call("get_user", userid=str(me["user_id"]))["user_id"] == me["user_id"]
    with pytest.raises(ApiError) as caught:
        client.call("get_user", userid="nosuch")
    assert caught.value.message == "user `nosuch` does not exist"
    assert caught.value.method == "get_user"


def test_a_method_named_like_a_parameter_of_call_is_still_an_argument(
    db: str, local_server: str
) -> None:
    client = KallitheaClient(local_server, ADMIN_KEY)
    assert client.call("test", args={"method": "x"}) == {"method": "x"}


# --- the request ------------------------------------------------------------------------------


def test_request_is_kallitheas_with_the_key_in_the_body(loopback: Any) -> None:
    server = loopback(lambda seen: envelope(seen, result={"ok": True}))
    assert client_for(server.url).call("get_repo", repoid="a/b") == {"ok": True}
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/_admin/api")
    assert set(seen.json) == {"id", "api_key", "method", "args"}
    assert seen.json["api_key"] == "k" * 40
    assert seen.json["method"] == "get_repo"
    assert seen.json["args"] == {"repoid": "a/b"}
    assert 1 <= seen.json["id"] <= 9998
    assert "authorization" not in {h.lower() for h in seen.headers}


@pytest.mark.parametrize("apihost", ["ftp://example.com", "example.com", "file:///etc"])
def test_api_host_must_be_http(apihost: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        KallitheaClient(apihost, "k")


# --- answers that are refused -----------------------------------------------------------------


def test_id_mismatch_is_an_error(loopback: Any) -> None:
    def wrong_id(seen: Seen) -> Reply:
        body = json.dumps({"id": seen.json["id"] + 1, "result": 1, "error": None}).encode()
        return Reply(200, body)

    server = loopback(wrong_id)
    with pytest.raises(IdMismatch, match=r"^something went wrong\. ID mismatch got \d+, expected"):
        client_for(server.url).call("get_users")


def test_html_answer_is_not_json(loopback: Any) -> None:
    page = b"<html><body>Sign in to the proxy</body></html>"
    server = loopback(lambda seen: Reply(200, page, {"Content-Type": "text/html"}))
    with pytest.raises(BadResponse, match=r"is not JSON \(text/html\): '<html><body>Sign in"):
        client_for(server.url).call("get_users")


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"result": 1}', b'"text"'])
def test_json_that_is_not_an_envelope(loopback: Any, body: bytes) -> None:
    server = loopback(lambda seen: Reply(200, body))
    with pytest.raises(BadResponse, match="not a JSON-RPC envelope"):
        client_for(server.url).call("get_users")


def test_redirected_post_is_reported_not_followed(loopback: Any) -> None:
    server = loopback(lambda seen: Reply(301, b"", {"Location": "https://elsewhere/_admin/api"}))
    with pytest.raises(BadResponse, match="redirected to https://elsewhere/_admin/api"):
        client_for(server.url).call("get_users")
    assert len(server.seen) == 1


def test_non_string_error_is_kept(loopback: Any) -> None:
    server = loopback(lambda seen: envelope(seen, error={"code": 1}))
    with pytest.raises(ApiError) as caught:
        client_for(server.url).call("get_users")
    assert caught.value.error == {"code": 1}
    assert caught.value.message == '{"code": 1}'


# --- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("get_repo", True),
        ("get_users", True),
        ("test", True),
        ("show_ip", True),
        ("rpc.discover", True),
        ("create_repo", False),
        ("update_user", False),
        ("pull", False),
        ("delete_repo", False),
        ("getaway", False),
    ],
)
def test_read_only_methods(method: str, expected: bool) -> None:
    assert is_read_only(method) is expected


def test_gateway_errors_are_retried_for_read_only_methods(loopback: Any) -> None:
    answers = iter([Reply(502, b'{"message":"Internal Server Error"}'), Reply(503)])

    def flaky(seen: Seen) -> Reply:
        return next(answers, None) or envelope(seen, result="ok")

    server = loopback(flaky)
    assert client_for(server.url, retries=2).call("get_users") == "ok"
    assert len(server.seen) == 3


def test_gateway_errors_are_not_retried_for_methods_that_change_things(loopback: Any) -> None:
    server = loopback(lambda seen: Reply(502, b'{"message":"Internal Server Error"}'))
    with pytest.raises(BadResponse, match=r"HTTP 502 from .*Internal Server Error"):
        client_for(server.url, retries=2).call("create_user", username="x", email="x@e.com")
    assert len(server.seen) == 1


def test_a_dropped_connection_is_not_retried_for_methods_that_change_things(
    loopback: Any,
) -> None:
    server = loopback(lambda seen: Reply(drop=True))
    with pytest.raises(ConnectionFailed):
        client_for(server.url, retries=2).call("create_user", username="x", email="x@e.com")
    assert len(server.seen) == 1


def test_timeout_retried_only_for_read_only_methods(loopback: Any) -> None:
    server = loopback(lambda seen: Reply(hang=True))
    client = client_for(server.url, retries=1, timeout=0.3)
    with pytest.raises(Timeout, match=r"no answer from .* within 0\.3 seconds"):
        client.call("create_user", username="x", email="x@e.com")
    assert len(server.seen) == 1
    with pytest.raises(Timeout):
        client.call("get_users")
    assert len(server.seen) == 3


def test_refused_connection_is_retried_for_any_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing reached the server, so even a method that changes things is sent again."""
    port = free_port()
    started: list[Loopback] = []

    def sleep_then_listen(seconds: float) -> None:
        if not started:
            started.append(
                Loopback(lambda seen: envelope(seen, result="created"), port=port).__enter__()
            )

    monkeypatch.setattr("repohost.client.time.sleep", sleep_then_listen)
    try:
        client = client_for(f"http://127.0.0.1:{port}", retries=1)
        assert client.call("create_user", username="x", email="x@e.com") == "created"
        assert len(started[0].seen) == 1
    finally:
        for server in started:
            server.__exit__()


def test_refused_connection_gives_up_after_the_retries() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}", retries=1)
    with pytest.raises(ConnectionFailed, match=r"cannot connect to .*refused") as caught:
        client.call("get_users")
    assert caught.value.not_sent


# --- downloads --------------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 1000


def _storage(seen: Seen) -> Reply:
    return Reply(200, PAYLOAD, {"Content-Type": "application/zip"})


def test_download_follows_the_redirect_without_the_key(loopback: Any, tmp_path: Path) -> None:
    storage = loopback(_storage)  # another port: another origin, like S3
    api = loopback(
        lambda seen: Reply(
            302,
            b"",
            {
                "Location": f"{storage.url}/bucket/obj?X-Amz-Signature=abc",
                "Content-Disposition": "attachment; filename=ignored.zip",
            },
        )
    )
    client = client_for(api.url)
    received: list[tuple[int, int | None]] = []
    target = client.download(
        "/team/app/archive/tip.zip", tmp_path, lambda n, total: received.append((n, total))
    )
    assert target == tmp_path / "tip.zip"
    assert target.read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))
    (first,) = api.seen
    assert first.path == "/team/app/archive/tip.zip"
    assert first.headers["Authorization"] == f"Bearer {'k' * 40}"
    (second,) = storage.seen
    assert second.path == "/bucket/obj?X-Amz-Signature=abc"
    assert "authorization" not in {h.lower() for h in second.headers}
    assert received[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_download_keeps_the_key_on_a_same_origin_redirect(loopback: Any, tmp_path: Path) -> None:
    def api(seen: Seen) -> Reply:
        if seen.path.startswith("/raw/"):
            return Reply(302, b"", {"Location": "/rawfile/tip/README"})
        return Reply(200, b"hello", {"Content-Disposition": 'attachment; filename="README"'})

    server = loopback(api)
    target = client_for(server.url).download(f"{server.url}/raw/tip/README", tmp_path / "out")
    assert target.read_bytes() == b"hello"
    assert [s.headers.get("Authorization") for s in server.seen] == [f"Bearer {'k' * 40}"] * 2


def test_download_names_the_file_as_the_server_says(loopback: Any, tmp_path: Path) -> None:
    disposition = 'attachment; filename="../../app-1a2b3c.tar.gz"'
    server = loopback(lambda seen: Reply(200, b"x", {"Content-Disposition": disposition}))
    target = client_for(server.url).download("/app/archive/1a2b3c.tar.gz", tmp_path)
    assert target == tmp_path / "app-1a2b3c.tar.gz"


def test_download_paths_are_taken_under_the_api_host() -> None:
    client = client_for("https://example.com/prod/")
    assert client.resolve("/a/raw/tip/f") == "https://example.com/prod/a/raw/tip/f"
    assert client.resolve("a/raw/tip/f") == "https://example.com/prod/a/raw/tip/f"
    assert client.resolve("https://EXAMPLE.com:443/x") == "https://EXAMPLE.com:443/x"


def test_download_errors_never_show_the_s3_signature(loopback: Any, tmp_path: Path) -> None:
    storage = loopback(lambda seen: Reply(403, b"Request has expired"))
    api = loopback(
        lambda seen: Reply(302, b"", {"Location": f"{storage.url}/obj?X-Amz-Signature=secret"})
    )
    with pytest.raises(DownloadFailed) as caught:
        client_for(api.url).download("/a/archive/tip.zip", tmp_path / "a.zip")
    assert str(caught.value) == f"HTTP 403 from {storage.url}/obj: 'Request has expired'"


def test_download_refuses_other_hosts(loopback: Any) -> None:
    server = loopback(_storage)
    with pytest.raises(ValueError, match="not on the API host"):
        client_for(server.url).resolve("http://example.com/file")
    assert server.seen == []


def test_download_refused_by_the_server(loopback: Any, tmp_path: Path) -> None:
    server = loopback(lambda seen: Reply(404, b"No such revision"))
    with pytest.raises(DownloadFailed, match=r"HTTP 404 from .*No such revision") as caught:
        client_for(server.url).download("/app/raw/nope/x", tmp_path / "x")
    assert caught.value.status == 404
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_no_file(loopback: Any, tmp_path: Path) -> None:
    headers = {"Content-Length": "100", "Connection": "close"}
    server = loopback(lambda seen: Reply(200, b"short", headers))
    with pytest.raises(ConnectionFailed, match=r"broke off|ended after"):
        client_for(server.url, retries=0, timeout=10).download("/app/raw/tip/x", tmp_path / "x")
    assert list(tmp_path.iterdir()) == []
