"""Raw files: ``/{repo}/raw/{rev}/{path}`` and ``/{repo}/rawfile/{rev}/{path}`` (facts §5.3–§5.4).

Content-Type and Content-Disposition follow Kallithea, from the file name's
type as Python's built-in table guesses it (a private ``MimeTypes``, so the
host's ``/etc/mime.types`` cannot change answers):

- ``raw``: PNG, GIF, JPEG and icons go out inline as themselves; other
  binary content (holding a NUL byte) as ``application/octet-stream``
  attachment; text as ``text/plain`` inline. SVG is not among the inline
  images (DECISIONS.md: it can carry script), so it goes out like any other
  file: ``text/plain`` (or an attachment if binary), never ``image/svg+xml``.
- ``rawfile``: always an attachment with the guessed type (``text/html``
  included: a download cannot run in the page), ``text/plain`` or
  ``application/octet-stream`` when nothing is guessed.
- A compressed name (``.gz``, ``.bz2``, ``.xz``, …) is typed as the
  compressed format, never as what it contains: ``x.png.gz`` is not an
  inline image. No ``Content-Encoding`` is ever sent.
- ``text/plain`` says ``charset=utf-8`` only when the bytes are UTF-8.
- Every file also goes out with ``X-Content-Type-Options: nosniff`` (from
  ``serve``) and a sandboxing ``Content-Security-Policy``, so even a file a
  browser renders can neither run script nor load anything.
- The file name in ``Content-Disposition`` is written bare when it is a
  plain token (Kallithea's ``filename=nodes.py``), else quoted with an
  RFC 6266 ``filename*`` for non-ASCII names; it never breaks the header.

Caching: a strong ``ETag`` of the blob id, ``If-None-Match`` answers 304;
``Cache-Control: no-cache`` (plus ``Pragma: no-cache``) as Kallithea, so
every use revalidates (a moved ``tip``, a revoked permission are seen at
once) while the ETag keeps revalidation cheap; ``private`` is added when a
key was used, keeping key-authenticated content out of shared caches.

Size: a Lambda response is at most 6 MB, and bodies go out base64-encoded,
so a file above ``MAX_BODY_BYTES`` (about 4.4 MB) answers 413 with a
message pointing to the repository archive, which the archive function
serves from S3 when large. The file is not read to find that out.

The shared helpers below (revision lookup, ETag, cache headers, sizes) are
used by ``repohost.web.changesets`` too.
"""

from __future__ import annotations

import mimetypes
import re
import urllib.parse
from pathlib import Path

from repohost.auth.keys import DEFAULT_USER
from repohost.git.blobs import file_parts, find_file, open_repository, read_blob
from repohost.git.errors import GitError, PathNotFound, ReadError
from repohost.git.read import open_repo, resolve_revision
from repohost.git.storage import RepoStore
from repohost.http.events import Event
from repohost.web.serve import (
    NOT_FOUND,
    Response,
    View,
    ViewRequest,
    etag_matches,
    serve,
    text,
)

__all__ = [
    "MAX_BODY_BYTES",
    "VIEWS",
    "attachment",
    "cache_headers",
    "handle_event",
    "plain_text_type",
    "repository_path",
    "too_large",
]

#: Largest body one Lambda response carries: base64 makes 4 bytes of 3, and
#: 64 KiB of the 6 MB are left for the headers and the response envelope.
MAX_BODY_BYTES = (6_000_000 - 64 * 1024) * 3 // 4

#: Repository content opened in a browser runs nothing and loads nothing.
SANDBOX = "default-src 'none'; style-src 'unsafe-inline'; sandbox"

NO_REVISION = "No such revision in this repository"
NO_FILE = "No file at this path and revision"

_TYPES = mimetypes.MimeTypes()
_INLINE_IMAGES = frozenset(
    {"image/png", "image/gif", "image/jpeg", "image/x-icon", "image/vnd.microsoft.icon"}
)
_COMPRESSED = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}
_TOKEN = re.compile(r"[A-Za-z0-9._+-]+")


# -- helpers shared with the changeset views ----------------------------------------------


def repository_path(request: ViewRequest) -> Path:
    """The repository's directory (``StorageError`` if its path is unsafe)."""
    return RepoStore(request.settings.repos_root).path_for(request.repo.repo_name)


def cache_headers(request: ViewRequest, etag: str) -> dict[str, str]:
    """Revalidate on every use; keep what a key unlocked out of shared caches."""
    private = request.caller.user.username != DEFAULT_USER
    return {
        "ETag": etag,
        "Cache-Control": "private, no-cache" if private else "no-cache",
        "Pragma": "no-cache",
    }


def too_large(what: str, size: int, hint: str) -> Response:
    """413 that says why and where to get the content instead."""
    return text(
        413,
        f"{what} is {size} bytes, more than the {MAX_BODY_BYTES} bytes one response can "
        f"carry. {hint}",
    )


def plain_text_type(data: bytes) -> str:
    """``text/plain``, claiming UTF-8 only when the bytes are, so no reader mis-decodes."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "text/plain"
    return "text/plain; charset=utf-8"


def attachment(filename: str) -> str:
    """``attachment; filename=…`` that stays one well-formed header line for any name."""
    if _TOKEN.fullmatch(filename):
        return f"attachment; filename={filename}"
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    encoded = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


# -- the views ----------------------------------------------------------------------------------


def _guess(name: str) -> str | None:
    """The type of a file called ``name``; compressed names are the compressed format."""
    kind, encoding = _TYPES.guess_type("./" + name, strict=False)
    if encoding is not None:
        return _COMPRESSED.get(encoding, "application/octet-stream")
    return kind


def _raw_type(name: str, data: bytes) -> tuple[str, str]:
    guessed = _guess(name)
    if guessed in _INLINE_IMAGES:
        return guessed, "inline"
    if b"\x00" in data:
        return "application/octet-stream", attachment(name)
    return plain_text_type(data), "inline"


def _rawfile_type(name: str, data: bytes) -> tuple[str, str]:
    guessed = _guess(name)
    if guessed is None:
        guessed = "application/octet-stream" if b"\x00" in data else "text/plain"
    return guessed, attachment(name)


def _serve_file(request: ViewRequest, as_attachment: bool) -> Response:
    if len(request.rest) < 2:
        return text(404, NO_FILE)
    revision = request.rest[0]
    try:
        parts = file_parts("/".join(request.rest[1:]))
        path = repository_path(request)
        with open_repo(path) as dulwich_repo:
            commit_id = resolve_revision(dulwich_repo, revision)
        repo = open_repository(path)
        entry = find_file(repo, commit_id, parts)
    except PathNotFound:
        return text(404, NO_FILE)
    except ReadError:
        return text(404, NO_REVISION)
    except GitError:  # the directory is gone or unsafe: as if the repository did not exist
        return NOT_FOUND
    etag = f'"{entry.blob_id}"'
    headers = cache_headers(request, etag)
    if etag_matches(request, etag):
        return Response(304, b"", headers=headers)
    if entry.size > MAX_BODY_BYTES:
        archive = f"/{request.repo.repo_name}/archive/{commit_id}.zip"
        return too_large("This file", entry.size, f"Download it in an archive: {archive}")
    data = read_blob(repo, entry)
    content_type, disposition = (_rawfile_type if as_attachment else _raw_type)(entry.name, data)
    headers["Content-Disposition"] = disposition
    headers["Content-Security-Policy"] = SANDBOX
    return Response(200, data, content_type, headers)


def _raw(request: ViewRequest) -> Response:
    return _serve_file(request, as_attachment=False)


def _rawfile(request: ViewRequest) -> Response:
    return _serve_file(request, as_attachment=True)


VIEWS = [
    View("raw", "FilesController:raw", _raw),
    View("rawfile", "FilesController:rawfile", _rawfile),
]


def handle_event(event: Event, context: object) -> Event:
    """The files function's Lambda handler."""
    return serve(event, VIEWS)
