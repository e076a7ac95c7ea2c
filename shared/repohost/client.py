"""A typed client for the Kallithea JSON-RPC API (repohost's, or Kallithea's own).

Build-farm scripts can use it directly; ``kallithea-api`` is built on it::

    from repohost.client import ApiError, KallitheaClient

    client = KallitheaClient("https://code.example.com", key)
    repo = client.call("get_repo", repoid="team/app")
    client.download("/team/app/archive/tip.zip", Path("app.zip"))

The request is Kallithea's: a POST of ``{id, api_key, method, args}`` to
``<apihost>/_admin/api`` with the key in the body, and the echoed ``id`` is
checked. Downloads send the key only as ``Authorization: Bearer`` (never in
the URL) and only to the API host's own origin.

Retry rule: a call is sent again (``retries`` times, waiting ``backoff``,
then twice as long each time) only when that cannot do anything twice:

* the connection was refused, so nothing reached the server (any method); or
* the method only reads (``get_*``, ``test``, ``show_ip``, ``rpc.discover``;
  downloads too) and the failure may pass: a connection error, a timeout, or
  HTTP 429/502/503/504 from a proxy or gateway.

A method that changes something (``create_*``, ``update_*``, ``pull``, ...)
is never resent once it may have reached the server: a timeout does not say
whether it ran.
"""

from __future__ import annotations

import errno
import gzip
import http.client
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from repohost import __version__

T = TypeVar("T")

#: Methods that only read, besides every ``get_*``: safe to resend after any transient failure.
READ_ONLY_METHODS = frozenset({"test", "show_ip", "rpc.discover"})
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_CHUNK = 64 * 1024
_SNIPPET = 200


def is_read_only(method: str) -> bool:
    """Whether ``method`` only reads, so that sending it twice is harmless."""
    return method.startswith("get_") or method in READ_ONLY_METHODS


class ClientError(Exception):
    """Base of every error this module raises."""


class ApiError(ClientError):
    """The server answered the call with an error (the envelope's ``error``)."""

    def __init__(self, error: Any, method: str) -> None:
        self.error = error
        self.method = method
        self.message = error if isinstance(error, str) else json.dumps(error)
        super().__init__(self.message)


class TransportError(ClientError):
    """No usable answer came back; the call may or may not have run."""

    def __init__(self, message: str, *, not_sent: bool = False, transient: bool = False) -> None:
        super().__init__(message)
        #: The request cannot have reached the server: resending is safe for any method.
        self.not_sent = not_sent
        #: Trying again may help (for methods that only read).
        self.transient = transient


class ConnectionFailed(TransportError):
    """The connection could not be made, or broke before a whole answer came."""


class Timeout(TransportError):
    """The server did not answer within the timeout."""


class BadResponse(TransportError):
    """An answer came, but not a JSON-RPC envelope (an HTML page, an HTTP error, ...)."""


class IdMismatch(BadResponse):
    """The answer echoes another request's ``id`` (as Kallithea's client checks)."""


class DownloadFailed(ClientError):
    """The server (or the storage it redirected to) refused a download with an HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _shown(url: str) -> str:
    """``url`` for messages: without its query, which may hold an S3 signature."""
    return urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl()


def _snippet(body: bytes) -> str:
    text = " ".join(body[:_SNIPPET].decode("utf-8", "replace").split())
    return repr(text + ("..." if len(body) > _SNIPPET else ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET without its body: report it instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _KeyScopedRedirect(urllib.request.HTTPRedirectHandler):
    """Follows redirects; the key goes along only to the API host's own origin.

    The key is an *unredirected* header, which urllib drops on every redirect;
    this puts it back when the new URL is on ``origin`` (never for S3).
    """

    def __init__(self, origin: tuple[str, str, int | None]) -> None:
        self.origin = origin

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        key = req.unredirected_hdrs.get("Authorization")
        if new is not None and key and _origin(newurl) == self.origin:
            new.add_unredirected_header("Authorization", key)
        return new


@dataclass(frozen=True)
class Download:
    """An open download: where it came from at last (no query), its size, a file name for it."""

    url: str
    length: int | None
    content_type: str
    filename: str
    stream: BinaryIO

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces; ConnectionFailed/Timeout if it breaks off."""
        received = 0
        while True:
            try:
                chunk = self.stream.read(_CHUNK)
            except TimeoutError:
                raise Timeout(f"{self.url} stopped sending (timeout)", transient=True) from None
            except (http.client.HTTPException, OSError) as exc:
                raise ConnectionFailed(f"download from {self.url} broke off: {exc}") from None
            if not chunk:
                break
            received += len(chunk)
            yield chunk
        if self.length is not None and received != self.length:
            raise ConnectionFailed(
                f"download from {self.url} ended after {received} of {self.length} bytes"
            )


class KallitheaClient:
    """Calls methods of the API at ``apihost`` with ``apikey``."""

    def __init__(
        self,
        apihost: str,
        apikey: str,
        *,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
    ) -> None:
        self.apihost = apihost.rstrip("/")
        if urllib.parse.urlsplit(self.apihost).scheme not in ("http", "https"):
            raise ValueError(f"the API host must be an http:// or https:// URL, not {apihost!r}")
        self.apikey = apikey
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.endpoint = f"{self.apihost}/_admin/api"
        self._headers = {"User-Agent": f"repohost-kallithea-api/{__version__}"}
        self._api_opener = urllib.request.build_opener(_NoRedirect())
        self._download_opener = urllib.request.build_opener(
            _KeyScopedRedirect(_origin(self.apihost))
        )

    # --- JSON-RPC -------------------------------------------------------------------------

    def call(self, method: str, /, **args: Any) -> Any:
        """The method's result; ApiError if the server answered with an error."""
        request_id = secrets.randbelow(9998) + 1  # 1..9998, as Kallithea's client
        body = json.dumps(
            {"id": request_id, "api_key": self.apikey, "method": method, "args": args}
        ).encode()
        data = self._with_retries(lambda: self._post(body), is_read_only(method))
        if data["id"] != request_id:
            raise IdMismatch(
                f"something went wrong. ID mismatch got {data['id']}, expected {request_id}"
                f" | {json.dumps(data, indent=4, sort_keys=True)}"
            )
        if data.get("error"):
            raise ApiError(data["error"], method)
        return data.get("result")

    def _post(self, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.endpoint,
            data=body,
            method="POST",
            headers={
                **self._headers,
                "Content-Type": "application/json",
                # Big answers (get_repos of thousands) only fit Lambda's 6 MB compressed.
                "Accept-Encoding": "gzip",
            },
        )
        with self._open(self._api_opener, request) as response:
            raw = self._read(response)
            status = response.status
            content_type = response.headers.get("Content-Type", "")
            location = response.headers.get("Location", "")
            if response.headers.get("Content-Encoding", "").lower() == "gzip":
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError):
                    raise BadResponse(f"a broken gzip answer from {self.endpoint}") from None
        if 300 <= status < 400:
            raise BadResponse(
                f"HTTP {status} from {self.endpoint}: redirected to {location or '?'}"
                " (use the address it redirects to as the API host)"
            )
        if status != 200:
            raise BadResponse(
                f"HTTP {status} from {self.endpoint}: {_snippet(raw)}",
                transient=status in _TRANSIENT_STATUSES,
            )
        try:
            data = json.loads(raw)
        except ValueError:
            kind = content_type or "no Content-Type"
            raise BadResponse(
                f"the answer from {self.endpoint} is not JSON ({kind}): {_snippet(raw)}"
            ) from None
        if not isinstance(data, dict) or "id" not in data:
            raise BadResponse(
                f"the answer from {self.endpoint} is not a JSON-RPC envelope: {_snippet(raw)}"
            )
        return data

    # --- downloads ------------------------------------------------------------------------

    def resolve(self, url: str) -> str:
        """``url`` made absolute (a path is taken under the API host); ValueError if elsewhere."""
        absolute = url if urllib.parse.urlsplit(url).scheme else f"{self.apihost}/{url.lstrip('/')}"
        if _origin(absolute) != _origin(self.apihost):
            raise ValueError(
                f"{url} is not on the API host {self.apihost}; the key is only sent there"
            )
        return absolute

    @contextmanager
    def fetch(self, url: str) -> Iterator[Download]:
        """Open a raw file or archive URL of this server, following redirects (to S3)."""
        absolute = self.resolve(url)
        request = urllib.request.Request(absolute, headers=self._headers)  # noqa: S310
        request.add_unredirected_header("Authorization", f"Bearer {self.apikey}")
        response = self._with_retries(
            lambda: self._open(self._download_opener, request), read_only=True
        )
        with response:
            if not 200 <= response.status < 300:
                body = _snippet(self._read(response))
                raise DownloadFailed(
                    f"HTTP {response.status} from {_shown(response.url)}: {body}", response.status
                )
            length = response.headers.get("Content-Length")
            yield Download(
                url=_shown(response.url),
                length=int(length) if length and length.isdigit() else None,
                content_type=response.headers.get("Content-Type", ""),
                filename=_filename(response.headers.get_filename(), absolute),
                stream=response,
            )

    def download(
        self,
        url: str,
        output: Path | None = None,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Save ``url`` to ``output`` (a file, or a folder for the server's file name).

        A file named by the server never replaces an existing one (FileExistsError);
        name the file to overwrite it. The bytes go to ``<file>.part`` first, renamed
        when complete, so an interrupted download never leaves a truncated file under
        the real name. ``progress(received, total)`` is called after each chunk.
        """
        with self.fetch(url) as download:
            target = output if output is not None else Path.cwd()
            if target.is_dir():
                target = target / download.filename
                if target.exists():
                    raise FileExistsError(
                        errno.EEXIST, "not replaced (give -o FILE to overwrite)", str(target)
                    )
            partial = target.with_name(target.name + ".part")
            received = 0
            try:
                with partial.open("wb") as sink:
                    for chunk in download.chunks():
                        sink.write(chunk)
                        received += len(chunk)
                        if progress is not None:
                            progress(received, download.length)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    # --- transport --------------------------------------------------------------------------

    def _with_retries(self, action: Callable[[], T], read_only: bool) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except TransportError as exc:
                safe = exc.not_sent or (read_only and exc.transient)
                if not safe or attempt >= self.retries:
                    raise
            time.sleep(self.backoff * 2**attempt)
            attempt += 1

    def _open(
        self, opener: urllib.request.OpenerDirector, request: urllib.request.Request
    ) -> http.client.HTTPResponse:
        """The response, whatever its status; transport failures as TransportError."""
        url = request.full_url
        try:
            return opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return exc  # type: ignore[return-value] - an HTTPError is a response too
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise self._timeout(url) from None
            refused = isinstance(reason, ConnectionRefusedError)
            raise ConnectionFailed(
                f"cannot connect to {url}: {getattr(reason, 'strerror', None) or reason}",
                not_sent=refused,
                transient=True,
            ) from None
        except TimeoutError:
            raise self._timeout(url) from None
        except (http.client.HTTPException, OSError) as exc:
            raise ConnectionFailed(
                f"the connection to {url} failed: {str(exc) or type(exc).__name__}",
                transient=True,
            ) from None

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except TimeoutError:
            raise self._timeout(response.url) from None
        except (http.client.HTTPException, OSError) as exc:
            raise ConnectionFailed(
                f"the answer from {response.url} broke off: {exc}", transient=True
            ) from None

    def _timeout(self, url: str) -> Timeout:
        return Timeout(f"no answer from {url} within {self.timeout:g} seconds", transient=True)


def _filename(disposition_name: str | None, url: str) -> str:
    """A safe local file name: the server's (Content-Disposition), else the URL's last segment."""
    path_name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    for candidate in (disposition_name, path_name):
        name = Path((candidate or "").replace("\\", "/")).name
        if name not in ("", ".", ".."):
            return name
    return "download"
