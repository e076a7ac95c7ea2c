"""Repositories, groups and gists as directories under one root (the EFS mount on AWS).

Layout, the same as Kallithea's so ``rescan_repos`` can adopt a Kallithea root::

    <root>/<group>/<subgroup>/<repo>/     bare git repositories; groups are plain directories
    <root>/.rc_gist_store/<access_id>/    gists, one bare repository each
    <root>/.tmp/<random>/                 repositories being built (create, fork, gist)
    <root>/.trash/<stamp>__<basename>/    deleted repositories and groups, being removed
    <root>/.locks/                        write-lock files (``repohost.git.locks``)

Public API (``RepoStore(root)``; names are checked by ``repohost.git.names``):

- ``path_for(name) -> Path``, ``group_path(name) -> Path``, ``gist_path(access_id) -> Path``
- ``repo_exists(name) -> bool``, ``group_exists(name) -> bool``
- ``create_repo(name, *, description='') -> Path``
- ``clone_local(source_name, target_name, *, description='') -> Path``  (forks)
- ``rename_repo(old, new) -> Path``
- ``create_group(name) -> Path``, ``rename_group(old, new) -> Path``
- ``create_gist(access_id, files, message, author) -> str`` (the commit id)
- deleting in two steps, so a caller can keep the data until its database
  transaction commits: ``trash_repo(name)``, ``trash_group(name)``,
  ``trash_gist(access_id)`` ``-> Path`` (the trash entry); then either
  ``remove_trashed(trash)`` or ``restore_repo(trash, name)``,
  ``restore_group(trash, name)``, ``restore_gist(trash, access_id)`` ``-> Path``;
  ``delete_repo``, ``delete_group``, ``delete_gist`` do both steps at once
- ``iter_repositories() -> Iterator[str]``  (rescan)
- ``purge_trash(*, stale_after=3600, trash_after=0) -> int``
- intents (``RepoStore(root, intents=True)``, what ``CallContext`` uses):
  ``settle_intents()``, ``pending_intents(stale_after)``, ``drop_intent(path)``,
  and the undo steps recovery takes: ``undo_placement``, ``undo_rename``,
  ``undo_trash``

Safety rules every method follows:

- Names are validated before any filesystem call. Every path is checked: no
  component below the root may be a symbolic link and the real path must stay
  under the root's real path (the root itself may be a symlink, e.g. a mount).
- Nothing is ever half-made. New repositories are built in ``.tmp/`` and moved
  into place by one ``rename``; deletions move the directory to ``.trash/`` by one
  ``rename`` and only then remove it (a crash leaves trash, never a half
  repository; ``purge_trash`` finishes the job). Renames never replace an
  existing entry: ``renameat2(RENAME_NOREPLACE)`` where the filesystem has it;
  NFS (EFS) does not, so there the check-then-rename leaves a tiny window that
  the caller's per-repository lock and the database's unique names close.
- Parent groups must exist: ``create_group`` makes one level; a repository is
  never created inside another repository.
- A process killed between a step and its database commit must not leave the
  step behind (a directory without a row, a row whose directory sits in the
  trash). So a store made with ``intents=True`` first writes a note to
  ``.intents/`` naming the step (the directory's inode number too), then takes
  it; the caller drops the notes with ``settle_intents()`` once its transaction
  has ended (and any undo has run). A note still there after a crash is
  settled by ``repohost.recovery``, which asks the database whether the step's
  transaction committed and undoes the step if not.
- Failures raise ``RepoExists``, ``RepoNotFound``, ``GroupExists``, ``GroupNotFound``,
  ``GroupNotEmpty`` or ``StorageError`` (any ``OSError``, e.g. a full disk).

This module does not lock; callers hold ``repo_write_lock`` (and their database
lock) around writes. dulwich is imported only inside the functions that use it,
so importing this module stays cheap for code paths that never touch git.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from repohost.git.errors import (
    GroupExists,
    GroupNotEmpty,
    GroupNotFound,
    InvalidName,
    RepoExists,
    RepoNotFound,
    StorageError,
)
from repohost.git.names import (
    validate_gist_access_id,
    validate_gist_filename,
    validate_group_name,
    validate_repo_name,
)

__all__ = [
    "DEFAULT_BRANCH",
    "GIST_STORE",
    "INTENTS_DIR",
    "TMP_DIR",
    "TRASH_DIR",
    "RepoStore",
    "is_bare_repo",
]

log = logging.getLogger(__name__)

TRASH_DIR = ".trash"
TMP_DIR = ".tmp"
INTENTS_DIR = ".intents"
GIST_STORE = ".rc_gist_store"
DEFAULT_BRANCH = b"master"  # Kallithea's git default branch

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _load_renameat2() -> Callable[..., int] | None:
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename atomically, raising ``FileExistsError`` rather than replacing ``dst``.

    Plain ``rename(2)`` silently replaces an empty directory, so a repository
    could swallow a concurrently created empty group.
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE):
            err = ctypes.get_errno()
            # EINVAL/ENOSYS: this filesystem (e.g. NFS) or kernel lacks the flag.
            if err not in (errno.EINVAL, errno.ENOSYS):
                raise OSError(err, os.strerror(err), os.fspath(src), None, os.fspath(dst))
        else:
            return
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(dst))
    os.rename(src, dst)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _lstat_mode(path: Path) -> int | None:
    """The entry's own mode (links not followed); None when nothing is there."""
    try:
        return os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StorageError(f"cannot inspect {path}: {exc.strerror or exc}") from exc


def _is_real_dir(path: Path) -> bool:
    mode = _lstat_mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def is_bare_repo(path: Path) -> bool:
    """Kallithea's bare-repository test: ``objects/`` and (``refs/`` or ``packed-refs``).

    Symbolic links count as nothing, so a link cannot make a directory a repository.
    """
    if not _is_real_dir(path / "objects"):
        return False
    if _is_real_dir(path / "refs"):
        return True
    mode = _lstat_mode(path / "packed-refs")
    return mode is not None and stat.S_ISREG(mode)


@contextmanager
def _translate(action: str) -> Iterator[None]:
    """Report any ``OSError`` (full disk, permissions, I/O) as ``StorageError``."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"{action}: {exc.strerror or exc}") from exc


def _staging_gone() -> StorageError:
    """The staging directory vanished before its move: ``.tmp`` was purged too early."""
    return StorageError("staging directory removed before it was moved into place")


def _place(src: Path, dst: Path, exists: StorageError, missing: StorageError) -> None:
    """Move ``src`` to ``dst`` in one step.

    Raises ``exists`` if ``dst`` is taken and ``missing`` if ``src`` vanished
    meanwhile (a concurrent rename or delete won the race).
    """
    try:
        _rename_noreplace(src, dst)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise exists from exc
        if exc.errno == errno.ENOENT and not os.path.lexists(src):
            raise missing from exc
        raise


def _inode(path: Path, missing: StorageError) -> int:
    """The inode of ``path``; ``missing`` if a concurrent rename or delete took it."""
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError as exc:
        raise missing from exc


def _remove_tree(path: Path) -> None:
    """Best effort: whatever cannot be removed now stays in the trash for ``purge_trash``."""

    def report(_func: object, failed: str, exc: BaseException) -> None:
        log.warning("could not remove %s: %s", failed, exc)

    if _is_real_dir(path):
        shutil.rmtree(path, onexc=report)
    else:
        try:
            os.unlink(path)
        except OSError as exc:
            report(None, os.fspath(path), exc)


def _init_bare(path: Path, description: str) -> None:
    from dulwich.repo import Repo

    path.mkdir()
    Repo.init_bare(path, default_branch=DEFAULT_BRANCH).close()
    _write_file(path / "description", description.encode("utf-8"))


def _read_clone_refs(path: Path) -> tuple[dict[bytes, bytes], bytes | None]:
    """Branches, tags and HEAD as ``git clone --bare`` copies them."""
    from dulwich.repo import Repo

    with Repo(os.fspath(path)) as repo:
        refs = {
            name: sha
            for name, sha in repo.refs.as_dict().items()
            if name.startswith((b"refs/heads/", b"refs/tags/"))
        }
        return refs, repo.refs.read_ref(b"HEAD")


def _write_clone_refs(path: Path, refs: dict[bytes, bytes], head: bytes | None) -> None:
    from dulwich.repo import Repo

    with Repo(os.fspath(path)) as repo:
        repo.refs.add_packed_refs(refs)
        if head and head.startswith(b"ref: "):
            repo.refs.set_symbolic_ref(b"HEAD", head[5:].strip())
        elif head:
            repo.refs[b"HEAD"] = head.strip()


def _commit_files(path: Path, files: dict[str, bytes], message: str, author: str) -> str:
    """One root commit on the default branch holding ``files``; returns its id."""
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    blobs = {name.encode("utf-8"): Blob.from_string(data) for name, data in files.items()}
    tree = Tree()
    for name, blob in blobs.items():
        tree.add(name, 0o100644, blob.id)
    identity = (author if "<" in author else f"{author} <>").encode("utf-8")
    commit = Commit()
    commit.tree = tree.id
    commit.author = commit.committer = identity
    commit.author_time = commit.commit_time = int(time.time())
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode("utf-8") + (b"" if message.endswith("\n") else b"\n")
    with Repo(os.fspath(path)) as repo:
        repo.object_store.add_objects([(obj, None) for obj in (*blobs.values(), tree, commit)])
        repo.refs[b"refs/heads/" + DEFAULT_BRANCH] = commit.id
    return commit.id.decode("ascii")


class RepoStore:
    """All filesystem operations on one repository root. See the module docstring."""

    def __init__(self, root: Path | str, *, intents: bool = False) -> None:
        self.root = Path(os.path.realpath(root))
        #: The intent notes this store wrote and has not settled (None: it writes none).
        self._intents: list[Path] | None = [] if intents else None

    # -- paths ---------------------------------------------------------------

    def path_for(self, name: str) -> Path:
        """The checked directory of repository ``name`` (which need not exist)."""
        return self._checked(validate_repo_name(name).split("/"))

    def group_path(self, name: str) -> Path:
        """The checked directory of repository group ``name`` (which need not exist)."""
        return self._checked(validate_group_name(name).split("/"))

    def gist_path(self, access_id: str) -> Path:
        """The checked directory of gist ``access_id`` (which need not exist)."""
        return self._checked([GIST_STORE, validate_gist_access_id(access_id)])

    def _checked(self, parts: list[str]) -> Path:
        path = self.root
        for part in parts:
            path = path / part
            mode = _lstat_mode(path)
            if mode is not None and stat.S_ISLNK(mode):
                raise StorageError(f"{'/'.join(parts)!r}: a path component is a symbolic link")
        if not Path(os.path.realpath(path)).is_relative_to(self.root):
            raise StorageError(f"{'/'.join(parts)!r} resolves outside the repository root")
        return path

    def repo_exists(self, name: str) -> bool:
        return is_bare_repo(self.path_for(name))

    def group_exists(self, name: str) -> bool:
        path = self.group_path(name)
        return _is_real_dir(path) and not is_bare_repo(path)

    def _require_repo(self, path: Path, name: str) -> None:
        if not (_is_real_dir(path) and is_bare_repo(path)):
            raise RepoNotFound(f"repository {name!r} not found")

    def _require_group(self, path: Path, name: str) -> None:
        if not _is_real_dir(path) or is_bare_repo(path):
            raise GroupNotFound(f"repository group {name!r} not found")

    def _require_parent(self, path: Path) -> None:
        parent = path.parent
        if parent != self.root:
            self._require_group(parent, parent.relative_to(self.root).as_posix())

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        """A fresh path under ``.tmp/``, removed afterwards unless it was moved into place."""
        tmp_root = self.root / TMP_DIR
        tmp_root.mkdir(exist_ok=True)
        path = tmp_root / secrets.token_hex(8)
        try:
            yield path
        finally:
            if os.path.lexists(path):
                _remove_tree(path)

    def _to_trash(
        self, path: Path, missing: StorageError, intent: dict[str, object] | None = None
    ) -> Path:
        trash_root = self.root / TRASH_DIR
        trash_root.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
        trash = trash_root / f"{stamp}_{secrets.token_hex(4)}__{path.name}"
        if intent is not None:
            self._intend({**intent, "trash": trash.name})
        _place(path, trash, StorageError(f"trash entry {trash.name} exists"), missing)
        return trash

    # -- intents -------------------------------------------------------------------

    def _intend(self, record: dict[str, object]) -> None:
        """Note the step about to be taken (see the module docstring); OSError on failure."""
        if self._intents is None:
            return
        folder = self.root / INTENTS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(6)}.json"
        data = json.dumps(record).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        self._intents.append(path)

    def settle_intents(self) -> None:
        """The transaction of the noted steps has ended (and any undo has run): drop the notes."""
        for path in self._intents or ():
            self.drop_intent(path)
        if self._intents:
            self._intents.clear()

    def drop_intent(self, path: Path) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove intent %s: %s", path.name, exc)

    def pending_intents(self, stale_after: float = 0) -> list[tuple[Path, dict[str, object]]]:
        """Notes older than ``stale_after`` seconds, newest first (the order undo runs in).

        A note that cannot be read is logged and dropped: it was never complete,
        so its step was never taken.
        """
        folder = self.root / INTENTS_DIR
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name, reverse=True)
        except FileNotFoundError:
            return []
        cutoff = time.time() - stale_after
        found = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue
                record = json.loads(path.read_bytes())
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                log.warning("dropping unreadable intent %s: %s", path.name, exc)
                self.drop_intent(path)
                continue
            found.append((path, record))
        return found

    def undo_placement(self, path: Path, inode: int) -> bool:
        """Move ``path`` (a directory placed by a step that did not commit) to the trash.

        Only when it is still the very directory the step placed (same inode),
        and for a group only when no repository is below it. True when moved.
        """
        if not _same_directory(path, inode):
            return False
        inside = _find_repository(path) if not is_bare_repo(path) else None
        if inside is not None:
            log.warning("recovery: %s holds repository %s; left alone", path, inside)
            return False
        with _translate(f"cannot undo the creation of {path.name!r}"):
            trash = self._to_trash(path, StorageError(f"{path} vanished"))
        self.remove_trashed(trash)
        return True

    def undo_rename(self, old: Path, new: Path, inode: int) -> bool:
        """Move ``new`` back to ``old`` if it is the directory the step moved and ``old`` free."""
        if not _same_directory(new, inode) or os.path.lexists(old):
            return False
        with _translate(f"cannot undo the move of {old.name!r}"):
            _place(new, old, StorageError(f"{old} exists"), StorageError(f"{new} vanished"))
        return True

    def undo_trash(self, trash_name: str, target: Path) -> bool:
        """Put a trash entry back at ``target`` if it is still there and ``target`` is free."""
        entry = self._trash_entry(self.root / TRASH_DIR / trash_name)
        if not _is_real_dir(entry) or os.path.lexists(target):
            return False
        self._restore(entry, target, StorageError(f"{target} exists"))
        return True

    # -- repositories ----------------------------------------------------------

    def create_repo(self, name: str, *, description: str = "") -> Path:
        """Create an empty bare repository (HEAD → ``master``) with ``description``."""
        target = self.path_for(name)
        self._require_parent(target)
        if os.path.lexists(target):
            raise RepoExists(f"repository {name!r} already exists")
        with _translate(f"cannot create repository {name!r}"), self._staging() as tmp:
            _init_bare(tmp, description)
            self._intend({"op": "create_repo", "name": name, "inode": os.lstat(tmp).st_ino})
            _place(tmp, target, RepoExists(f"repository {name!r} already exists"), _staging_gone())
        return target

    def clone_local(self, source_name: str, target_name: str, *, description: str = "") -> Path:
        """Fork: a bare copy of ``source_name``'s objects, branches, tags and HEAD.

        Refs are read before objects are copied, so a push landing meanwhile can
        only add objects the copied refs do not need. Files are copied, not
        hard-linked (EFS gains nothing from links and a copy stays independent).
        """
        source = self.path_for(source_name)
        self._require_repo(source, source_name)
        target = self.path_for(target_name)
        self._require_parent(target)
        if os.path.lexists(target):
            raise RepoExists(f"repository {target_name!r} already exists")
        with _translate(f"cannot fork {source_name!r} as {target_name!r}"), self._staging() as tmp:
            refs, head = _read_clone_refs(source)
            _init_bare(tmp, description)
            shutil.copytree(source / "objects", tmp / "objects", symlinks=True, dirs_exist_ok=True)
            _write_clone_refs(tmp, refs, head)
            exists = RepoExists(f"repository {target_name!r} already exists")
            inode = os.lstat(tmp).st_ino
            self._intend({"op": "create_repo", "name": target_name, "inode": inode})
            _place(tmp, target, exists, _staging_gone())
        return target

    def rename_repo(self, old: str, new: str) -> Path:
        """Move a repository to another name (and group); the new parent group must exist."""
        source = self.path_for(old)
        self._require_repo(source, old)
        target = self.path_for(new)
        self._require_parent(target)
        with _translate(f"cannot rename repository {old!r} to {new!r}"):
            exists = RepoExists(f"repository {new!r} already exists")
            missing = RepoNotFound(f"repository {old!r} not found")
            inode = _inode(source, missing)
            self._intend({"op": "rename_repo", "old": old, "new": new, "inode": inode})
            _place(source, target, exists, missing)
        return target

    def trash_repo(self, name: str) -> Path:
        """Move the repository to the trash (one rename) and return the trash path.

        With ``restore_repo`` and ``remove_trashed`` this lets a caller keep the
        directory until its database transaction commits.
        """
        path = self.path_for(name)
        self._require_repo(path, name)
        with _translate(f"cannot delete repository {name!r}"):
            missing = RepoNotFound(f"repository {name!r} not found")
            return self._to_trash(path, missing, {"op": "trash_repo", "name": name})

    def restore_repo(self, trash: Path, name: str) -> Path:
        """Move a trashed repository back to ``name`` (e.g. on rollback)."""
        target = self.path_for(name)
        self._require_parent(target)
        return self._restore(trash, target, RepoExists(f"repository {name!r} already exists"))

    def delete_repo(self, name: str) -> Path:
        """``trash_repo`` then ``remove_trashed``; returns the (removed) trash path."""
        trash = self.trash_repo(name)
        self.remove_trashed(trash)
        return trash

    # -- groups ----------------------------------------------------------------

    def create_group(self, name: str) -> Path:
        """Create one group directory; its parent group must exist."""
        path = self.group_path(name)
        self._require_parent(path)
        if os.path.lexists(path):
            raise GroupExists(f"{name!r} already exists")
        with _translate(f"cannot create group {name!r}"), self._staging() as tmp:
            os.mkdir(tmp)
            self._intend({"op": "create_group", "name": name, "inode": os.lstat(tmp).st_ino})
            _place(tmp, path, GroupExists(f"{name!r} already exists"), _staging_gone())
        return path

    def rename_group(self, old: str, new: str) -> Path:
        """Move a group with everything below it; refuses to move it into itself."""
        source = self.group_path(old)
        self._require_group(source, old)
        if new == old or new.startswith(old + "/"):
            raise StorageError(f"cannot move group {old!r} into itself")
        target = self.group_path(new)
        self._require_parent(target)
        with _translate(f"cannot rename group {old!r} to {new!r}"):
            exists = GroupExists(f"{new!r} already exists")
            missing = GroupNotFound(f"repository group {old!r} not found")
            inode = _inode(source, missing)
            self._intend({"op": "rename_group", "old": old, "new": new, "inode": inode})
            _place(source, target, exists, missing)
        return target

    def trash_group(self, name: str) -> Path:
        """Move a group holding no repository (empty subgroups go with it) to the trash.

        Refusing groups with repositories means a group delete can never take
        a repository's data along; the caller deletes or moves them first. Any
        bare repository below counts, even one the rescan would skip (hidden,
        invalid name, Kallithea's ``rm__…``): data is never removed unseen.
        """
        path = self.group_path(name)
        self._require_group(path, name)
        inside = _find_repository(path)
        if inside is not None:
            raise GroupNotEmpty(f"group {name!r} still holds repository {inside!r}")
        with _translate(f"cannot delete group {name!r}"):
            missing = GroupNotFound(f"repository group {name!r} not found")
            return self._to_trash(path, missing, {"op": "trash_group", "name": name})

    def restore_group(self, trash: Path, name: str) -> Path:
        """Move a trashed group back to ``name`` (e.g. on rollback)."""
        target = self.group_path(name)
        self._require_parent(target)
        return self._restore(trash, target, GroupExists(f"{name!r} already exists"))

    def delete_group(self, name: str) -> Path:
        """``trash_group`` then ``remove_trashed``; returns the (removed) trash path."""
        trash = self.trash_group(name)
        self.remove_trashed(trash)
        return trash

    # -- rescan ----------------------------------------------------------------

    def iter_repositories(self) -> Iterator[str]:
        """Full names of the bare repositories below the root, depth first, sorted by name.

        As Kallithea's rescan: directories starting with ``.`` and Kallithea's
        ``rm__…`` deleted directories are skipped, symbolic links are not
        followed, a repository is not descended into, non-bare working copies
        (a ``.git`` inside) and Mercurial/Subversion checkouts are skipped.
        Directories whose names repohost would refuse are skipped (logged), so
        every yielded name passes ``validate_repo_name``.
        """
        return self._walk(self.root, "")

    def _walk(self, directory: Path, prefix: str) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as exc:
            log.warning("rescan: cannot list %s: %s", directory, exc)
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            name = prefix + entry.name
            if not _acceptable(name):
                continue
            path = Path(entry.path)
            if is_bare_repo(path):
                yield name
            elif any(os.path.lexists(path / marker) for marker in (".git", ".hg", ".svn")):
                log.warning("rescan: skipping %s: not a bare git repository", name)
            else:
                yield from self._walk(path, name + "/")

    # -- gists -------------------------------------------------------------------

    def create_gist(self, access_id: str, files: dict[str, str], message: str, author: str) -> str:
        """A gist repository with one commit adding ``files``; returns the commit id.

        ``author`` is ``"Name <email>"``; the message gets git's final newline.
        """
        path = self.gist_path(access_id)
        if not files:
            raise InvalidName("a gist needs at least one file")
        contents = {validate_gist_filename(name): _utf8(name, text) for name, text in files.items()}
        if "\n" in author or "\x00" in author:
            raise InvalidName("invalid gist author")
        if os.path.lexists(path):
            raise RepoExists(f"gist {access_id!r} already exists")
        with _translate(f"cannot create gist {access_id!r}"), self._staging() as tmp:
            path.parent.mkdir(exist_ok=True)
            _init_bare(tmp, "")
            commit_id = _commit_files(tmp, contents, message, author)
            inode = os.lstat(tmp).st_ino
            self._intend({"op": "create_gist", "access_id": access_id, "inode": inode})
            _place(tmp, path, RepoExists(f"gist {access_id!r} already exists"), _staging_gone())
        return commit_id

    def trash_gist(self, access_id: str) -> Path:
        """Move the gist repository to the trash and return the trash path."""
        path = self.gist_path(access_id)
        self._require_repo(path, f"gist {access_id}")
        with _translate(f"cannot delete gist {access_id!r}"):
            missing = RepoNotFound(f"gist {access_id!r} not found")
            return self._to_trash(path, missing, {"op": "trash_gist", "access_id": access_id})

    def restore_gist(self, trash: Path, access_id: str) -> Path:
        """Move a trashed gist back (e.g. on rollback)."""
        target = self.gist_path(access_id)
        return self._restore(trash, target, RepoExists(f"gist {access_id!r} already exists"))

    def delete_gist(self, access_id: str) -> Path:
        """``trash_gist`` then ``remove_trashed``; returns the (removed) trash path."""
        trash = self.trash_gist(access_id)
        self.remove_trashed(trash)
        return trash

    # -- trash -------------------------------------------------------------------

    def _trash_entry(self, trash: Path) -> Path:
        """Refuse any path that is not a directory directly in ``.trash/``.

        ``restore_*`` and ``remove_trashed`` take a path from the caller, so
        this is what keeps them from moving or removing anything else.
        """
        entry = Path(trash)
        mode = _lstat_mode(entry)
        if (
            entry.parent != self.root / TRASH_DIR
            or entry.name in ("", ".", "..")
            or (mode is not None and not stat.S_ISDIR(mode))
        ):
            raise StorageError(f"{trash} is not an entry of the trash")
        return entry

    def _restore(self, trash: Path, target: Path, exists: StorageError) -> Path:
        entry = self._trash_entry(trash)
        with _translate(f"cannot restore {entry.name}"):
            _place(entry, target, exists, StorageError(f"{entry.name} is no longer in the trash"))
        return target

    def remove_trashed(self, trash: Path) -> None:
        """Remove a trash entry, best effort: never raises for what cannot be removed now.

        Leftovers are ``purge_trash``'s job; an entry already gone is fine.
        """
        entry = self._trash_entry(trash)
        if os.path.lexists(entry):
            _remove_tree(entry)

    def purge_trash(self, *, stale_after: float = 3600, trash_after: float = 0) -> int:
        """Remove ``.trash/`` entries older than ``trash_after`` s (by default all of them)
        and ``.tmp/`` entries older than ``stale_after`` s.

        ``.tmp/`` entries younger than that may be creations in progress in
        another process (a Lambda invocation lasts at most 15 minutes); while
        other processes serve calls, ``trash_after`` must also be that long, as a
        young trash entry may be a delete whose transaction could still roll back.
        Returns how many entries were removed (or attempted).
        """
        removed = 0
        now = time.time()
        for area, age in ((TRASH_DIR, trash_after), (TMP_DIR, stale_after)):
            try:
                entries = list(os.scandir(self.root / area))
            except FileNotFoundError:
                continue
            for entry in entries:
                if age > 0 and _entry_time(entry, area == TRASH_DIR) > now - age:
                    continue
                _remove_tree(Path(entry.path))
                removed += 1
        return removed


def _utf8(name: str, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes
        raise InvalidName(f"gist file {name!r} is not valid Unicode text") from exc


def _entry_time(entry: os.DirEntry[str], trashed: bool) -> float:
    """When a staging directory was last written, or when an entry was moved to the trash.

    A trash entry's own mtime is the repository's last change, however old, so
    its name's time stamp counts (its ctime for a name without one).
    """
    info = entry.stat(follow_symlinks=False)
    if not trashed:
        return info.st_mtime
    try:
        stamp = datetime.strptime(entry.name[:22], "%Y%m%d_%H%M%S_%f")
    except ValueError:
        return info.st_ctime
    return stamp.replace(tzinfo=UTC).timestamp()


def _same_directory(path: Path, inode: int) -> bool:
    """Whether ``path`` is a real directory with inode number ``inode`` (links not followed)."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_ino == inode


def _acceptable(name: str) -> bool:
    """Whether a directory found by the rescan has a name repohost accepts."""
    try:
        validate_repo_name(name)
    except InvalidName as exc:
        log.info("rescan: skipping %r: %s", name, exc.reason)
        return False
    return True


def _find_repository(directory: Path) -> str | None:
    """Relative path of some bare repository at or below ``directory``, without following links."""
    for current, dirs, _files in os.walk(directory):
        for sub in dirs:
            if is_bare_repo(Path(current) / sub):
                return (Path(current) / sub).relative_to(directory).as_posix()
    return None
