"""Per-repository write lock for one machine: ``fcntl.flock`` on a file under ``<root>/.locks/``.

``repo_write_lock(root, key)`` serialises writers of one repository across
threads and processes: every acquisition opens the lock file anew, and flock
locks belong to the open file description, so two threads of one process
exclude each other just like two processes do. On NFS (EFS) Linux turns flock
into an NFS byte-range lock, so it also holds across Lambda instances, but the
API layer still takes a PostgreSQL advisory lock for multi-host correctness.

``key`` is any string or int naming the repository (its database id is best: it
survives renames). The file name is a hash of the key, so any key is safe.
Lock files are never deleted: unlinking a lock file while another process
waits on it would let two holders in at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from repohost.git.errors import LockTimeout, StorageError

__all__ = ["LOCKS_DIR", "repo_write_lock"]

LOCKS_DIR = ".locks"
_POLL_SECONDS = 0.05


def _lock_path(root: Path, repo_key: str | int) -> Path:
    digest = hashlib.sha256(str(repo_key).encode()).hexdigest()
    return Path(root) / LOCKS_DIR / f"{digest}.lock"


def _acquire(fd: int, timeout: float | None) -> bool:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)


@contextmanager
def repo_write_lock(
    root: Path | str, repo_key: str | int, *, timeout: float | None = None
) -> Iterator[None]:
    """Hold the exclusive write lock of ``repo_key`` for the ``with`` block.

    ``timeout`` (seconds) bounds the wait; ``None`` waits forever. Raises
    ``LockTimeout`` when the wait runs out, ``StorageError`` when the lock file
    cannot be opened.
    """
    path = _lock_path(Path(root), repo_key)
    try:
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot open lock file: {exc.strerror}") from exc
    try:
        if not _acquire(fd, timeout):
            raise LockTimeout(f"write lock of repository {repo_key!r} not obtained in {timeout}s")
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
