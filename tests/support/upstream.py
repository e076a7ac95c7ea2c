"""A real git upstream on 127.0.0.1: ``git http-backend`` (smart HTTP) behind a threaded server.

Tests push to the bare repositories under ``root`` with the ``git`` command and
fetch from ``url(name)``. For the failure cases the server can also answer
redirects (``redirects``: request path prefix → URL), trickle pack responses
(``throttle``) and report when a pack response starts (``pack_started``).

Also a pytest plugin (``pytest_plugins = ("tests.support.upstream",)``) with the
fixtures the mirror tests share: ``upstream``, ``settings_env``, ``loopback``
and ``idle_queue``.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.gitcli import git


class GitUpstream:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.redirects: dict[str, str] = {}
        #: ``(bytes, seconds)``: send pack responses this many bytes at a time, pausing between.
        self.throttle: tuple[int, float] | None = None
        self.pack_started = threading.Event()
        #: Bytes of pack responses sent so far.
        self.pack_bytes = 0
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # -- repositories ---------------------------------------------------------------------

    def create(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        git(self.root, "init", "-q", "--bare", str(path))
        return path

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    # -- serving --------------------------------------------------------------------------

    def start(self) -> GitUpstream:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop answering (the port stays known, so ``start`` serves it again)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitUpstream:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _handler(upstream: GitUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the body ends when the connection closes, as CGI output streams.
        protocol_version = "HTTP/1.0"

        def _any(self) -> None:
            upstream.requests.append(f"{self.command} {self.path}")
            path, _, query = self.path.partition("?")
            for prefix, target in upstream.redirects.items():
                if path.startswith(prefix):
                    location = target + path[len(prefix) :] + (f"?{query}" if query else "")
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.end_headers()
                    return
            self._cgi(urllib.parse.unquote(path), query, self._body())

        do_GET = do_POST = _any

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                    if size == 0:
                        return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _cgi(self, path: str, query: str, body: bytes) -> None:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(upstream.root),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_PROJECT_ROOT": str(upstream.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": self.client_address[0],
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            proc = subprocess.Popen(
                ["git", "http-backend"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdin is not None and proc.stdout is not None

            def feed() -> None:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(body)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass

            threading.Thread(target=feed, daemon=True).start()
            status, headers = 200, []
            while line := proc.stdout.readline().rstrip(b"\r\n"):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((name, value.strip()))
            try:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self._stream(proc.stdout, pack=path.endswith("/git-upload-pack"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                proc.kill()
                proc.wait()

        def _stream(self, output: Any, pack: bool) -> None:
            size, pause = upstream.throttle if pack and upstream.throttle else (65536, 0.0)
            while chunk := output.read(size) if pause else output.read1(size):
                self.wfile.write(chunk)
                self.wfile.flush()
                if pack:
                    upstream.pack_bytes += len(chunk)
                    upstream.pack_started.set()
                time.sleep(pause)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[GitUpstream]:
    with GitUpstream(tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``REPOHOST_*`` variables for one test, the cached settings reloaded both ways."""
    from repohost.config import get_settings

    def set_env(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def loopback(settings_env: Callable[..., None]) -> None:
    """Let remotes reach 127.0.0.1, and nothing else that is not public."""
    settings_env(REPOHOST_ALLOW_PRIVATE_REMOTES="127.0.0.1/32")


@pytest.fixture
def idle_queue() -> Iterator[None]:
    """After the test, wait for the in-process job queue, so no job outlives its test."""
    yield
    from repohost.jobs import queue

    assert queue.drain(120), "the in-process job queue did not become idle"
