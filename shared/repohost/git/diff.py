"""A changeset's diff against its first parent, as git prints it (libgit2 through pygit2).

Kallithea's git backend serves ``git diff -U<n> --full-index --binary -p -M
--abbrev=40 [-w] <first parent> <rev>`` (a root commit against the empty tree;
facts §5.5). dulwich's pure-Python diff is 2–10× slower than git on large
files; libgit2 runs git's own xdiff in C and, with hash verification off (see
``repohost.git.blobs``), is about as fast as ``git show``.

libgit2's patch is adjusted file by file so that it reads like git's:

- index lines carry full 40-hex ids (libgit2 abbreviates them);
- a ``---``/``+++`` name that contains a space ends with a tab, as git writes
  it so that GNU ``patch`` can find the end of the name;
- a file with no hunk (a new empty file, a mode change only) gets no
  ``---``/``+++`` lines, as in git.

What can still differ from git: the similarity percentage of a rename
(libgit2 scores similarity its own way, so it may also pair ambiguous
renames differently) and the deflate bytes of ``GIT binary patch`` blocks.
Either way ``git apply`` rebuilds the same tree; the tests check that for
every commit of a repository with renames, binary files, mode changes,
symlinks, deletions and files without a final newline.
"""

from __future__ import annotations

import pygit2
from pygit2.enums import DiffFind, DiffOption

from repohost.git.errors import RevisionNotFound

__all__ = ["commit_diff"]

_HUNK_STARTS = (b"\n@@ ", b"\nGIT binary patch\n", b"\nBinary files ")


def commit_diff(
    repo: pygit2.Repository, commit_id: str, *, context: int = 3, ignore_whitespace: bool = False
) -> bytes:
    """The git-style diff of ``commit_id`` against its first parent (``-U<context>``, ``-w``)."""
    try:
        commit = repo[commit_id]
    except (KeyError, ValueError) as exc:
        raise RevisionNotFound(f"{commit_id} is not in the repository") from exc
    if not isinstance(commit, pygit2.Commit):
        raise RevisionNotFound(f"{commit_id} is not a commit")
    flags = DiffOption.SHOW_BINARY
    if ignore_whitespace:
        flags |= DiffOption.IGNORE_WHITESPACE
    if commit.parents:
        diff = commit.parents[0].tree.diff_to_tree(commit.tree, flags=flags, context_lines=context)
    else:
        diff = commit.tree.diff_to_tree(flags=flags, context_lines=context, swap=True)
    diff.find_similar(flags=DiffFind.FIND_RENAMES)
    return b"".join(_as_git(patch) for patch in diff if patch is not None)


def _as_git(patch: pygit2.Patch) -> bytes:
    """One file's patch with git's header conventions (see the module docstring)."""
    data = patch.data
    starts = [at for at in (data.find(mark) for mark in _HUNK_STARTS) if at >= 0]
    split = min(starts) + 1 if starts else len(data)
    delta = patch.delta
    lines = []
    for line in data[:split].splitlines(keepends=True):
        if line.startswith(b"index "):
            _ids, _, mode = line[6:].rstrip(b"\n").partition(b" ")
            line = b"index %s..%s%s\n" % (
                str(delta.old_file.id).encode(),
                str(delta.new_file.id).encode(),
                b" " + mode if mode else b"",
            )
        elif line.startswith((b"--- ", b"+++ ")):
            if not starts:
                continue
            if b" " in line[4:]:
                line = line.rstrip(b"\n") + b"\t\n"
        lines.append(line)
    lines.append(data[split:])
    return b"".join(lines)
