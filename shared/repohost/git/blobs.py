"""Files at a commit, read with libgit2 (pygit2): the raw and rawfile views' reader.

Public API:

- ``open_repository(path) -> pygit2.Repository`` (also used by ``repohost.git.diff``)
- ``file_parts(path) -> list[str]``: a URL's file path as tree entry names
- ``find_file(repo, commit_id, parts) -> FileEntry``
- ``read_blob(repo, entry) -> bytes``

Why libgit2 rather than dulwich here: it tells a blob's size without
inflating it (so an oversized file is refused before it is read into a
Lambda's memory) and inflates large blobs faster.

Safety: a file is only ever looked up entry by entry in the commit's trees,
never on disk, so nothing outside the repository can be reached. A symbolic
link is a blob whose content is the link text; it is served as that text and
never followed. Paths with empty, ``.`` or ``..`` segments, a NUL or a
backslash are refused before any lookup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import ConfigLevel, FileMode

from repohost.git.errors import PathNotFound, RepoNotFound, RevisionNotFound

__all__ = ["FileEntry", "file_parts", "find_file", "open_repository", "read_blob"]

_TREE = int(FileMode.TREE)
_LINK = int(FileMode.LINK)
_BLOB_MODES = frozenset({int(FileMode.BLOB), int(FileMode.BLOB_EXECUTABLE), _LINK})


def _configure_libgit2() -> None:
    """Process-wide libgit2 settings, applied once at import.

    - No system, global or XDG git configuration: a host's ``~/.gitconfig``
      must not change what the service serves.
    - No ownership check: on AWS the repositories belong to the EFS access
      point's user, not to the Lambda sandbox's, and they are the service's
      own storage (git's ``safe.directory`` guards against other users' repos).
    - No hash verification of every object read (git does not verify either,
      outside ``fsck``): hashing a large blob costs more than inflating it.
    """
    for level in (ConfigLevel.SYSTEM, ConfigLevel.GLOBAL, ConfigLevel.XDG):
        pygit2.settings.search_path[level] = ""
    pygit2.settings.owner_validation = False
    pygit2.settings.enable_strict_hash_verification(False)


_configure_libgit2()


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A file of a commit's tree: its blob, mode and size (known before reading it)."""

    path: str
    blob_id: str
    mode: int
    size: int

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_symlink(self) -> bool:
        return self.mode == _LINK


def open_repository(path: Path | str) -> pygit2.Repository:
    """Open the bare repository at ``path``; ``RepoNotFound`` if there is none."""
    try:
        return pygit2.Repository(os.fspath(path), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except (pygit2.GitError, KeyError, OSError) as exc:
        raise RepoNotFound(f"no git repository at {path}") from exc


def file_parts(path: str) -> list[str]:
    """``'src/a.py'`` → ``['src', 'a.py']``; leading slashes are ignored (as Kallithea).

    Raises ``PathNotFound`` for an empty path and for any segment that is
    empty, ``.`` or ``..``, or holds a NUL or a backslash.
    """
    parts = path.lstrip("/").split("/")
    if any(part in ("", ".", "..") or "\x00" in part or "\\" in part for part in parts):
        raise PathNotFound(f"invalid file path {path!r}")
    return parts


def find_file(repo: pygit2.Repository, commit_id: str, parts: list[str]) -> FileEntry:
    """The file at ``parts`` in ``commit_id``'s tree.

    Raises ``RevisionNotFound`` if ``commit_id`` is not a commit and
    ``PathNotFound`` if the path is missing, names a directory or a submodule.
    """
    try:
        commit = repo[commit_id]
    except (KeyError, ValueError) as exc:
        raise RevisionNotFound(f"{commit_id} is not in the repository") from exc
    if not isinstance(commit, pygit2.Commit):
        raise RevisionNotFound(f"{commit_id} is not a commit")
    tree: pygit2.Tree = commit.tree
    for depth, part in enumerate(parts):
        try:
            entry = tree[part]
        except KeyError:
            raise PathNotFound(f"no {'/'.join(parts[: depth + 1])!r}") from None
        mode = entry.filemode
        if depth < len(parts) - 1:
            if mode != _TREE:
                raise PathNotFound(f"{'/'.join(parts[: depth + 1])!r} is not a directory")
            tree = entry
        elif mode not in _BLOB_MODES:
            raise PathNotFound(f"{'/'.join(parts)!r} is not a file")
    _kind, size = repo.odb.read_header(entry.id)
    return FileEntry("/".join(parts), str(entry.id), int(mode), size)


def read_blob(repo: pygit2.Repository, entry: FileEntry) -> bytes:
    """The file's bytes (a symbolic link's are its link text)."""
    return repo.odb.read(entry.blob_id)[1]
