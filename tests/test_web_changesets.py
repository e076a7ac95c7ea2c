"""Diffs and patches of changesets over real HTTP (facts §5.5).

The central check: for every commit of a repository holding every kind of
change git knows (merges, binary files, renames, mode and type changes,
deletions, files without a final newline, symlinks, unicode and spaces in
names), ``git apply --binary`` of the served diff onto a checkout of the
first parent rebuilds exactly the commit's tree.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api
from tests.support.gitcli import git
from tests.support.web import Page, http_get

START = 1_600_000_000


class Work:
    """A work tree whose commits are dated one minute apart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.when = START
        path.mkdir()
        git(path, "init", "-q")

    def write(self, name: str, content: str | bytes) -> None:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    def link(self, name: str, target: str) -> None:
        path = self.path / name
        if path.exists() or path.is_symlink():
            path.unlink()
        os.symlink(target, path)

    def run(self, *args: str) -> str:
        return git(self.path, *args, when=self.when)

    def commit(self, message: str) -> str:
        self.when += 60
        self.run("add", "-A")
        self.run("commit", "-q", "--allow-empty", "-m", message)
        return self.run("rev-parse", "HEAD").strip()


def lines(count: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(f"line {i} {rng.randrange(10**6)}\n" for i in range(count))


def build_rich_repository(work: Work, bare: Path) -> None:
    rng = random.Random(1)
    blob = rng.randbytes(3000) + b"\x00"
    work.write("README", "hello\n")
    work.write("src/a.py", lines(60, 1))
    work.write("bin/blob.bin", blob)
    work.write("dir é/file with space.txt", "spaces and unicode\n")
    work.write("nonl.txt", "no final newline")
    work.write("script.sh", "#!/bin/sh\necho hi\n")
    work.write("empty.txt", "")
    work.write("ws.txt", "a b\n\tindented\n")
    work.write("crlf.txt", "one\r\ntwo\r\n")
    work.link("link-out", "../../../../etc/passwd")
    work.link("link-dir", "src")
    work.commit("root: every kind of file")
    work.run("tag", "-a", "-m", "first release", "v1.0")
    work.run("checkout", "-q", "--orphan", "pages")
    work.run("rm", "-rfq", ".")
    work.write("index.txt", "a second root\n")
    work.commit("second root commit")
    work.run("checkout", "-q", "-f", "master")

    work.write("src/a.py", lines(60, 1).replace("line 30 ", "line thirty "))
    work.write("nonl.txt", "no final newline, still")
    os.chmod(work.path / "script.sh", 0o755)  # noqa: S103 - a committed mode change
    work.write("crlf.txt", "one\r\ntwo changed\r\n")
    work.commit("edits, a mode change, still no final newline")

    work.run("mv", "src/a.py", "src/b.py")
    work.write("src/b.py", lines(60, 1).replace("line 30 ", "line thirty ") + "appended\n")
    work.run("rm", "-q", "empty.txt")
    changed = bytearray(blob)
    changed[100:110] = b"\xff" * 10
    work.write("bin/blob.bin", bytes(changed))
    work.write("nonl.txt", "no final newline, still\n")
    work.commit("rename with edits, delete, binary change, final newline added")

    work.run("checkout", "-q", "-b", "feature")
    work.write("feature.txt", "feature work\n")
    work.write("README", "hello from the feature\n")
    work.commit("feature: add and edit")
    work.run("mv", "dir é/file with space.txt", "dir é/renamed ü file.txt")
    work.commit("feature: pure rename with unicode and spaces")

    work.run("checkout", "-q", "master")
    work.write("src/b.py", "first line changed\n" + lines(60, 1)[13:] + "appended\n")
    (work.path / "link-out").unlink()
    work.write("link-out", "now a regular file\n")
    work.write("ws.txt", "a  b\n        indented   \n")
    work.write("README", "hello\nmore\n")
    work.commit("type change symlink to file, whitespace only change")
    work.run("tag", "light")

    work.when += 60
    work.run("merge", "-q", "--no-ff", "-X", "theirs", "-m", "merge feature", "feature")

    work.run("rm", "-q", "bin/blob.bin")
    work.write("bin/other.bin", rng.randbytes(2000) + b"\x00")
    (work.path / "crlf.txt").unlink()
    work.link("crlf.txt", "README")
    work.write("only-line", "single line, no newline")
    work.write("README", "hello\nmore")
    work.write("ünïcödé.txt", "ünïcödé content ✓\n")
    work.link("link-dir", "bin")
    work.commit("delete binary, new binary, file to symlink, newline removed")

    work.write("big.txt", lines(20000, 2))
    work.run("mv", "bin/other.bin", "bin/moved.bin")
    moved = bytearray((work.path / "bin/moved.bin").read_bytes())
    moved[5:9] = b"\x01\x02\x03\x04"
    work.write("bin/moved.bin", bytes(moved))
    work.commit("large text file, binary rename with changes")

    work.write("big.txt", lines(20000, 2).replace("line 1", "LINE 1"))
    os.chmod(work.path / "script.sh", 0o644)
    work.write("script.sh", "#!/bin/sh\necho bye\n")
    work.commit("many hunks, mode back with content change")

    work.run("push", "-q", str(bare), "master", "feature", "pages", "v1.0", "light")


@pytest.fixture(autouse=True)
def whitelist_all_views(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keys work on all four views here (``changeset_download`` is not whitelisted by default)."""
    from repohost.config import get_settings

    monkeypatch.setenv(
        "REPOHOST_API_ACCESS_WHITELIST",
        "ChangesetController:changeset_raw,ChangesetController:changeset_patch,"
        "ChangesetController:changeset_download",
    )
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def rich(lambda_api: Api, tmp_path: Path) -> Path:
    """The bare repository ``rich`` (hosted), built once per test."""
    lambda_api.call("create_repo", repo_name="rich")
    bare = repos_root() / "rich"
    build_rich_repository(Work(tmp_path / "work"), bare)
    return bare


def get(server: str, path: str, **kw: object) -> Page:
    return http_get(server, path, key=ADMIN_KEY, **kw)


def all_commits(bare: Path) -> list[str]:
    return git(bare, "rev-list", "--all").split()


def first_parent(bare: Path, commit: str) -> str | None:
    parents = git(bare, "rev-list", "--parents", "-n", "1", commit).split()[1:]
    return parents[0] if parents else None


def git_diff(bare: Path, commit: str, *flags: str) -> bytes:
    """What Kallithea serves: git's own diff with the same flags."""
    parent = first_parent(bare, commit)
    base = ["--full-index", "--binary", "-M", *flags]
    args = ["diff", *base, parent, commit] if parent else ["show", "--format=", *base, commit]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(bare),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    return subprocess.run(
        ["git", "-C", str(bare), *args], capture_output=True, check=True, env=env
    ).stdout


def apply_and_write_tree(checkout: Path, patch: Path, parent: str | None) -> str:
    """Apply ``patch`` with ``git apply --binary`` on a checkout of ``parent``; the tree id."""
    if parent is None:
        git(checkout, "checkout", "-q", "--orphan", f"empty-{patch.stem}")
        git(checkout, "rm", "-rfq", "--ignore-unmatch", ".")
    else:
        git(checkout, "checkout", "-q", "-f", "--detach", parent)
    git(checkout, "clean", "-fdxq")
    git(checkout, "apply", "--binary", str(patch))
    git(checkout, "add", "-A")
    return git(checkout, "write-tree").strip()


def test_every_commit_diff_applies_onto_its_parent(
    local_server: str, rich: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(rich), str(checkout))
    commits = all_commits(rich)
    assert len(commits) == 11
    seen = set()
    for commit in commits:
        page = get(local_server, f"/rich/changeset-diff/{commit}")
        assert page.status == 200, commit
        patch = tmp_path / f"{commit}.diff"
        patch.write_bytes(page.body)
        tree = apply_and_write_tree(checkout, patch, first_parent(rich, commit))
        assert tree == git(rich, "rev-parse", f"{commit}^{{tree}}").strip(), commit
        seen.update(
            marker
            for marker in (
                b"GIT binary patch",
                b"rename from",
                b"old mode 100644",
                b"deleted file mode",
                b"new file mode 120000",
                b"\\ No newline at end of file",
                b'"b/\\303\\274n\\303\\257c\\303\\266d\\303\\251.txt"',
                b"new file mode 100644\nindex 0000000000000000000000000000000000000000..e69de29",
            )
            if marker in page.body
        )
    assert len(seen) == 8, seen  # the repository exercised every kind of change


def file_sections(diff: bytes) -> dict[bytes, bytes]:
    """A diff split per file, keyed by its ``diff --git`` line."""
    chunks = diff.split(b"\ndiff --git ")
    chunks = [chunks[0]] + [b"diff --git " + chunk for chunk in chunks[1:]]
    return {chunk.split(b"\n", 1)[0]: chunk.rstrip(b"\n") for chunk in chunks if chunk}


def test_diffs_match_git_except_binary_bytes_and_rename_scores(
    local_server: str, rich: Path
) -> None:
    compared = 0
    variants = (((), ""), (("-U0",), "?context=0"), (("-U7", "-w"), "?context=7&ignorews=1"))
    for commit in all_commits(rich):
        for flags, query in variants:
            expected = file_sections(git_diff(rich, commit, *flags))
            served = file_sections(get(local_server, f"/rich/changeset-diff/{commit}{query}").body)
            assert served.keys() == expected.keys(), (commit, flags)
            for name, chunk in expected.items():
                if b"GIT binary patch" in chunk or b"similarity index" in chunk:
                    continue
                assert served[name] == chunk, (commit, flags, name)
                compared += 1
    assert compared >= 60


def test_renames_and_binary_patches_are_git_style(local_server: str, rich: Path) -> None:
    commit = git(rich, "rev-parse", "master~1").strip()
    body = get(local_server, f"/rich/changeset-diff/{commit}").body
    assert b"rename from bin/other.bin\nrename to bin/moved.bin\n" in body
    assert b"GIT binary patch\nliteral " in body or b"GIT binary patch\ndelta " in body
    rename = git(rich, "rev-parse", "feature").strip()
    assert get(local_server, f"/rich/changeset-diff/{rename}").body == (
        b'diff --git "a/dir \\303\\251/file with space.txt" '
        b'"b/dir \\303\\251/renamed \\303\\274 file.txt"\n'
        b"similarity index 100%\n"
        b'rename from "dir \\303\\251/file with space.txt"\n'
        b'rename to "dir \\303\\251/renamed \\303\\274 file.txt"\n'
    )


def test_merge_is_diffed_against_its_first_parent(local_server: str, rich: Path) -> None:
    merge = git(rich, "rev-parse", "master~3").strip()
    assert len(git(rich, "rev-list", "--parents", "-n", "1", merge).split()) == 3
    body = get(local_server, f"/rich/changeset-diff/{merge}").body
    assert b"+++ b/feature.txt" in body
    assert b"b/src/b.py" not in body  # changed on master, the first parent


def test_views_headers_and_the_patch_format(local_server: str, rich: Path) -> None:
    tip = git(rich, "rev-parse", "master").strip()
    diff = get(local_server, "/rich/changeset-diff/tip")
    assert diff.status == 200
    assert diff.header("Content-Type") == "text/plain; charset=utf-8"
    assert diff.header("Content-Disposition") is None
    assert diff.header("ETag") == f'"{tip}"'
    assert diff.header("Cache-Control") == "private, no-cache"
    assert "sandbox" in diff.header("Content-Security-Policy")
    assert diff.body == git_diff(rich, tip)
    assert get(local_server, "/rich/raw-changeset/tip").body == diff.body

    download = get(local_server, "/rich/changeset-download/tip")
    assert download.header("Content-Disposition") == "attachment; filename=tip.diff"
    assert download.body == diff.body
    by_id = get(local_server, f"/rich/changeset-download/{tip}")
    assert by_id.header("Content-Disposition") == f"attachment; filename={tip[:12]}.diff"

    patch = get(local_server, "/rich/changeset-patch/tip")
    assert patch.header("Content-Type") == "text/plain; charset=utf-8"
    assert (
        patch.body
        == (
            f"From {tip} 2020-09-13 12:37:40\n"
            "From: Alice Example <alice@example.com>\n"
            "Date: 2020-09-13 12:37:40\n"
            "Subject: [PATCH] many hunks, mode back with content change\n"
            "---\n\n"
        ).encode()
        + diff.body
    )


def test_the_patch_applies_too(local_server: str, rich: Path, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(rich), str(checkout))
    commit = git(rich, "rev-parse", "master~1").strip()
    patch = tmp_path / "p.patch"
    patch.write_bytes(get(local_server, f"/rich/changeset-patch/{commit}").body)
    tree = apply_and_write_tree(checkout, patch, first_parent(rich, commit))
    assert tree == git(rich, "rev-parse", f"{commit}^{{tree}}").strip()


def test_revisions_by_every_name(local_server: str, rich: Path) -> None:
    root = git(rich, "rev-list", "--max-parents=0", "master").strip()
    for rev, commit in {
        "tip": "master",
        "master": "master",
        "feature": "feature",
        "pages": "pages",
        "v1.0": root,
        "light": "light",
        "0": root,
        root: root,
        root.upper(): root,
    }.items():
        page = get(local_server, f"/rich/changeset-diff/{rev}")
        assert page.status == 200, rev
        assert page.header("ETag") == f'"{git(rich, "rev-parse", commit + "^{commit}").strip()}"'
    for rev in ("nope", "f" * 40, "999", root[:12], "..", "%2e%2e%2fconfig"):
        page = get(local_server, f"/rich/changeset-patch/{rev}")
        assert (page.status, page.body) == (404, b"No such revision in this repository\n"), rev


def test_a_range_serves_its_last_changeset(local_server: str, rich: Path) -> None:
    root = git(rich, "rev-list", "--max-parents=0", "master").strip()
    tip = git(rich, "rev-parse", "master").strip()
    page = get(local_server, f"/rich/changeset-diff/{root}...{tip}")
    assert page.status == 200
    assert page.body == git_diff(rich, tip)
    download = get(local_server, f"/rich/changeset-download/{root}...tip")
    assert download.header("Content-Disposition") == f"attachment; filename={root[:12]}.diff"
    for bad in (f"nope...{tip}", f"{root}...nope", f"...{tip}", f"{root}..."):
        assert get(local_server, f"/rich/changeset-diff/{bad}").status == 404, bad


def test_context_and_ignorews_parameters(local_server: str, rich: Path) -> None:
    ws = git(rich, "rev-parse", "light").strip()
    plain = get(local_server, f"/rich/changeset-diff/{ws}").body
    assert b"+++ b/ws.txt" in plain
    ignoring = get(local_server, f"/rich/changeset-diff/{ws}?ignorews=1")
    assert b"+++ b/ws.txt" not in ignoring.body
    assert ignoring.header("ETag") == f'"{ws}-w"'
    for value in ("x", "-1", "", "1e3"):
        page = get(local_server, f"/rich/changeset-diff/{ws}?context={value}")
        assert page.body == plain, value
        assert page.header("ETag") == f'"{ws}"'
    wide = get(local_server, f"/rich/changeset-diff/{ws}?context=99999999999")
    assert wide.body == git_diff(rich, ws, "-U1000000")
    assert wide.header("ETag") == f'"{ws}-U1000000"'


def test_etag_if_none_match_and_head(local_server: str, rich: Path) -> None:
    tip = git(rich, "rev-parse", "master").strip()
    for view in ("changeset-diff", "changeset-patch", "changeset-download", "raw-changeset"):
        page = get(local_server, f"/rich/{view}/tip", headers={"If-None-Match": f'"{tip}"'})
        assert (page.status, page.body) == (304, b""), view
        assert page.header("ETag") == f'"{tip}"'
        full = get(local_server, f"/rich/{view}/tip")
        head = get(local_server, f"/rich/{view}/tip", method="HEAD")
        assert (head.status, head.body) == (200, b"")
        for name in ("Content-Type", "Content-Disposition", "ETag"):
            assert head.header(name) == full.header(name), (view, name)
    stale = get(local_server, "/rich/changeset-diff/tip", headers={"If-None-Match": '"x"'})
    assert stale.status == 200
    other = get(
        local_server, "/rich/changeset-diff/tip?context=1", headers={"If-None-Match": f'"{tip}"'}
    )
    assert other.status == 200


def test_a_diff_too_big_for_one_response_is_413(
    lambda_api: Api, local_server: str, tmp_path: Path
) -> None:
    from repohost.web.files import MAX_BODY_BYTES

    lambda_api.call("create_repo", repo_name="bulky")
    work = Work(tmp_path / "work")
    work.write("bulk.txt", lines(MAX_BODY_BYTES // 15, 3))
    work.commit("bulk")
    work.run("push", "-q", str(repos_root() / "bulky"), "master")
    page = get(local_server, "/bulky/changeset-diff/tip")
    assert page.status == 413
    assert b"one response can carry" in page.body


def test_extra_segments_and_groups(lambda_api: Api, local_server: str, tmp_path: Path) -> None:
    lambda_api.call("create_repo_group", group_name="g")
    lambda_api.call("create_repo_group", group_name="h", parent="g")
    lambda_api.call("create_repo", repo_name="g/h/small")
    work = Work(tmp_path / "work")
    work.write("a.txt", "a\n")
    commit = work.commit("one")
    work.run("push", "-q", str(repos_root() / "g/h/small"), "master")
    repo_id = lambda_api.call("get_repo", repoid="g/h/small")["repo_id"]
    for prefix in ("/g/h/small", f"/_{repo_id}"):
        page = get(local_server, f"{prefix}/changeset-diff/{commit}")
        assert page.status == 200, prefix
        assert b"+++ b/a.txt" in page.body
    assert get(local_server, "/g/h/small/changeset-diff/tip/extra").status == 404


def test_an_empty_repository_has_no_changesets(lambda_api: Api, local_server: str) -> None:
    lambda_api.call("create_repo", repo_name="blank")
    for view in ("changeset-diff", "changeset-patch", "changeset-download", "raw-changeset"):
        page = get(local_server, f"/blank/{view}/tip")
        assert (page.status, page.body) == (404, b"No such revision in this repository\n"), view
