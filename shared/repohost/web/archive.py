"""``/{repo}/archive/{revision}{ext}``: Kallithea's ``FilesController:archivefile`` (facts §5.6).

Kallithea's checks in Kallithea's order, with real status codes instead of its
200 error pages (plain text, as every view's errors):

1. ``enable_downloads`` off → 403 ``Downloads disabled``;
2. an empty repository → 404 ``Empty repository``;
3. an extension other than ``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``,
   ``.tar.bz2`` → 404 ``Unknown archive type`` (Kallithea reads the revision
   only once the type is known, so a bad type wins over a bad revision);
4. a revision that names no commit → 404 ``Unknown revision <revision>``.

``.tgz`` is the same archive as ``.tar.gz``; the download is named with the
extension the client asked for. The archive's top directory is
``<repository basename>-<short id>`` and the download name
``<repository name, "/" → "_">-<short id><ext>`` (short id: 12 hex digits).
The bytes come from ``repohost.git.archive`` (deterministic), cached by
``archive_cache`` under ``v<ARCHIVE_VERSION>/<repository id>/<commit id>/<top
directory><ext>``: the top directory is in the key so that a renamed
repository never serves archives carrying its old name.

Responses carry Kallithea's headers (Content-Type, Content-Disposition
attachment, ``Pragma``/``Cache-Control: no-cache``) plus a strong ETag, which
``If-None-Match`` answers with 304 before anything is built. An archive above
``archive_inline_limit`` is a 302 to a presigned S3 URL when the cache is S3;
without a bucket (``make run``) every archive is sent in the body, which the
local server allows. Each download is journalled as
``user_downloaded_archive:<download name>``, as Kallithea does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from dulwich.repo import Repo
from sqlalchemy import insert

from repohost.db import tables as t
from repohost.git.archive import write_archive
from repohost.git.errors import EmptyRepository, RevisionNotFound, StorageError
from repohost.git.read import open_repo, resolve_revision
from repohost.git.storage import RepoStore
from repohost.http.events import Event, source_ip
from repohost.web.archive_cache import cache_for
from repohost.web.serve import (
    NOT_FOUND,
    Response,
    View,
    ViewRequest,
    etag_matches,
    serve,
    text,
)

#: Part of every cache key and ETag: bump it when the archive bytes change.
ARCHIVE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ArchiveType:
    ext: str
    kind: str  # repohost.git.archive's name
    content_type: str
    #: The extension of the cached file (``.tgz`` and ``.tar.gz`` share one).
    stored_ext: str


TYPES = (
    ArchiveType(".tar.gz", "tgz", "application/x-gzip", ".tar.gz"),
    ArchiveType(".tgz", "tgz", "application/x-gzip", ".tar.gz"),
    ArchiveType(".tar.bz2", "tbz2", "application/x-bzip2", ".tar.bz2"),
    ArchiveType(".tar", "tar", "application/x-tar", ".tar"),
    ArchiveType(".zip", "zip", "application/zip", ".zip"),
)

_NO_CACHE = {"Pragma": "no-cache", "Cache-Control": "no-cache"}


def parse_name(fname: str) -> tuple[str, ArchiveType] | None:
    """``'tip.tar.gz'`` → ``('tip', <.tar.gz>)``; None for an unknown extension."""
    for archive_type in TYPES:
        if fname.endswith(archive_type.ext):
            return fname[: -len(archive_type.ext)], archive_type
    return None


def _render(request: ViewRequest, ip: str) -> Response:
    if len(request.rest) != 1:
        return NOT_FOUND
    repo = request.repo
    if not repo.enable_downloads:
        return text(403, "Downloads disabled")
    parsed = parse_name(request.rest[0])
    revision = parsed[0] if parsed is not None else None
    try:
        path = RepoStore(request.settings.repos_root).path_for(repo.repo_name)
        with open_repo(path) as git:
            commit = resolve_revision(git, revision)
            if parsed is None:
                return text(404, "Unknown archive type")
            return _archive(request, git, commit, parsed[1], ip)
    except StorageError:  # the directory is gone or unsafe: as if the repository did not exist
        return NOT_FOUND
    except EmptyRepository:
        return text(404, "Empty repository")
    except RevisionNotFound:
        return text(404, f"Unknown revision {revision}")


def _archive(
    request: ViewRequest, git: Repo, commit: str, archive_type: ArchiveType, ip: str
) -> Response:
    repo = request.repo
    short_id = commit[:12]
    top = f"{repo.repo_name.rsplit('/', 1)[-1]}-{short_id}"
    filename = f"{repo.repo_name.replace('/', '_')}-{short_id}{archive_type.ext}"
    etag = f'"{commit}-{top}{archive_type.stored_ext}-v{ARCHIVE_VERSION}"'
    if etag_matches(request, etag):
        return Response(304, b"", headers={"ETag": etag, **_NO_CACHE})
    key = f"v{ARCHIVE_VERSION}/{repo.repo_id}/{commit}/{top}{archive_type.stored_ext}"
    build = functools.partial(write_archive, git, commit, archive_type.kind, top)
    if request.method == "GET":
        request.db.execute(
            insert(t.user_logs).values(
                user_id=request.caller.user_id,
                username=request.caller.user.username,
                repository_id=repo.repo_id,
                repository_name=repo.repo_name,
                user_ip=ip,
                action=f"user_downloaded_archive:{filename}",
            )
        )
    with cache_for(request.settings).open(key, build) as stored:
        if stored.size > request.settings.archive_inline_limit:
            url = stored.download_url(filename, archive_type.content_type)
            if url is not None:
                return Response(
                    302, "Found\n", headers={"Location": url, "ETag": etag, **_NO_CACHE}
                )
        body = stored.read()
    headers = {
        "Content-Disposition": f"attachment; filename={filename}",
        "ETag": etag,
        **_NO_CACHE,
    }
    return Response(200, body, archive_type.content_type, headers)


def handle_event(event: Event, context: object = None) -> Event:
    """The archive function's Lambda handler."""
    render = functools.partial(_render, ip=source_ip(event))
    return serve(event, [View("archive", "FilesController:archivefile", render)])
