"""Deterministic tar, tar.gz, tar.bz2 and zip archives of one commit, read with dulwich.

The same commit, top directory and format always give the same bytes, so an
archive can be cached, built twice by racing builders, and carry a strong ETag.
What the bytes are made of (facts §5.6, with git archive's layout):

- one top directory ``<prefix>/``, then every directory and file of the commit's
  tree in git's tree order (pre-order, entries sorted as git sorts them), a
  directory's entry before its contents; a submodule is an empty directory, as
  ``git archive`` writes it;
- every entry dated with the commit's committer time (``git archive`` does the
  same), owner ``root:root`` (0/0);
- modes 0644 for files, 0755 for executables and directories; symbolic links
  are symbolic links (tar: link entries; zip: Info-ZIP's Unix mode 0120777 in
  the external attributes, the target as the data);
- tree entries no git checkout would write (``.``, ``..``, ``.git``, names
  holding ``/`` or a ``..`` between backslashes, a name repeated in one tree)
  are left out, so extracting an archive never writes outside its folder;
- tar is ustar with pax records, laid out as ``git archive`` lays it out: a
  global ``comment=<commit id>`` record first (so ``git get-tar-commit-id``
  reads it), long names split into ustar's prefix or else in a pax record,
  names as the tree's bytes; written directly rather than with ``tarfile``,
  whose per-entry overhead doubled the time to build a tar; the zip comment is
  the commit id;
- gzip at level 6 (git's level; dulwich's own tar.gz uses 9, three times
  slower) with ``gzip -n``'s header (no name, no time), as ``git archive``
  writes it; bzip2 at level 9 (Kallithea's ``bzip2 -9``); zip entries
  deflated at level 6.

Archives are written to a file object as they are built, one blob in memory at
a time.
"""

from __future__ import annotations

import bz2
import os
import struct
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Self

from dulwich.object_store import BaseObjectStore
from dulwich.objects import parse_tree
from dulwich.repo import Repo

from repohost.git.errors import RevisionNotFound

__all__ = ["write_archive"]

_BLOB, _COMMIT = 3, 1
_S_IFMT, _S_IFDIR, _S_IFLNK, _S_IFGITLINK = 0o170000, 0o040000, 0o120000, 0o160000
_GZIP_LEVEL = 6
#: ``gzip -n``'s header: no name, no time, OS Unix (what ``git archive`` writes).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
_GZIP_BLOCK = 128 * 1024
_DEFLATE_WINDOW = 32 * 1024
_GZIP_THREADS = min(4, os.cpu_count() or 1)
_BZIP2_LEVEL = 9
_TAR_BLOCK = 512
_TAR_RECORD = 20 * _TAR_BLOCK
_TAR_NAME = 100
_TAR_PREFIX = 155
_TAR_MAX_SIZE = 8**11  # what 11 octal digits hold
#: name, mode, uid, gid, size, mtime, checksum, type, link, magic, version, user, group,
#: device major and minor, prefix, padding.
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_ZIP_LEVEL = 6
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_ZIP_LAST = (2107, 12, 31, 23, 59, 58)


@dataclass(frozen=True, slots=True)
class _Entry:
    path: bytes  # below the top directory; directories end in "/"
    mode: int  # 0o040000, 0o100644, 0o100755 or 0o120000
    data: bytes  # a file's content, a link's target


def _sort_key(entry: tuple[bytes, int, bytes]) -> bytes:
    """git's tree order: a directory sorts as if its name ended in ``/``."""
    name, mode, _ = entry
    return name + b"/" if mode & _S_IFMT == _S_IFDIR else name


def _writable(name: bytes) -> bool:
    """Whether a tree entry name is one harmless path component wherever it is extracted.

    git itself never writes trees with the other names (``git fsck`` flags them), but
    one can arrive by a pull from a hostile upstream; in an archive ``..``, ``a/../..``
    or ``..\\x`` (on Windows) would be written outside the extraction folder, and
    ``.git`` would plant a repository configuration there.
    """
    return (
        name not in (b"", b".", b"..")
        and b"/" not in name
        and b"\0" not in name
        and b".." not in name.split(b"\\")
        and name.lower() != b".git"
    )


def _tree(store: BaseObjectStore, sha: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """A tree's entries in git's order, without unsafe names and repeated names (the first wins).

    A repeated name could make a symbolic link and a directory of the same path, which
    an extractor would write through.
    """
    _, raw = store.get_raw(sha)
    entries, seen = [], set()
    for entry in parse_tree(raw, store.object_format.oid_length):
        if _writable(entry[0]) and entry[0] not in seen:
            seen.add(entry[0])
            entries.append(entry)
    return iter(sorted(entries, key=_sort_key))


def _entries(store: BaseObjectStore, tree: bytes) -> Iterator[_Entry]:
    """Every directory and file below ``tree``, depth first, in git's tree order."""
    stack = [(b"", _tree(store, tree))]
    while stack:
        base, remaining = stack[-1]
        item = next(remaining, None)
        if item is None:
            stack.pop()
            continue
        name, mode, sha = item
        path = base + name
        kind = mode & _S_IFMT
        if kind == _S_IFDIR:
            yield _Entry(path + b"/", _S_IFDIR, b"")
            stack.append((path + b"/", _tree(store, sha)))
        elif kind == _S_IFGITLINK:
            yield _Entry(path + b"/", _S_IFDIR, b"")
        else:
            type_num, data = store.get_raw(sha)
            if type_num != _BLOB:
                raise RevisionNotFound(f"{path!r}: not a blob")
            yield _Entry(path, _file_mode(mode), data)


def _file_mode(mode: int) -> int:
    if mode & _S_IFMT == _S_IFLNK:
        return _S_IFLNK
    return 0o100755 if mode & 0o111 else 0o100644


def _commit_info(store: BaseObjectStore, commit_id: str) -> tuple[bytes, int]:
    """The commit's tree id and committer time, from the raw object."""
    try:
        type_num, raw = store.get_raw(commit_id.encode("ascii"))
    except KeyError:
        type_num, raw = 0, b""
    if type_num != _COMMIT:
        raise RevisionNotFound(f"{commit_id} is not a commit")
    tree = raw[5 : raw.index(b"\n")]
    start = raw.index(b"\ncommitter ") + 1
    committer = raw[start : raw.index(b"\n", start)]
    return tree, int(committer.rsplit(b" ", 2)[1])


def write_archive(repo: Repo, commit_id: str, kind: str, prefix: str, out: BinaryIO) -> None:
    """Write the ``kind`` archive of ``commit_id`` (a full id) with top directory ``prefix``.

    ``kind`` is Kallithea's name: ``tar``, ``tgz``, ``tbz2`` or ``zip``.
    """
    store = repo.object_store
    tree, mtime = _commit_info(store, commit_id)
    entries = _entries(store, tree)
    top = prefix.rstrip("/").encode("utf-8") + b"/"
    if kind == "zip":
        _write_zip(entries, top, mtime, commit_id, out)
    elif kind == "tar":
        _write_tar(entries, top, mtime, commit_id, out)
    elif kind == "tgz":
        with _ParallelGzip(out) as packed:
            _write_tar(entries, top, mtime, commit_id, packed)
    elif kind == "tbz2":
        with bz2.BZ2File(out, "wb", compresslevel=_BZIP2_LEVEL) as packed:
            _write_tar(entries, top, mtime, commit_id, packed)
    else:
        raise ValueError(f"unknown archive kind {kind!r}")


def _deflate(block: bytes, window: bytes, final: bool) -> bytes:
    """One block as raw deflate, primed with the 32 KiB before it; runs on a pool thread."""
    if window:
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, -15, zdict=window)
    else:  # the first block (zlib refuses an empty dictionary)
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, -15)
    return packer.compress(block) + packer.flush(zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH)


class _ParallelGzip:
    """gzip at level 6 whose blocks are deflated on threads while the tar is being built.

    pigz's method: the input is cut into fixed 128 KiB blocks, each deflated on
    its own, primed with the 32 KiB before it and ended with a sync flush, so
    the pieces join into one standard deflate stream (a few bytes larger than
    a serial gzip). The cuts depend only on the byte count, never on the
    threads, so the output is deterministic. zlib releases the GIL: with a
    spare core a first tar.gz is faster than ``git archive``, whose
    compression alone takes longer than everything else and is serial.
    """

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pool = ThreadPoolExecutor(_GZIP_THREADS, thread_name_prefix="gzip")
        self._queued: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._window = b""
        self._crc = 0
        self._size = 0
        out.write(_GZIP_HEADER)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= _GZIP_BLOCK:
            self._queue(bytes(self._buffer[:_GZIP_BLOCK]))
            del self._buffer[:_GZIP_BLOCK]
        return len(data)

    def _queue(self, block: bytes, final: bool = False) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._queued.append(self._pool.submit(_deflate, block, self._window, final))
        self._window = block[-_DEFLATE_WINDOW:]
        while len(self._queued) > 2 * _GZIP_THREADS:  # bounds the memory in flight
            self._out.write(self._queued.popleft().result())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self._queue(bytes(self._buffer), final=True)
                while self._queued:
                    self._out.write(self._queued.popleft().result())
                self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(cancel_futures=True)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def _tar_header(
    name: bytes, mode: int, size: int, mtime: int, kind: bytes, link: bytes = b""
) -> bytes:
    """A ustar header, preceded by a pax header for what ustar cannot hold.

    A name longer than 100 bytes is split at a ``/`` into ustar's prefix
    (155 bytes) and name fields, or else goes into a pax ``path`` record, as
    ``git archive`` does; names are the tree's bytes, unchanged.
    """
    records = []
    prefix = b""
    if len(name) > _TAR_NAME:
        cut = next(
            (
                i
                for i, byte in enumerate(name[:-1])
                if byte == 0x2F and i <= _TAR_PREFIX and len(name) - i - 1 <= _TAR_NAME
            ),
            None,
        )
        if cut is None:
            records.append(_pax_record(b"path", name))
            name = name[:_TAR_NAME]
        else:
            prefix, name = name[:cut], name[cut + 1 :]
    if len(link) > _TAR_NAME:
        records.append(_pax_record(b"linkpath", link))
        link = link[:_TAR_NAME]
    if size >= _TAR_MAX_SIZE:
        records.append(_pax_record(b"size", b"%d" % size))
    pax = b""
    if records:
        data = b"".join(records)
        pax = _tar_block(b"././@PaxHeader", 0o644, len(data), mtime, b"x") + _padded(data)
    return pax + _tar_block(
        name, mode, size if size < _TAR_MAX_SIZE else 0, mtime, kind, link, prefix
    )


def _tar_block(
    name: bytes,
    mode: int,
    size: int,
    mtime: int,
    kind: bytes,
    link: bytes = b"",
    prefix: bytes = b"",
) -> bytes:
    header = _USTAR.pack(
        name,
        _octal(mode, 8),
        _octal(0, 8),  # uid
        _octal(0, 8),  # gid
        _octal(size, 12),
        _octal(mtime, 12),
        b" " * 8,  # the checksum counts its own field as spaces
        kind,
        link,
        b"ustar\0",
        b"00",
        b"root",
        b"root",
        _octal(0, 8),
        _octal(0, 8),
        prefix,
    )
    return header[:148] + b"%06o\0 " % sum(header) + header[156:]


def _pax_record(keyword: bytes, value: bytes) -> bytes:
    """``"<length> <keyword>=<value>\\n"``, where the length counts its own digits."""
    rest = len(keyword) + len(value) + 3  # " ", "=", "\n"
    length = rest + len(str(rest))
    length = rest + len(str(length))
    return b"%d %s=%s\n" % (length, keyword, value)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _TAR_BLOCK)


def _write_tar(
    entries: Iterator[_Entry], top: bytes, mtime: int, commit_id: str, out: BinaryIO
) -> None:
    """POSIX pax, as ``git archive``: a global ``comment=<commit id>``, then every entry."""
    comment = _pax_record(b"comment", commit_id.encode("ascii"))
    head = _tar_block(b"pax_global_header", 0o666, len(comment), mtime, b"g") + _padded(comment)
    out.write(head)
    written = len(head)
    for entry in _with_top(entries):
        name = top + entry.path
        data = b""
        if entry.mode == _S_IFDIR:
            header = _tar_header(name, 0o755, 0, mtime, b"5")
        elif entry.mode == _S_IFLNK:
            header = _tar_header(name, 0o777, 0, mtime, b"2", entry.data)
        else:
            data = entry.data
            header = _tar_header(name, entry.mode & 0o777, len(data), mtime, b"0")
        padding = b"\0" * (-len(data) % _TAR_BLOCK)
        out.write(header)
        out.write(data)
        out.write(padding)
        written += len(header) + len(data) + len(padding)
    end = 2 * _TAR_BLOCK  # two empty blocks, then padding to a whole record
    out.write(b"\0" * (end + (-(written + end) % _TAR_RECORD)))


def _with_top(entries: Iterator[_Entry]) -> Iterator[_Entry]:
    """The top directory's own entry (path ``b''``), then everything inside it."""
    yield _Entry(b"", _S_IFDIR, b"")
    yield from entries


def _zip_time(mtime: int) -> tuple[int, int, int, int, int, int]:
    stamp = time.gmtime(mtime)[:6]
    return min(max(stamp, _ZIP_EPOCH), _ZIP_LAST)  # type: ignore[return-value]


def _write_zip(
    entries: Iterator[_Entry], top: bytes, mtime: int, commit_id: str, out: BinaryIO
) -> None:
    date_time = _zip_time(mtime)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as archive:
        archive.comment = commit_id.encode("ascii")
        for entry in _with_top(entries):
            # zip has no way to keep bytes that are not UTF-8 in a name: U+FFFD.
            name = (top + entry.path).decode("utf-8", "replace")
            info = zipfile.ZipInfo(name, date_time)
            info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
            if entry.mode == _S_IFDIR:
                info.external_attr = (0o040755 << 16) | 0x10  # 0x10: MS-DOS directory bit
                archive.writestr(info, b"", zipfile.ZIP_STORED)
            elif entry.mode == _S_IFLNK:
                info.external_attr = 0o120777 << 16
                archive.writestr(info, entry.data, zipfile.ZIP_STORED)
            else:
                info.external_attr = entry.mode << 16
                archive.writestr(info, entry.data, zipfile.ZIP_DEFLATED, _ZIP_LEVEL)
