"""Typed errors of the git storage layer.

The JSON-RPC methods map these to Kallithea's error strings; nothing here
knows those strings. Every error carries a human-readable message for logs.
"""

from __future__ import annotations


class GitError(Exception):
    """Base of every error raised by ``repohost.git``."""


class InvalidName(GitError, ValueError):
    """A repository, group, gist or file name breaks the naming rules."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StorageError(GitError):
    """A filesystem operation on the repository root failed or was refused."""


class RepoExists(StorageError):
    """Something already exists where a repository (or gist) would go."""


class RepoNotFound(StorageError):
    """No repository (or gist) at that name."""


class GroupExists(StorageError):
    """Something already exists where a repository group would go."""


class GroupNotFound(StorageError):
    """No repository group (directory that is not a repository) at that name."""


class GroupNotEmpty(StorageError):
    """The group still holds repositories, so deleting it would lose data."""


class LockTimeout(StorageError):
    """The repository write lock was not obtained in time."""


class ReadError(GitError):
    """A read from a repository could not be answered."""


class EmptyRepository(ReadError):
    """The repository has no commit reachable from any ref."""


class RevisionNotFound(ReadError):
    """The revision identifier names no commit of the repository."""


class BranchNotFound(ReadError):
    """No branch (``refs/heads/…``) of that name."""


class PathNotFound(ReadError):
    """The path is not a directory of the commit's tree, or is not a valid path."""


class InvalidRange(ReadError):
    """``start`` comes after ``end`` in a changeset listing."""
