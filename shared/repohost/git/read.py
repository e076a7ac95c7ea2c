"""Reading repositories with dulwich (no subprocess): revisions, trees, changesets.

Public API (commit ids are 40-character lowercase hex ``str``):

- ``open_repo(path) -> Repo`` (a dulwich ``Repo``; use it as a context manager)
- ``resolve_revision(repo, rev) -> str``
- ``list_nodes(repo, commit, root_path='') -> list[{"name", "type"}]``
- ``last_changeset(repo) -> dict``
- ``changeset_summary(repo, rev, with_file_list=False) -> dict``
- ``changeset_detail(repo, rev) -> dict``
- ``list_changesets(repo, start=None, end=None, start_date=None, end_date=None,
  branch_name=None, reverse=False, max_revisions=None, with_file_list=False) -> list[dict]``
- ``branches(repo) -> dict[str, str]``, ``tags(repo) -> dict[str, str]``

Decisions (facts §2.2, §2.8, §3.4, §3.7, §5.2; Kallithea 0.7's git backend):

- The revision list is ``git rev-list --all --reverse --date-order`` (refs under
  ``refs/`` plus HEAD), computed with git's own algorithm (a date-ordered
  topological sort, equal dates broken as git breaks them); the tests check it
  commit by commit against git, with and without a commit-graph. A commit's
  ``revision`` is its index in that list. It is cached per repository path and
  refs state, so it is recomputed only after refs change.
- ``resolve_revision``: ``None``, ``''``, ``tip``, ``HEAD``, ``head`` and the int
  ``-1`` name the newest entry; an ASCII digit string shorter than 12
  characters (or a non-negative int) is an index; then a name looked up as
  ``refs/tags/<name>``, ``refs/heads/<name>``, ``refs/remotes/origin/<name>`` in
  that order (git's own precedence: a tag wins over a branch), tags peeled to
  their commit (refs naming no commit are skipped); then a full 40-hex id (any
  case) that must be in the revision list, so unreachable objects stay hidden.
  Short hex prefixes are not resolved (as 0.7). Kallithea's quirks of treating
  an all-zero id as index 0 and negative ints as Python indexes are not copied.
- A repository is empty when no ref reaches a commit (Kallithea 0.7 also calls
  a repository empty when HEAD points to a missing branch; repohost does not).
- Dates are naive ``datetime`` in UTC from the committer time (Kallithea uses
  the server's local time; Lambda runs in UTC). ``author`` is the commit's
  author as ``"Name <email>"``; ``message`` is the full raw message (git's final
  newline included, as 0.7). Text is decoded with the commit's encoding header
  or UTF-8, undecodable bytes replaced; paths are decoded as UTF-8 the same way.
- ``list_nodes``: every directory below ``root_path`` first, then every file,
  in Kallithea's order (a pre-order walk, each directory's entries sorted by
  name). Symbolic links are files (as Kallithea); submodules (gitlinks) are
  left out (Kallithea lists them neither as dir nor as file).
- Changed files are compared with every parent and merged, as 0.7 does: a path
  is ``added``/``changed``/``removed`` if it is so against any parent; renames
  are an add and a remove. A root commit's ``added`` lists its files in
  ``list_nodes`` order. A type change (file ↔ symlink) is ``changed`` (0.7's
  dulwich reported it as both added and removed).
- ``list_changesets`` follows 0.7's ``git log --date-order --reverse
  [--max-count] [--since] [--until] <branch | --all>``: the date filters are
  inclusive bounds on the committer time (naive datetimes read as UTC),
  ``max_revisions`` keeps the newest N, ``start``/``end`` are resolved like any
  revision and, when they are not in the filtered list, mean "from the first"
  / "to the last" (0.7's behaviour).
"""

from __future__ import annotations

import heapq
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.object_store import BaseObjectStore
from dulwich.objects import Commit, parse_tree
from dulwich.repo import Repo

from repohost.git.errors import (
    BranchNotFound,
    EmptyRepository,
    InvalidRange,
    PathNotFound,
    RepoNotFound,
    RevisionNotFound,
)

__all__ = [
    "EMPTY_CHANGESET",
    "branches",
    "changeset_detail",
    "changeset_summary",
    "last_changeset",
    "list_changesets",
    "list_nodes",
    "open_repo",
    "resolve_revision",
    "tags",
]

_COMMIT, _TREE, _TAG = 1, 2, 4
_S_IFMT, _S_IFDIR, _S_IFGITLINK = 0o170000, 0o040000, 0o160000
_TIP_NAMES = frozenset({"", "tip", "HEAD", "head"})
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
_REF_PREFIXES = (b"refs/tags/", b"refs/heads/", b"refs/remotes/origin/")
_HEX_SHA = re.compile(rb"[0-9a-f]{40}")
_MAX_SYMREF_DEPTH = 5  # git's own limit
_CACHE_SIZE = 64

#: ``last_changeset`` of an empty repository (facts §2.2).
EMPTY_CHANGESET: dict[str, Any] = {
    "short_id": "0" * 12,
    "raw_id": "0" * 40,
    "revision": -1,
    "message": "",
    "date": datetime(1970, 1, 1),
    "author": "",
}

RefsState = tuple[tuple[bytes, bytes], ...]


def open_repo(path: Path | str) -> Repo:
    """Open the repository at ``path``; ``RepoNotFound`` if it is not one."""
    try:
        return Repo(os.fspath(path))
    except (NotGitRepository, OSError) as exc:
        raise RepoNotFound(f"no git repository at {path}") from exc


# -- the revision list ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _History:
    shas: list[bytes]  # oldest first: `git rev-list --all --reverse --date-order`
    index: dict[bytes, int]
    times: dict[bytes, int]  # committer time of every commit in shas


_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_cache_lock = threading.Lock()


def _cached(key: tuple[Any, ...], compute: Any) -> Any:
    """Small LRU shared by all repositories of the process (a warm Lambda keeps it)."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = compute()
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _refs_state(repo: Repo) -> RefsState:
    """Every ref (``HEAD`` and ``refs/…``) as sorted ``(name, sha)``, symbolic refs followed.

    Read straight from ``packed-refs`` and the loose ref files: dulwich's
    ``refs.as_dict()`` resolves refs one at a time (10 ms for 1,000 refs), and
    this runs on every request because it is the revision cache's key.
    """
    common = os.fsencode(repo.commondir())
    values: dict[bytes, bytes] = {}
    try:
        with open(os.path.join(common, b"packed-refs"), "rb") as handle:
            packed = handle.read()
    except FileNotFoundError:
        packed = b""
    for line in packed.splitlines():
        if line[:1] not in (b"#", b"^") and b" " in line:
            sha, name = line.split(b" ", 1)
            values[name] = sha
    _read_loose_refs(os.path.join(common, b"refs"), b"refs/", values)
    head = _read_ref_file(os.path.join(os.fsencode(repo.controldir()), b"HEAD"))
    if head is not None:
        values[b"HEAD"] = head
    resolved = ((name, _follow(values, name)) for name in values)
    return tuple(sorted((name, sha) for name, sha in resolved if sha is not None))


def _read_ref_file(path: bytes) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().strip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _read_loose_refs(directory: bytes, prefix: bytes, values: dict[bytes, bytes]) -> None:
    """Loose ref files override packed entries; ``*.lock`` files are writes in progress."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir():
            _read_loose_refs(entry.path, prefix + entry.name + b"/", values)
        elif not entry.name.endswith(b".lock"):
            value = _read_ref_file(entry.path)
            if value:
                values[prefix + entry.name] = value


def _follow(values: dict[bytes, bytes], name: bytes) -> bytes | None:
    """The sha a ref finally names, following ``ref: …`` links; None if dangling or broken."""
    for _ in range(_MAX_SYMREF_DEPTH):
        value = values.get(name)
        if value is None:
            return None
        if not value.startswith(b"ref: "):
            return value if _HEX_SHA.fullmatch(value) else None
        name = value[5:].strip()
    return None


def _commit_links(store: BaseObjectStore, sha: bytes) -> tuple[int, tuple[bytes, ...]] | None:
    """Committer time and parents, read from the raw header without a full parse."""
    try:
        type_num, raw = store.get_raw(sha)
    except KeyError:
        return None
    if type_num != _COMMIT:
        return None
    end = raw.find(b"\ncommitter ")
    parents = tuple(line[7:] for line in raw[:end].split(b"\n") if line.startswith(b"parent "))
    committer = raw[end + 11 : raw.find(b"\n", end + 1)]
    return int(committer.rsplit(b" ", 2)[1]), parents


def _peel(store: BaseObjectStore, sha: bytes) -> tuple[int, bytes] | None:
    """Follow tag objects to what they finally name: ``(type, sha)``, None if missing."""
    while True:
        try:
            type_num, raw = store.get_raw(sha)
        except KeyError:
            return None
        if type_num != _TAG:
            return type_num, sha
        sha = raw[7 : raw.index(b"\n")]  # a tag object starts with "object <sha>"


def _peeled_commit(store: BaseObjectStore, sha: bytes) -> bytes | None:
    peeled = _peel(store, sha)
    return peeled[1] if peeled is not None and peeled[0] == _COMMIT else None


def _date_order(store: BaseObjectStore, tips: list[bytes]) -> tuple[list[bytes], dict]:
    """Commits reachable from ``tips``, newest first, as ``git rev-list --date-order``.

    git (without a commit-graph) walks everything reachable, then runs
    ``sort_in_topological_order`` with a commit-date priority queue whose ties
    go to the entry queued first. The childless commits are queued first, by
    date and then in the order the refs were given; nothing else of git's walk
    order shows in the result, so any traversal may collect the commits.
    """
    unique = list(dict.fromkeys(tips))
    links: dict[bytes, tuple[int, tuple[bytes, ...]]] = {}
    pending = list(unique)
    while pending:
        sha = pending.pop()
        if sha in links:
            continue
        found = _commit_links(store, sha)
        if found is None:  # missing, e.g. beyond a shallow clone's boundary
            continue
        links[sha] = found
        pending.extend(parent for parent in found[1] if parent not in links)
    return _topo_sort([sha for sha in unique if sha in links], links), links


def _topo_sort(tips: list[bytes], links: dict) -> list[bytes]:
    """git's ``sort_in_topological_order`` by commit date: children before parents."""
    indegree = dict.fromkeys(links, 1)
    for _, parents in links.values():
        for parent in parents:
            if parent in indegree:
                indegree[parent] += 1
    queue = [(-links[sha][0], seq, sha) for seq, sha in enumerate(tips) if indegree[sha] == 1]
    heapq.heapify(queue)
    counter = len(tips)
    ordered = []
    while queue:
        sha = heapq.heappop(queue)[2]
        for parent in links[sha][1]:
            degree = indegree.get(parent, 0)
            if not degree:
                continue
            indegree[parent] = degree - 1
            if degree - 1 == 1:
                heapq.heappush(queue, (-links[parent][0], counter, parent))
                counter += 1
        indegree[sha] = 0
        ordered.append(sha)
    return ordered


def _all_tips(store: BaseObjectStore, state: RefsState) -> list[bytes]:
    """``--all``: every ref under ``refs/`` in name order, then HEAD, peeled to commits."""
    refs = dict(state)
    names = [name for name, _ in state if name.startswith(b"refs/")]
    if b"HEAD" in refs:
        names.append(b"HEAD")
    peeled = (_peeled_commit(store, refs[name]) for name in names)
    return [sha for sha in peeled if sha is not None]


def _history(repo: Repo, state: RefsState) -> _History:
    def compute() -> _History:
        newest_first, links = _date_order(repo.object_store, _all_tips(repo.object_store, state))
        shas = newest_first[::-1]
        times = {sha: links[sha][0] for sha in shas}
        return _History(shas, {sha: i for i, sha in enumerate(shas)}, times)

    return _cached(("all", repo.controldir(), state), compute)


def _branch_order(repo: Repo, state: RefsState, tip: bytes) -> list[bytes]:
    """``git log --date-order <branch>`` (newest first), cached like the full list."""

    def compute() -> list[bytes]:
        return _date_order(repo.object_store, [tip])[0]

    return _cached(("branch", repo.controldir(), state, tip), compute)


def _resolve(repo: Repo, state: RefsState, history: _History, rev: str | int | None) -> bytes:
    if not history.shas:
        raise EmptyRepository("there are no changesets yet")
    if isinstance(rev, bool) or not isinstance(rev, int | str | None):
        raise RevisionNotFound(f"revision {rev!r} not recognized")
    if rev is None or rev == -1 or rev in _TIP_NAMES:
        return history.shas[-1]
    if isinstance(rev, int) or (rev.isascii() and rev.isdigit() and len(rev) < 12):
        index = int(rev)
        if 0 <= index < len(history.shas):
            return history.shas[index]
        raise RevisionNotFound(f"revision {rev} does not exist")
    refs = dict(state)
    name = rev.encode("utf-8", "replace")
    for prefix in _REF_PREFIXES:
        if prefix + name in refs:
            commit = _peeled_commit(repo.object_store, refs[prefix + name])
            if commit is not None:
                return commit
    if _FULL_SHA.fullmatch(rev):
        sha = rev.lower().encode("ascii")
        if sha in history.index:
            return sha
    raise RevisionNotFound(f"revision {rev!r} does not exist")


def resolve_revision(repo: Repo, rev: str | int | None) -> str:
    """The commit id ``rev`` names (see the module docstring for the rules).

    Raises ``EmptyRepository`` or ``RevisionNotFound``.
    """
    state = _refs_state(repo)
    return _resolve(repo, state, _history(repo, state), rev).decode("ascii")


# -- trees ---------------------------------------------------------------------------


def _tree_entries(store: BaseObjectStore, sha: bytes) -> list[tuple[bytes, int, bytes]]:
    type_num, raw = store.get_raw(sha)
    if type_num != _TREE:
        raise PathNotFound("not a directory")
    return parse_tree(raw, store.object_format.oid_length)


def _commit_tree(store: BaseObjectStore, commit: bytes) -> bytes:
    try:
        type_num, raw = store.get_raw(commit)
    except KeyError:
        type_num, raw = 0, b""
    if type_num != _COMMIT:
        raise RevisionNotFound(f"{commit.decode('ascii')} is not a commit")
    return raw[5 : raw.index(b"\n")]  # a commit starts with "tree <sha>"


def _split_path(root_path: str | None) -> list[bytes]:
    """``'/docs/api/'`` → ``[b'docs', b'api']``; anything that could step outside → PathNotFound."""
    path = (root_path or "").lstrip("/").rstrip("/")
    if not path:
        return []
    parts = path.split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
        raise PathNotFound(f"invalid path {root_path!r}")
    try:
        return [part.encode("utf-8") for part in parts]
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes
        raise PathNotFound(f"invalid path {root_path!r}") from exc


def _walk(store: BaseObjectStore, tree: bytes, prefix: str) -> tuple[list[str], list[str]]:
    """All directories and files below ``tree`` in Kallithea's pre-order (see ``list_nodes``)."""
    dirs: list[str] = []
    files: list[str] = []
    pending = [(prefix, tree)]
    while pending:
        base, sha = pending.pop()
        subdirs = []
        here = []
        for name, mode, entry_sha in _tree_entries(store, sha):
            path = base + name.decode("utf-8", "replace")
            kind = mode & _S_IFMT
            if kind == _S_IFDIR:
                subdirs.append((path, entry_sha))
            elif kind != _S_IFGITLINK:
                here.append(path)
        subdirs.sort()
        here.sort()
        dirs.extend(path for path, _ in subdirs)
        files.extend(here)
        pending.extend((path + "/", entry_sha) for path, entry_sha in reversed(subdirs))
    return dirs, files


def list_nodes(repo: Repo, commit: str, root_path: str | None = "") -> list[dict[str, str]]:
    """Every dir then every file below ``root_path`` of ``commit``, full paths from the root.

    ``root_path`` ``''`` or ``'/'`` is the root; leading and trailing ``/`` are
    ignored. A path that is missing, names a file, or has ``.``/``..``/empty
    segments, a backslash or NUL raises ``PathNotFound``.
    """
    if not isinstance(commit, str) or _FULL_SHA.fullmatch(commit) is None:
        raise RevisionNotFound(f"{commit!r} is not a full commit id")
    store = repo.object_store
    tree = _commit_tree(store, commit.lower().encode("ascii"))
    parts = _split_path(root_path)
    for part in parts:
        entry = next((e for e in _tree_entries(store, tree) if e[0] == part), None)
        if entry is None or entry[1] & _S_IFMT != _S_IFDIR:
            raise PathNotFound(f"no directory {root_path!r}")
        tree = entry[2]
    prefix = b"/".join(parts).decode("utf-8", "replace") + "/" if parts else ""
    dirs, files = _walk(store, tree, prefix)
    return [{"name": path, "type": "dir"} for path in dirs] + [
        {"name": path, "type": "file"} for path in files
    ]


# -- changesets ------------------------------------------------------------------------


def _decode(data: bytes, encoding: bytes | None) -> str:
    try:
        return data.decode(encoding.decode("ascii") if encoding else "utf-8", "replace")
    except (LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace")


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


def _file_changes(store: BaseObjectStore, commit: Commit) -> dict[str, list[str]]:
    if not commit.parents:
        return {"added": _walk(store, commit.tree, "")[1], "changed": [], "removed": []}
    added: set[str] = set()
    changed: set[str] = set()
    removed: set[str] = set()
    for parent in commit.parents:
        parent_tree = _commit_tree(store, parent)
        for change in tree_changes(store, parent_tree, commit.tree, change_type_same=True):
            old = change.old.path if change.old is not None else None
            new = change.new.path if change.new is not None else None
            if old is not None and new is not None:
                changed.add(new.decode("utf-8", "replace"))
            elif new is not None:
                added.add(new.decode("utf-8", "replace"))
            else:
                removed.add(old.decode("utf-8", "replace"))
    return {"added": sorted(added), "changed": sorted(changed), "removed": sorted(removed)}


def _load_commit(store: BaseObjectStore, sha: bytes) -> Commit:
    commit = store[sha]
    if not isinstance(commit, Commit):
        raise RevisionNotFound(f"{sha.decode('ascii')} is not a commit")
    return commit


def _summary(
    store: BaseObjectStore, sha: bytes, revision: int, with_file_list: bool
) -> dict[str, Any]:
    commit = _load_commit(store, sha)
    raw_id = sha.decode("ascii")
    item: dict[str, Any] = {
        "short_id": raw_id[:12],
        "raw_id": raw_id,
        "revision": revision,
        "message": _decode(commit.message, commit.encoding),
        "date": _utc(commit.commit_time),
        "author": _decode(commit.author, commit.encoding),
    }
    if with_file_list:
        item.update(_file_changes(store, commit))
    return item


def _split_identity(identity: str) -> dict[str, str]:
    """``'Name <email>'`` → ``{"name": "Name", "email": "email"}``; no ``<…>`` → all name."""
    match = re.fullmatch(r"(.*?)\s*<([^<>]*)>\s*", identity, re.DOTALL)
    if match is None:
        return {"name": identity.strip(), "email": ""}
    return {"name": match[1].strip(), "email": match[2].strip()}


def last_changeset(repo: Repo) -> dict[str, Any]:
    """Facts §2.2's ``last_changeset`` of the newest commit; ``EMPTY_CHANGESET`` when empty."""
    history = _history(repo, _refs_state(repo))
    if not history.shas:
        return dict(EMPTY_CHANGESET)
    return _summary(repo.object_store, history.shas[-1], len(history.shas) - 1, False)


def changeset_summary(
    repo: Repo, rev: str | int | None, with_file_list: bool = False
) -> dict[str, Any]:
    """A ``get_changesets`` item (facts §2.8) for revision ``rev``."""
    state = _refs_state(repo)
    history = _history(repo, state)
    sha = _resolve(repo, state, history, rev)
    return _summary(repo.object_store, sha, history.index[sha], with_file_list)


def changeset_detail(repo: Repo, rev: str | int | None) -> dict[str, Any]:
    """A ``get_changeset`` result (facts §2.8, without ``reviews``) for revision ``rev``."""
    item = changeset_summary(repo, rev, with_file_list=True)
    return {
        "raw_id": item["raw_id"],
        "short_id": item["short_id"],
        "revision": item["revision"],
        "date": item["date"],
        "message": item["message"],
        "author": _split_identity(item["author"]),
        "added": item["added"],
        "changed": item["changed"],
        "removed": item["removed"],
    }


def _timestamp(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp() if value.tzinfo is None else value.timestamp()


def list_changesets(
    repo: Repo,
    start: str | int | None = None,
    end: str | int | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    branch_name: str | None = None,
    reverse: bool = False,
    max_revisions: int | None = None,
    with_file_list: bool = False,
) -> list[dict[str, Any]]:
    """``get_changesets`` items, oldest first (newest first with ``reverse``).

    Raises ``BranchNotFound`` (checked first, as 0.7), ``EmptyRepository``,
    ``RevisionNotFound`` for a bad ``start``/``end``, ``InvalidRange`` when
    ``start`` comes after ``end``.
    """
    state = _refs_state(repo)
    tip = None
    if branch_name:
        tip = dict(state).get(b"refs/heads/" + branch_name.encode("utf-8", "replace"))
        if tip is None:
            raise BranchNotFound(f"branch {branch_name!r} not found")
    history = _history(repo, state)
    if not history.shas:
        raise EmptyRepository("there are no changesets yet")
    order = _branch_order(repo, state, tip) if tip is not None else history.shas[::-1]
    if start_date is not None or end_date is not None:
        low = _timestamp(start_date) if start_date is not None else float("-inf")
        high = _timestamp(end_date) if end_date is not None else float("inf")
        order = [sha for sha in order if low <= history.times[sha] <= high]
    if max_revisions and max_revisions > 0:
        order = order[:max_revisions]
    order = order[::-1]
    start_pos = _position(order, _resolve(repo, state, history, start), 0) if start else 0
    end_pos = len(order)
    if end is not None:
        end_pos = _position(order, _resolve(repo, state, history, end), len(order))
        if start is not None and start_pos > end_pos:
            raise InvalidRange("start cannot be after end")
    selected = order[start_pos : end_pos + 1]
    if reverse:
        selected.reverse()
    store = repo.object_store
    return [_summary(store, sha, history.index[sha], with_file_list) for sha in selected]


def _position(order: list[bytes], sha: bytes, default: int) -> int:
    try:
        return order.index(sha)
    except ValueError:
        return default


# -- refs --------------------------------------------------------------------------------


def branches(repo: Repo) -> dict[str, str]:
    """``refs/heads/*`` as name → commit id, sorted by name (as Kallithea)."""
    found = {
        name[len(b"refs/heads/") :].decode("utf-8", "replace"): sha.decode("ascii")
        for name, sha in _refs_state(repo)
        if name.startswith(b"refs/heads/")
    }
    return dict(sorted(found.items()))


def tags(repo: Repo) -> dict[str, str]:
    """``refs/tags/*`` as name → id of the object finally tagged, reverse-sorted (as Kallithea)."""
    store = repo.object_store
    found = {}
    for name, sha in _refs_state(repo):
        if name.startswith(b"refs/tags/"):
            peeled = _peel(store, sha)
            if peeled is not None:
                found[name[len(b"refs/tags/") :].decode("utf-8", "replace")] = peeled[1].decode()
    return dict(sorted(found.items(), reverse=True))
