"""Where built archives are kept: a local folder (``make run``, tests) or an S3 bucket (AWS).

Keys are relative paths chosen by the archive view; an archive is never
invalidated, because the bytes of a commit's archive never change (Kallithea
never invalidates its archive cache either). On S3 the bucket's lifecycle
rule expires old archives; the local folder is left to grow.

An archive is built once per key even when requests race:

- locally, under an exclusive ``flock`` on the key's directory, which holds
  between threads and between processes; the archive is written to a hidden
  temporary file beside its final name and renamed into place, so no reader
  ever sees half an archive;
- on S3, under a per-process lock (a Lambda instance serves one request at a
  time, so this matters for threads), and the upload is a conditional put
  (``If-None-Match: *``). Two instances racing on a cold key both build; the
  first upload wins and the other is refused, and each serves its own copy,
  which is the same bytes because archives are deterministic. A lock object
  in the bucket would avoid that duplicate build but needs stale-lock expiry
  and polling; a rare duplicate build is cheaper than that machinery.

``boto3`` is imported only when the S3 backend is used.
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

from repohost.config import Settings

#: Writes an archive to the file object it is given.
Builder = Callable[[BinaryIO], None]

#: Seconds a presigned download URL stays valid: long enough to follow a redirect.
PRESIGNED_EXPIRY = 300
_STRIPES = [threading.Lock() for _ in range(16)]
_MISSING = frozenset({"NoSuchKey", "404", "AccessDenied", "403"})
_ALREADY_STORED = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


class Stored(Protocol):
    """One cached archive, open for the length of a request."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...

    def download_url(self, filename: str, content_type: str) -> str | None:
        """A short-lived URL serving the archive as ``filename``; None if there is none."""
        ...


class ArchiveCache(Protocol):
    def open(self, key: str, build: Builder) -> AbstractContextManager[Stored]:
        """The archive stored under ``key``, built with ``build`` first if missing."""
        ...


def cache_for(settings: Settings) -> ArchiveCache:
    """S3 when a bucket is configured, else the local folder."""
    if settings.archive_bucket:
        return S3Cache(settings.archive_bucket)
    return LocalCache(settings.archive_cache_dir)


# -- local folder ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LocalFile:
    path: Path
    size: int

    def read(self) -> bytes:
        return self.path.read_bytes()

    def download_url(self, filename: str, content_type: str) -> str | None:
        return None


@contextmanager
def _locked_directory(directory: Path) -> Iterator[None]:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class LocalCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @contextmanager
    def open(self, key: str, build: Builder) -> Iterator[Stored]:
        path = self.root / key
        if not path.is_file():
            self._build(path, build)
        yield _LocalFile(path, path.stat().st_size)

    def _build(self, path: Path, build: Builder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked_directory(path.parent):
            if path.is_file():  # built by whoever held the lock before us
                return
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".building-")
            try:
                with os.fdopen(descriptor, "wb") as out:
                    build(out)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise


# -- S3 ----------------------------------------------------------------------------


@functools.cache
def _s3_client() -> Any:
    """One client per process, reused by warm invocations."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"))


class _S3Object:
    """An archive in the bucket; ``local`` holds its bytes when this request built it."""

    def __init__(self, bucket: str, key: str, size: int, body: Any, local: IO[bytes] | None):
        self._bucket = bucket
        self._key = key
        self.size = size
        self._body = body
        self._local = local

    def read(self) -> bytes:
        if self._local is not None:
            self._local.seek(0)
            return self._local.read()
        return self._body.read()

    def download_url(self, filename: str, content_type: str) -> str | None:
        return _s3_client().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": self._key,
                "ResponseContentDisposition": f"attachment; filename={filename}",
                "ResponseContentType": content_type,
            },
            ExpiresIn=PRESIGNED_EXPIRY,
        )

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        if self._local is not None:
            self._local.close()


class S3Cache:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @contextmanager
    def open(self, key: str, build: Builder) -> Iterator[Stored]:
        found = self._get(key)
        if found is None:
            with _STRIPES[zlib.crc32(key.encode()) % len(_STRIPES)]:
                found = self._get(key) or self._build(key, build)
        try:
            yield found
        finally:
            found.close()

    def _get(self, key: str) -> _S3Object | None:
        """One GET: a hit costs a single round trip (a large one is closed unread).

        The function may not list the bucket (least privilege), and then S3
        answers a missing key with 403 rather than 404: both mean "build it".
        A bucket that really refuses reads shows up when the upload fails.
        """
        client = _s3_client()
        try:
            answer = client.get_object(Bucket=self.bucket, Key=key)
        except client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        return _S3Object(self.bucket, key, answer["ContentLength"], answer["Body"], None)

    def _build(self, key: str, build: Builder) -> _S3Object:
        client = _s3_client()
        # In /tmp on Lambda; _S3Object.close() closes (and so deletes) it.
        local = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            build(local)
            size = local.tell()
            local.seek(0)
            try:
                client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=local,
                    IfNoneMatch="*",
                    ContentType="application/octet-stream",
                )
            except client.exceptions.ClientError as error:
                if error.response.get("Error", {}).get("Code") not in _ALREADY_STORED:
                    raise
        except BaseException:
            local.close()
            raise
        return _S3Object(self.bucket, key, size, None, local)
