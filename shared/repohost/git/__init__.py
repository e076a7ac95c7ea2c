"""Git storage: bare repositories under one root directory, read and written with dulwich.

Pure storage: no database, no JSON-RPC. Modules:

- ``names``    validation of repository / group names (``validate_repo_name`` …)
- ``storage``  ``RepoStore(root)``: create, fork, rename, delete repositories and
               groups atomically; rescan; gists
- ``locks``    ``repo_write_lock(root, key)``: per-repository write lock (flock)
- ``read``     revisions, trees and changesets (imports dulwich)
- ``errors``   the typed errors all of them raise

Importing this package, ``names``, ``storage``, ``locks`` or ``errors`` does not
import dulwich; only ``repohost.git.read`` does (and ``storage`` when it writes).
"""

from repohost.git.errors import (
    BranchNotFound,
    EmptyRepository,
    GitError,
    GroupExists,
    GroupNotEmpty,
    GroupNotFound,
    InvalidName,
    InvalidRange,
    LockTimeout,
    PathNotFound,
    ReadError,
    RepoExists,
    RepoNotFound,
    RevisionNotFound,
    StorageError,
)
from repohost.git.locks import repo_write_lock
from repohost.git.names import (
    casefold_key,
    split_name,
    validate_group_name,
    validate_repo_name,
)
from repohost.git.storage import RepoStore

__all__ = [
    "BranchNotFound",
    "EmptyRepository",
    "GitError",
    "GroupExists",
    "GroupNotEmpty",
    "GroupNotFound",
    "InvalidName",
    "InvalidRange",
    "LockTimeout",
    "PathNotFound",
    "ReadError",
    "RepoExists",
    "RepoNotFound",
    "RepoStore",
    "RevisionNotFound",
    "StorageError",
    "casefold_key",
    "repo_write_lock",
    "split_name",
    "validate_group_name",
    "validate_repo_name",
]
