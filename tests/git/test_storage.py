"""``RepoStore`` and ``repo_write_lock`` on a real directory tree, checked with the git CLI."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from repohost.git import read, storage
from repohost.git.errors import (
    GroupExists,
    GroupNotEmpty,
    GroupNotFound,
    InvalidName,
    LockTimeout,
    RepoExists,
    RepoNotFound,
    StorageError,
)
from repohost.git.locks import repo_write_lock
from repohost.git.storage import RepoStore
from tests.git.conftest import SampleRepo, git


@pytest.fixture
def store(tmp_path: Path) -> RepoStore:
    root = tmp_path / "root"
    root.mkdir()
    return RepoStore(root)


def is_bare(path: Path) -> bool:
    return git(path, "rev-parse", "--is-bare-repository").strip() == "true"


def refs_of(path: Path, *patterns: str) -> str:
    return git(path, "for-each-ref", "--format=%(objectname) %(refname)", *patterns)


def staging_left(store: RepoStore) -> list[str]:
    tmp = store.root / storage.TMP_DIR
    return sorted(os.listdir(tmp)) if tmp.exists() else []


def trash_left(store: RepoStore) -> list[str]:
    trash = store.root / storage.TRASH_DIR
    return sorted(os.listdir(trash)) if trash.exists() else []


def adopt(store: RepoStore, source: Path, name: str) -> Path:
    """Put a copy of a fixture repository into the store under ``name``."""
    target = store.root / name
    shutil.copytree(source, target, symlinks=True)
    return target


def failing(error: int) -> Callable[..., None]:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail


# -- paths ------------------------------------------------------------------------------


def test_path_for_maps_names_to_directories(store: RepoStore) -> None:
    assert store.path_for("repo") == store.root / "repo"
    assert store.path_for("g/sub/repo") == store.root / "g" / "sub" / "repo"
    assert store.group_path("g/sub") == store.root / "g" / "sub"
    assert store.gist_path("abc123") == store.root / ".rc_gist_store" / "abc123"


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../b", "/abs", ".trash/x", ".tmp/x", ".rc_gist_store/1", ".locks"]
)
def test_path_for_refuses_escapes_and_hidden_areas(store: RepoStore, name: str) -> None:
    with pytest.raises(InvalidName):
        store.path_for(name)
    with pytest.raises(InvalidName):
        store.group_path(name)


@pytest.mark.parametrize("access_id", ["", "../x", "a/b", ".x", "-x", "a" * 101])
def test_gist_path_refuses_bad_access_ids(store: RepoStore, access_id: str) -> None:
    with pytest.raises(InvalidName):
        store.gist_path(access_id)


def test_a_symlinked_group_is_refused_even_pointing_inside(
    store: RepoStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "real").mkdir()
    (store.root / "out").symlink_to(outside)
    (store.root / "alias").symlink_to(store.root / "real")
    for name in ("out/repo", "alias/repo", "out", "alias"):
        with pytest.raises(StorageError, match="symbolic link"):
            store.path_for(name)
    with pytest.raises(StorageError):
        store.create_repo("out/repo")
    assert not (outside / "repo").exists()


def test_a_symlinked_gist_store_is_refused(store: RepoStore, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (store.root / ".rc_gist_store").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StorageError):
        store.create_gist("abc", {"a.txt": "x"}, "added file: a.txt", "A <a@example.com>")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_root_itself_may_be_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "mount").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "mount")
    store = RepoStore(tmp_path / "link")
    path = store.create_repo("repo")
    assert path == tmp_path / "mount" / "repo"
    assert is_bare(path)


# -- create ----------------------------------------------------------------------------------


def test_create_repo_makes_an_empty_bare_repository(store: RepoStore) -> None:
    path = store.create_repo("repo", description="My repository")
    assert path == store.root / "repo"
    assert is_bare(path)
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/master"
    assert (path / "description").read_text() == "My repository"
    git(path, "fsck", "--strict")
    with read.open_repo(path) as repo:
        assert read.last_changeset(repo) == read.EMPTY_CHANGESET
    assert store.repo_exists("repo")
    assert staging_left(store) == []


def test_a_created_repository_accepts_a_push(store: RepoStore, sample: SampleRepo) -> None:
    path = store.create_repo("repo")
    git(sample.path, "push", "-q", str(path), "master")
    assert git(path, "rev-parse", "master").strip() == sample.commits["c5"]


def test_create_repo_inside_a_group(store: RepoStore) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    assert is_bare(store.create_repo("g/sub/repo"))


def test_create_repo_refuses_an_existing_name(store: RepoStore) -> None:
    store.create_repo("repo")
    store.create_group("group")
    (store.root / "file").write_text("x")
    for name in ("repo", "group", "file"):
        with pytest.raises(RepoExists):
            store.create_repo(name)
    assert (store.root / "file").read_text() == "x"
    assert staging_left(store) == []


def test_create_repo_needs_an_existing_parent_group(store: RepoStore) -> None:
    with pytest.raises(GroupNotFound):
        store.create_repo("missing/repo")
    store.create_repo("repo")
    with pytest.raises(GroupNotFound):
        store.create_repo("repo/inner")
    assert not (store.root / "missing").exists()
    assert not (store.root / "repo" / "inner").exists()


def test_create_repo_failing_at_the_final_rename_leaves_nothing(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_rename_noreplace", failing(errno.EIO))
    with pytest.raises(StorageError, match="Input/output error"):
        store.create_repo("repo")
    assert not (store.root / "repo").exists()
    assert staging_left(store) == []


def test_create_repo_on_a_full_disk_leaves_nothing(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_write_file", failing(errno.ENOSPC))
    with pytest.raises(StorageError, match="No space left"):
        store.create_repo("repo", description="x")
    assert not (store.root / "repo").exists()
    assert staging_left(store) == []


def test_create_repo_failing_inside_dulwich_leaves_nothing(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dulwich.repo import Repo

    monkeypatch.setattr(Repo, "init_bare", failing(errno.ENOSPC))
    with pytest.raises(StorageError):
        store.create_repo("repo")
    assert not (store.root / "repo").exists()
    assert staging_left(store) == []


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "fallback"])
def test_a_racing_empty_directory_is_never_replaced(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    """rename(2) would silently replace an empty directory created meanwhile."""
    if not noreplace:
        monkeypatch.setattr(storage, "_renameat2", None)
    elif storage._renameat2 is None:
        pytest.skip("no renameat2 in this C library")
    real_init = storage._init_bare

    def init_then_race(path: Path, description: str) -> None:
        real_init(path, description)
        (store.root / "repo").mkdir()  # someone else's group appears now

    monkeypatch.setattr(storage, "_init_bare", init_then_race)
    with pytest.raises(RepoExists):
        store.create_repo("repo")
    assert list((store.root / "repo").iterdir()) == []
    assert staging_left(store) == []


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "fallback"])
def test_rename_noreplace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool) -> None:
    if not noreplace:
        monkeypatch.setattr(storage, "_renameat2", None)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError):
        storage._rename_noreplace(tmp_path / "src", tmp_path / "empty")
    storage._rename_noreplace(tmp_path / "src", tmp_path / "dst")
    assert (tmp_path / "dst" / "f").read_text() == "data"
    assert not (tmp_path / "src").exists()


# -- fork ------------------------------------------------------------------------------------


def test_clone_local_copies_branches_tags_and_head(store: RepoStore, sample: SampleRepo) -> None:
    source = adopt(store, sample.path, "source")
    store.create_group("forks")
    fork = store.clone_local("source", "forks/copy", description="a fork")
    assert is_bare(fork)
    assert refs_of(fork) == refs_of(source, "refs/heads", "refs/tags")
    assert "refs/remotes/" not in refs_of(fork)
    assert git(fork, "symbolic-ref", "HEAD") == git(source, "symbolic-ref", "HEAD")
    assert (fork / "description").read_text() == "a fork"
    git(fork, "fsck", "--strict", "--no-dangling")
    assert staging_left(store) == []

    git(fork, "update-ref", "refs/heads/master", sample.commits["c1"])
    assert git(source, "rev-parse", "master").strip() == sample.commits["c5"]


def test_clone_local_of_a_packed_repository(store: RepoStore, sample_packed: SampleRepo) -> None:
    source = adopt(store, sample_packed.path, "packed")
    fork = store.clone_local("packed", "copy")
    assert refs_of(fork) == refs_of(source, "refs/heads", "refs/tags")
    git(fork, "fsck", "--strict")


def test_clone_local_refusals(store: RepoStore, sample: SampleRepo) -> None:
    adopt(store, sample.path, "source")
    store.create_repo("taken")
    with pytest.raises(RepoNotFound):
        store.clone_local("missing", "copy")
    with pytest.raises(RepoExists):
        store.clone_local("source", "taken")
    with pytest.raises(GroupNotFound):
        store.clone_local("source", "nogroup/copy")
    assert staging_left(store) == []


def test_clone_local_on_a_full_disk_leaves_nothing(
    store: RepoStore, sample: SampleRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = adopt(store, sample.path, "source")
    before = refs_of(source)
    monkeypatch.setattr(storage.shutil, "copytree", failing(errno.ENOSPC))
    with pytest.raises(StorageError, match="No space left"):
        store.clone_local("source", "copy")
    assert not (store.root / "copy").exists()
    assert staging_left(store) == []
    assert refs_of(source) == before


# -- rename ----------------------------------------------------------------------------------


def test_rename_repo_moves_it_between_groups(store: RepoStore, sample: SampleRepo) -> None:
    adopt(store, sample.path, "repo")
    store.create_group("g")
    path = store.rename_repo("repo", "g/renamed")
    assert path == store.root / "g" / "renamed"
    assert not (store.root / "repo").exists()
    assert git(path, "rev-parse", "master").strip() == sample.commits["c5"]


def test_rename_repo_refusals(store: RepoStore) -> None:
    store.create_repo("repo")
    store.create_repo("other")
    store.create_group("group")
    with pytest.raises(RepoNotFound):
        store.rename_repo("missing", "x")
    with pytest.raises(RepoNotFound):
        store.rename_repo("group", "x")
    with pytest.raises(RepoExists):
        store.rename_repo("repo", "other")
    with pytest.raises(RepoExists):
        store.rename_repo("repo", "group")
    with pytest.raises(GroupNotFound):
        store.rename_repo("repo", "nogroup/repo")
    with pytest.raises(GroupNotFound):
        store.rename_repo("repo", "repo/inside")
    assert is_bare(store.root / "repo") and is_bare(store.root / "other")
    assert list((store.root / "group").iterdir()) == []


def test_rename_repo_failing_leaves_the_repository_in_place(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_repo("repo")
    monkeypatch.setattr(storage, "_rename_noreplace", failing(errno.EIO))
    with pytest.raises(StorageError):
        store.rename_repo("repo", "new")
    assert is_bare(store.root / "repo")
    assert not (store.root / "new").exists()


# -- delete ----------------------------------------------------------------------------------


def test_delete_repo_removes_it_through_the_trash(store: RepoStore) -> None:
    store.create_group("g")
    store.create_repo("g/repo")
    trash = store.delete_repo("g/repo")
    assert trash.parent == store.root / ".trash"
    assert trash.name.endswith("__repo")
    assert not trash.exists()
    assert not (store.root / "g" / "repo").exists()
    assert trash_left(store) == []
    assert (store.root / "g").is_dir()


def test_delete_repo_refusals(store: RepoStore) -> None:
    store.create_group("group")
    with pytest.raises(RepoNotFound):
        store.delete_repo("missing")
    with pytest.raises(RepoNotFound):
        store.delete_repo("group")
    assert (store.root / "group").is_dir()


def test_a_crash_after_the_move_leaves_only_trash(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_repo("repo")
    monkeypatch.setattr(storage, "_remove_tree", lambda _path: None)
    trash = store.delete_repo("repo")
    assert not (store.root / "repo").exists()
    assert is_bare(trash)
    assert list(store.iter_repositories()) == []
    monkeypatch.undo()
    assert store.purge_trash() == 1
    assert trash_left(store) == []


def test_a_failing_removal_is_reported_not_raised(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_repo("repo")
    calls = []

    def rmtree(path: Path, onexc: Callable[..., None]) -> None:
        calls.append(path)
        onexc(os.rmdir, os.fspath(path), OSError(errno.EBUSY, "busy"))

    monkeypatch.setattr(storage.shutil, "rmtree", rmtree)
    trash = store.delete_repo("repo")
    assert calls == [trash]
    assert not (store.root / "repo").exists()


def test_delete_repo_failing_to_move_keeps_the_repository(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_repo("repo")
    monkeypatch.setattr(storage, "_rename_noreplace", failing(errno.EIO))
    with pytest.raises(StorageError):
        store.delete_repo("repo")
    assert is_bare(store.root / "repo")


def test_trash_then_restore_a_repository(store: RepoStore, sample: SampleRepo) -> None:
    adopt(store, sample.path, "repo")
    before = refs_of(store.root / "repo")
    trash = store.trash_repo("repo")
    assert trash.parent == store.root / ".trash" and is_bare(trash)
    assert not store.repo_exists("repo")
    assert store.restore_repo(trash, "repo") == store.root / "repo"
    assert refs_of(store.root / "repo") == before
    assert trash_left(store) == []


def test_trash_then_remove_a_repository(store: RepoStore) -> None:
    store.create_repo("repo")
    trash = store.trash_repo("repo")
    store.remove_trashed(trash)
    assert trash_left(store) == [] and not (store.root / "repo").exists()
    store.remove_trashed(trash)  # already gone: nothing to do
    with pytest.raises(StorageError):
        store.restore_repo(trash, "repo")


def test_restore_never_replaces_what_took_the_name(store: RepoStore) -> None:
    store.create_repo("repo")
    trash = store.trash_repo("repo")
    store.create_repo("repo", description="newer")
    with pytest.raises(RepoExists):
        store.restore_repo(trash, "repo")
    assert (store.root / "repo" / "description").read_text() == "newer"
    assert is_bare(trash)


def test_trash_then_restore_a_group_and_a_gist(store: RepoStore) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    trash = store.trash_group("g")
    assert not (store.root / "g").exists()
    store.restore_group(trash, "g")
    assert store.group_exists("g/sub")
    store.create_repo("g/repo")
    with pytest.raises(GroupNotEmpty):
        store.trash_group("g")

    commit = store.create_gist("42", {"a.txt": "x"}, "added file: a.txt", "A <a@x>")
    trash = store.trash_gist("42")
    assert not store.gist_path("42").exists()
    store.restore_gist(trash, "42")
    assert git(store.gist_path("42"), "rev-parse", "HEAD").strip() == commit
    assert trash_left(store) == []


def test_trash_operations_refuse_paths_outside_the_trash(store: RepoStore, tmp_path: Path) -> None:
    store.create_repo("repo")
    (store.root / ".trash").mkdir()
    (store.root / ".trash" / "file").write_text("x")
    (store.root / ".trash" / "link").symlink_to(store.root / "repo")
    for path in (
        store.root / "repo",
        store.root,
        tmp_path,
        store.root / ".trash",
        store.root / ".trash" / "..",
        store.root / ".trash" / "link",
        store.root / ".trash" / "file",
        store.root / ".trash" / "x" / "..",
    ):
        with pytest.raises(StorageError):
            store.remove_trashed(path)
        with pytest.raises(StorageError):
            store.restore_repo(path, "restored")
    assert is_bare(store.root / "repo")
    assert not (store.root / "restored").exists()


def test_purge_trash_keeps_young_staging_directories(store: RepoStore) -> None:
    (store.root / ".trash" / "old__repo" / "objects").mkdir(parents=True)
    (store.root / ".tmp" / "stale").mkdir(parents=True)
    (store.root / ".tmp" / "fresh").mkdir()
    an_hour_ago = time.time() - 7200
    os.utime(store.root / ".tmp" / "stale", (an_hour_ago, an_hour_ago))
    assert store.purge_trash() == 2
    assert trash_left(store) == []
    assert staging_left(store) == ["fresh"]


# -- groups ----------------------------------------------------------------------------------


def test_groups_are_created_one_level_at_a_time(store: RepoStore) -> None:
    assert store.create_group("g") == store.root / "g"
    assert store.create_group("g/sub").is_dir()
    assert store.group_exists("g/sub") and not store.repo_exists("g/sub")
    with pytest.raises(GroupNotFound):
        store.create_group("missing/sub")
    with pytest.raises(GroupExists):
        store.create_group("g")
    store.create_repo("repo")
    with pytest.raises(GroupExists):
        store.create_group("repo")
    with pytest.raises(GroupNotFound):
        store.create_group("repo/sub")
    assert not store.group_exists("repo")


def test_rename_group_moves_the_whole_tree(store: RepoStore) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    store.create_repo("g/a")
    store.create_repo("g/sub/b")
    store.create_group("other")
    assert store.rename_group("g", "other/moved") == store.root / "other" / "moved"
    assert list(store.iter_repositories()) == ["other/moved/a", "other/moved/sub/b"]
    assert is_bare(store.path_for("other/moved/sub/b"))


def test_rename_group_refusals(store: RepoStore) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    store.create_group("taken")
    store.create_repo("repo")
    with pytest.raises(StorageError, match="into itself"):
        store.rename_group("g", "g/sub/g")
    with pytest.raises(StorageError, match="into itself"):
        store.rename_group("g", "g")
    with pytest.raises(GroupExists):
        store.rename_group("g", "taken")
    with pytest.raises(GroupExists):
        store.rename_group("g", "repo")
    with pytest.raises(GroupNotFound):
        store.rename_group("repo", "x")
    with pytest.raises(GroupNotFound):
        store.rename_group("missing", "x")
    with pytest.raises(GroupNotFound):
        store.rename_group("g", "missing/g")
    assert (store.root / "g" / "sub").is_dir()


def test_delete_group_removes_empty_subgroups(store: RepoStore) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    store.create_group("g/sub/deeper")
    trash = store.delete_group("g")
    assert not (store.root / "g").exists()
    assert not trash.exists()
    with pytest.raises(GroupNotFound):
        store.delete_group("g")


@pytest.mark.parametrize("inside", ["g/sub/repo", "g/.hidden", "g/rm__20240101_120000_000000__x"])
def test_delete_group_refuses_while_any_repository_is_below(store: RepoStore, inside: str) -> None:
    store.create_group("g")
    store.create_group("g/sub")
    git(store.root, "init", "-q", "--bare", inside)
    with pytest.raises(GroupNotEmpty):
        store.delete_group("g")
    assert is_bare(store.root / inside)
    assert trash_left(store) == []


def test_delete_group_refuses_a_repository(store: RepoStore) -> None:
    store.create_repo("repo")
    with pytest.raises(GroupNotFound):
        store.delete_group("repo")
    assert is_bare(store.root / "repo")


# -- rescan ----------------------------------------------------------------------------------


def test_iter_repositories_walks_like_kallithea(store: RepoStore, tmp_path: Path) -> None:
    root = store.root

    def bare(name: str) -> Path:
        git(root, "init", "-q", "--bare", name)
        return root / name

    bare("r1")
    (root / "g" / "sub").mkdir(parents=True)
    (root / "g" / "empty-group").mkdir()
    bare("g/r2")
    bare("g/sub/r3")
    bare("g/r2/inner")  # inside a repository: not descended into
    bare(".hidden/r4")
    bare("rm__20240101_120000_123456__old")
    bare("bad name")
    bare("g/x.git")
    git(root, "init", "-q", "work")  # a non-bare working copy
    bare("work2/inner")
    (root / "work2" / ".git").mkdir()
    (root / "hgrepo" / ".hg").mkdir(parents=True)
    (root / "link").symlink_to(root / "g")
    (root / "linkrepo").symlink_to(root / "r1")
    packed = bare("packed")
    git(packed, "pack-refs", "--all")
    shutil.rmtree(packed / "refs")
    (packed / "packed-refs").touch()
    (root / "not-a-dir").write_text("x")
    store.create_gist("123", {"a.txt": "x"}, "added file: a.txt", "A <a@example.com>")
    outside = tmp_path / "outside"
    git(tmp_path, "init", "-q", "--bare", str(outside / "r5"))
    (root / "g" / "escape").symlink_to(outside)

    assert list(store.iter_repositories()) == ["g/r2", "g/sub/r3", "packed", "r1"]


# -- gists -----------------------------------------------------------------------------------


def test_create_gist_commits_the_files(store: RepoStore) -> None:
    files = {"hello.py": "print('hi')\n", "notes with space.md": "# Ünïcode ✓\n"}
    commit = store.create_gist("abc123XYZ", files, "added files: hello.py, notes", "Ann <a@x.org>")
    path = store.gist_path("abc123XYZ")
    assert is_bare(path)
    assert git(path, "rev-parse", "HEAD").strip() == commit
    assert git(path, "ls-tree", "--name-only", "HEAD").splitlines() == sorted(files)
    for name, content in files.items():
        assert git(path, "show", f"HEAD:{name}") == content
    assert git(path, "log", "-1", "--format=%an <%ae>|%B") == (
        "Ann <a@x.org>|added files: hello.py, notes\n\n"
    )
    assert git(path, "rev-list", "--all").split() == [commit]
    git(path, "fsck", "--strict")
    assert list(store.iter_repositories()) == []
    assert staging_left(store) == []


@pytest.mark.parametrize(
    "filename", ["dir/file", "../x", "a\\b", "", ".", "..", ".git", ".GIT", "a\nb"]
)
def test_create_gist_refuses_file_names_with_directory_parts(
    store: RepoStore, filename: str
) -> None:
    with pytest.raises(InvalidName):
        store.create_gist("g1", {"ok.txt": "x", filename: "y"}, "m", "A <a@x>")
    assert not (store.root / ".rc_gist_store" / "g1").exists()
    assert staging_left(store) == []


def test_create_gist_refuses_text_that_is_not_unicode(store: RepoStore) -> None:
    with pytest.raises(InvalidName):
        store.create_gist("g1", {"a.txt": "lone \ud800 surrogate"}, "m", "A <a@x>")
    assert not store.gist_path("g1").exists()


def test_create_gist_refusals_and_delete(store: RepoStore) -> None:
    with pytest.raises(InvalidName):
        store.create_gist("g1", {}, "m", "A <a@x>")
    store.create_gist("g1", {"a": "x"}, "m", "A <a@x>")
    with pytest.raises(RepoExists):
        store.create_gist("g1", {"a": "x"}, "m", "A <a@x>")
    trash = store.delete_gist("g1")
    assert not trash.exists()
    assert not store.gist_path("g1").exists()
    with pytest.raises(RepoNotFound):
        store.delete_gist("g1")


def test_create_gist_on_a_full_disk_leaves_nothing(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dulwich.object_store import DiskObjectStore

    monkeypatch.setattr(DiskObjectStore, "add_objects", failing(errno.ENOSPC))
    with pytest.raises(StorageError, match="No space left"):
        store.create_gist("g1", {"a": "x"}, "m", "A <a@x>")
    assert not store.gist_path("g1").exists()
    assert staging_left(store) == []


# -- concurrency -----------------------------------------------------------------------------


def outcomes(calls: list[Callable[[], object]]) -> list[str]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> str:
        barrier.wait()
        try:
            call()
        except StorageError as exc:
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(len(calls)) as pool:
        return sorted(pool.map(run, calls))


def test_parallel_creates_of_one_name_have_one_winner(store: RepoStore) -> None:
    results = outcomes([lambda: store.create_repo("repo")] * 8)
    assert results == ["RepoExists"] * 7 + ["ok"]
    assert is_bare(store.root / "repo")
    assert staging_left(store) == []


def test_parallel_renames_to_one_name_have_one_winner(store: RepoStore) -> None:
    for index in range(6):
        store.create_repo(f"r{index}")
    results = outcomes([lambda i=i: store.rename_repo(f"r{i}", "target") for i in range(6)])
    assert results == ["RepoExists"] * 5 + ["ok"]
    assert sorted(store.iter_repositories()) == sorted(
        ["target", *(f"r{i}" for i in range(6) if (store.root / f"r{i}").exists())]
    )
    assert len(list(store.iter_repositories())) == 6


def test_parallel_renames_of_one_repository_have_one_winner(store: RepoStore) -> None:
    store.create_repo("repo")
    results = outcomes([lambda i=i: store.rename_repo("repo", f"new{i}") for i in range(6)])
    assert results == ["RepoNotFound"] * 5 + ["ok"]
    assert len(list(store.iter_repositories())) == 1


def test_parallel_create_and_delete_stay_consistent(store: RepoStore) -> None:
    store.create_repo("repo")
    results = outcomes([lambda: store.delete_repo("repo")] * 4 + [lambda: store.create_group("g")])
    assert results.count("ok") == 2  # one delete and the group
    assert results.count("RepoNotFound") == 3
    assert not (store.root / "repo").exists()
    assert trash_left(store) == []


# -- locks -----------------------------------------------------------------------------------


def test_the_write_lock_excludes_other_threads(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with repo_write_lock(tmp_path, 42):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(LockTimeout), repo_write_lock(tmp_path, 42, timeout=0.2):
            pass
        with repo_write_lock(tmp_path, 43, timeout=0.2):
            pass  # another repository is not blocked
    finally:
        release.set()
        thread.join()
    with repo_write_lock(tmp_path, 42, timeout=2):
        pass


def test_the_write_lock_excludes_other_processes(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from repohost.git.locks import repo_write_lock\n"
        f"with repo_write_lock({str(tmp_path)!r}, 'group/repo'):\n"
        "    print('locked', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        with pytest.raises(LockTimeout), repo_write_lock(tmp_path, "group/repo", timeout=0.2):
            pass
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    with repo_write_lock(tmp_path, "group/repo", timeout=2):
        pass


def test_lock_files_stay_under_the_locks_directory(tmp_path: Path) -> None:
    for key in ("../../escape", "/abs", "a/b", 7):
        with repo_write_lock(tmp_path, key, timeout=1):
            pass
    assert [p.parent for p in tmp_path.rglob("*.lock")] == [tmp_path / ".locks"] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks"]


def test_a_repository_taken_between_check_and_rename_is_not_found(
    store: RepoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between the existence check and the inode read loses to another rename."""
    store.create_repo("repo")
    store.create_group("g")
    real_require = RepoStore._require_repo

    def require_then_lose(self: RepoStore, path: Path, name: str) -> None:
        real_require(self, path, name)
        os.rename(path, self.root / "taken")

    monkeypatch.setattr(RepoStore, "_require_repo", require_then_lose)
    with pytest.raises(RepoNotFound):
        store.rename_repo("repo", "new")
    monkeypatch.undo()
    monkeypatch.setattr(
        RepoStore,
        "_require_group",
        lambda self, path, name: os.rename(path, self.root / "gone"),
    )
    with pytest.raises(GroupNotFound):
        store.rename_group("g", "h")
