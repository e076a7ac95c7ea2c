"""get_changesets and get_changeset on real repositories (facts §2.8, §3.7), checked against git."""

from __future__ import annotations

import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

T0 = 1_600_000_000
ALICE = "Alice Example <alice@example.com>"
JOHN = "Jöhn Dœ <john@example.com>"
SUMMARY_KEYS = {"short_id", "raw_id", "revision", "message", "date", "author"}
DETAIL_KEYS = {
    "raw_id",
    "short_id",
    "revision",
    "date",
    "message",
    "author",
    "added",
    "changed",
    "removed",
}


def bare(name: str) -> Path:
    return repos_root() / name


def iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class Work:
    """A working copy whose commits get fixed dates, authors and messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: dict[str, str] = {}
        self.git("init", "-q")

    def git(self, *args: str, when: int = T0, tz: str = "+0000", author: str = ALICE) -> str:
        name, _, email = author.partition(" <")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email.rstrip(">"),
            "GIT_COMMITTER_NAME": "Committer",
            "GIT_COMMITTER_EMAIL": "committer@example.com",
            "GIT_AUTHOR_DATE": f"{when - 7} {tz}",  # author time differs from committer time
            "GIT_COMMITTER_DATE": f"{when} {tz}",
            "LC_ALL": "C.UTF-8",
        }
        result = subprocess.run(
            ["git", "-c", "init.defaultBranch=master", *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            check=True,
        )
        return result.stdout.decode()

    def commit(self, key: str, offset: int, message: str, **kw: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, when=T0 + offset, **kw)
        self.ids[key] = self.git("rev-parse", "HEAD").strip()
        return self.ids[key]

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def build_history(target: Path) -> dict[str, str]:
    """Branches master, feature and side, a merge, a lightweight and an annotated tag.

    Committer times (offsets from T0): c0 0, c1 100, s0 150, f0 200, c2 300, f1 400,
    merge 500, c3 600 (c3 in +0200, by John); tag v1.0 → c1, annotated rel → merge.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Work(Path(tmp))
        work.write("README", "hello\n")
        work.write("a.txt", "a\n")
        work.write("dir/b.txt", "b\n")
        work.write("sp ace ü.txt", "unicode\n")
        work.write("dir/sub/deep.txt", "deep\n")
        work.commit("c0", 0, "Initial commit")
        work.write("a.txt", "a changed\n")
        work.write("c.txt", "c\n")
        work.commit("c1", 100, "Second")
        work.git("checkout", "-q", "-b", "feature")
        work.write("f.txt", "f\n")
        work.commit("f0", 200, "Feature one")
        work.write("README", "hello from feature\n")
        (work.path / "dir/b.txt").unlink()
        work.commit("f1", 400, "Feature two")
        work.git("checkout", "-q", "master")
        work.write("c.txt", "c changed\n")
        (work.path / "a.txt").unlink()
        work.commit("c2", 300, "Third")
        work.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature", when=T0 + 500)
        work.ids["merge"] = work.git("rev-parse", "HEAD").strip()
        work.git("mv", "c.txt", "d.txt")
        (work.path / "README").chmod(0o755)
        work.commit("c3", 600, "Ünïcode ✓ rename\n\nwith a body", tz="+0200", author=JOHN)
        work.git("checkout", "-q", "-b", "side", work.ids["c0"])
        work.write("side.txt", "side\n")
        work.commit("s0", 150, "Side work")
        work.git("checkout", "-q", "master")
        work.git("tag", "v1.0", work.ids["c1"])
        work.git("tag", "-a", "rel", "-m", "release", work.ids["merge"], when=T0 + 550)
        work.git("push", "-q", str(target), "--all")
        work.git("push", "-q", str(target), "--tags")
        return work.ids


@pytest.fixture
def code(api: Api) -> dict[str, str]:
    """Repository ``code`` with ``build_history``; the commit ids by name."""
    api.call("create_repo", repo_name="code")
    return build_history(bare("code"))


def git_log(*args: str) -> list[str]:
    """Commit ids as git lists them in the hosted repository ``code``."""
    return git(bare("code"), "log", "--format=%H", *args).split()


def all_revisions() -> list[str]:
    return git(bare("code"), "rev-list", "--all", "--reverse", "--date-order").split()


def raw_message(sha: str) -> str:
    raw = git(bare("code"), "cat-file", "commit", sha)
    return raw.split("\n\n", 1)[1]


def ids_of(items: list[dict]) -> list[str]:
    return [item["raw_id"] for item in items]


# --- get_changesets --------------------------------------------------------------------------


def test_lists_every_changeset_oldest_first(api: Api, code: dict[str, str]) -> None:
    items = api.call("get_changesets", repoid="code")
    order = all_revisions()
    assert [code[k] for k in ("c0", "c1", "s0", "f0", "c2", "f1", "merge", "c3")] == order
    assert ids_of(items) == order
    for index, item in enumerate(items):
        sha = item["raw_id"]
        committer_time = int(git(bare("code"), "log", "-1", "--format=%ct", sha))
        assert item == {
            "short_id": sha[:12],
            "raw_id": sha,
            "revision": index,
            "message": raw_message(sha),
            "date": iso(committer_time),
            "author": JOHN if sha == code["c3"] else ALICE,
        }
    assert items[0]["message"] == "Initial commit\n"
    assert items[0]["date"] == "2020-09-13T12:26:40"
    assert items[-1]["message"] == "Ünïcode ✓ rename\n\nwith a body\n"
    assert items[-1]["date"] == iso(T0 + 600)  # UTC, whatever the commit's zone
    # by id too, and the same list newest first with reverse
    repo_id = api.call("get_repo", repoid="code")["repo_id"]
    assert api.call("get_changesets", repoid=repo_id) == items
    assert api.call("get_changesets", repoid="code", reverse=True) == items[::-1]


def test_max_revisions_keeps_the_newest(api: Api, code: dict[str, str]) -> None:
    everything = all_revisions()
    for count in (1, 3, 8, 20):
        items = api.call("get_changesets", repoid="code", max_revisions=count)
        assert ids_of(items) == git_log("--all", "--date-order", "--reverse", f"-n{count}")
        assert ids_of(items) == everything[-count:]
        newest_first = api.call("get_changesets", repoid="code", max_revisions=count, reverse=True)
        assert newest_first == items[::-1]
    assert api.call("get_changesets", repoid="code", max_revisions=0) == api.call(
        "get_changesets", repoid="code"
    )
    feature = api.call("get_changesets", repoid="code", branch_name="feature", max_revisions=2)
    assert ids_of(feature) == git_log("--date-order", "--reverse", "-n2", "feature")
    assert ids_of(feature) == [code["f0"], code["f1"]]


def test_start_and_end(api: Api, code: dict[str, str]) -> None:
    order = all_revisions()

    def between(start: str | None = None, end: str | None = None, **kw: object) -> list[str]:
        args = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        return ids_of(api.call("get_changesets", repoid="code", **args, **kw))

    # hashes, inclusive at both ends
    assert between(code["c1"], code["f1"]) == order[1:6]
    assert between(code["c1"].upper(), code["f1"]) == order[1:6]
    assert between(code["f0"]) == order[3:]
    assert between(end=code["f0"]) == order[:4]
    assert between(code["c2"], code["c2"]) == [code["c2"]]
    # numeric indexes
    assert between("1", "3") == order[1:4]
    assert between("0") == order
    assert between(end="0") == order[:1]
    # tags (the annotated one peeled to its commit) and branches
    assert between("v1.0") == order[1:]
    assert between("side", "rel") == order[2:7]
    assert between(end="feature") == order[:6]
    assert between("tip") == order[-1:]
    # with reverse the selected range comes newest first
    assert between(code["c1"], code["f1"], reverse=True) == order[1:6][::-1]
    # filtered by branch: a start that is not on the branch means "from the first"
    assert between(code["c2"], branch_name="feature") == [
        code["c0"],
        code["c1"],
        code["f0"],
        code["f1"],
    ]
    assert between(code["f0"], branch_name="feature") == [code["f0"], code["f1"]]
    assert between(end=code["c2"], branch_name="feature") == between(branch_name="feature")
    # max_revisions first, then the range
    assert between(code["f1"], max_revisions=4) == [code["f1"], code["merge"], code["c3"]]
    assert between(code["c0"], max_revisions=2) == order[-2:]


def test_start_and_end_errors(api: Api, code: dict[str, str]) -> None:
    def error(**kw: object) -> str:
        return api.error("get_changesets", repoid="code", **kw)

    missing = "f" * 40
    assert error(start="nope") == "Changeset nope does not exist"
    assert error(end="nope") == "Changeset nope does not exist"
    assert error(start=missing) == f"Changeset {missing} does not exist"
    assert error(start="99") == "Changeset 99 does not exist"
    assert error(start=code["c0"][:12]) == f"Changeset {code['c0'][:12]} does not exist"
    # the error names the revision that is wrong, whichever it is
    assert error(start="nope", end=code["c1"]) == "Changeset nope does not exist"
    assert error(start=code["c1"], end="nope") == "Changeset nope does not exist"
    assert error(start="bad1", end="bad2") == "Changeset bad1 does not exist"
    # a range backwards is not a missing changeset
    assert error(start=code["f1"], end=code["c1"]) == (
        f"Start revision `{code['f1']}` cannot be after end revision `{code['c1']}`"
    )
    assert error(start="3", end="1") == "Start revision `3` cannot be after end revision `1`"


def test_dates(api: Api, code: dict[str, str]) -> None:
    def listed(**kw: object) -> list[str]:
        return ids_of(api.call("get_changesets", repoid="code", **kw))

    # inclusive bounds on the committer time
    since, until = iso(T0 + 150), iso(T0 + 400)
    expected = git_log("--all", "--date-order", "--reverse", f"--since=@{T0 + 150}")
    assert listed(start_date=since) == expected
    assert expected[0] == code["s0"]
    expected = git_log("--all", "--date-order", "--reverse", f"--until=@{T0 + 400}")
    assert listed(end_date=until) == expected
    assert expected[-1] == code["f1"]
    both = git_log(
        "--all", "--date-order", "--reverse", f"--since=@{T0 + 150}", f"--until=@{T0 + 400}"
    )
    assert listed(start_date=since, end_date=until) == both
    assert both == [code["s0"], code["f0"], code["c2"], code["f1"]]
    # the author time (7 s earlier here) does not count
    assert listed(start_date=iso(T0 + 601)) == []
    assert listed(end_date=iso(T0 - 1)) == []
    assert listed(start_date=iso(T0 + 1), end_date=iso(T0 + 99)) == []
    # combined with a branch and max_revisions
    assert listed(branch_name="feature", end_date=iso(T0 + 300)) == [
        code["c0"],
        code["c1"],
        code["f0"],
    ]
    assert listed(start_date=iso(T0 + 100), max_revisions=2, end_date=iso(T0 + 400)) == [
        code["c2"],
        code["f1"],
    ]
    # an empty string is no bound (as 0.7)
    assert listed(start_date="", end_date="") == all_revisions()
    for bad in ("2020-09-13", "2020-09-13 12:26:40", "2020-09-13T12:26:40Z", "yesterday", "0"):
        assert api.error("get_changesets", repoid="code", start_date=bad) == (
            "`start_date` must be a date like 2024-01-31T23:59:59"
        )
        assert api.error("get_changesets", repoid="code", end_date=bad) == (
            "`end_date` must be a date like 2024-01-31T23:59:59"
        )


def test_branch_name(api: Api, code: dict[str, str]) -> None:
    everything = api.call("get_changesets", repoid="code")
    revision_of = {item["raw_id"]: item["revision"] for item in everything}
    for branch in ("master", "feature", "side"):
        items = api.call("get_changesets", repoid="code", branch_name=branch)
        assert ids_of(items) == git_log("--date-order", "--reverse", branch)
        # revisions stay the indexes of the whole repository
        assert all(item["revision"] == revision_of[item["raw_id"]] for item in items)
    assert ids_of(api.call("get_changesets", repoid="code", branch_name="side")) == [
        code["c0"],
        code["s0"],
    ]
    assert ids_of(api.call("get_changesets", repoid="code", branch_name="side", reverse=True)) == [
        code["s0"],
        code["c0"],
    ]
    for missing in ("nope", "v1.0", "rel", code["c0"]):
        assert api.error("get_changesets", repoid="code", branch_name=missing) == (
            f"branch `{missing}` does not exist"
        )


def name_status(sha: str) -> dict[str, list[str]]:
    """``added``/``changed``/``removed`` as git reports them against every parent, merged."""
    parents = git(bare("code"), "rev-parse", f"{sha}^@").split()
    if not parents:
        out = git(bare("code"), "-c", "core.quotepath=false", "ls-tree", "-r", "--name-only", sha)
        files = out.splitlines()
        return {"added": files, "changed": [], "removed": []}
    found: dict[str, set[str]] = {"added": set(), "changed": set(), "removed": set()}
    for parent in parents:
        out = git(bare("code"), "-c", "core.quotepath=false", "diff-tree", "-r", "--no-renames",
                  "--name-status", parent, sha)  # fmt: skip
        for line in out.splitlines():
            status, path = line.split("\t", 1)
            key = {"A": "added", "D": "removed", "M": "changed", "T": "changed"}[status]
            found[key].add(path)
    return {key: sorted(paths) for key, paths in found.items()}


def test_with_file_list(api: Api, code: dict[str, str]) -> None:
    plain = api.call("get_changesets", repoid="code")
    items = api.call("get_changesets", repoid="code", with_file_list=True)
    assert [{k: v for k, v in item.items() if k in SUMMARY_KEYS} for item in items] == plain
    by_id = {item["raw_id"]: item for item in items}
    for sha, item in by_id.items():
        assert set(item) == SUMMARY_KEYS | {"added", "changed", "removed"}
        expected = name_status(sha)
        if sha == code["c0"]:  # a root commit lists its files as get_repo_nodes does
            assert sorted(item["added"]) == sorted(expected["added"])
            assert item["changed"] == item["removed"] == []
        else:
            assert {k: item[k] for k in ("added", "changed", "removed")} == expected, sha
    assert by_id[code["c0"]]["added"] == [
        "README",
        "a.txt",
        "sp ace ü.txt",
        "dir/b.txt",
        "dir/sub/deep.txt",
    ]
    assert {k: by_id[code["c1"]][k] for k in ("added", "changed", "removed")} == {
        "added": ["c.txt"],
        "changed": ["a.txt"],
        "removed": [],
    }
    assert by_id[code["f1"]]["changed"] == ["README"]
    assert by_id[code["f1"]]["removed"] == ["dir/b.txt"]
    # a merge: what differs from either parent
    assert {k: by_id[code["merge"]][k] for k in ("added", "changed", "removed")} == {
        "added": ["f.txt"],
        "changed": ["README", "c.txt"],
        "removed": ["a.txt", "dir/b.txt"],
    }
    # a rename is an add and a remove; a mode change is a change
    assert {k: by_id[code["c3"]][k] for k in ("added", "changed", "removed")} == {
        "added": ["d.txt"],
        "changed": ["README"],
        "removed": ["c.txt"],
    }


def test_empty_repository(api: Api) -> None:
    api.call("create_repo", repo_name="empty")
    assert api.error("get_changesets", repoid="empty") == "Repository is empty"
    assert api.error("get_changesets", repoid="empty", reverse=True, max_revisions=3) == (
        "Repository is empty"
    )
    assert api.error("get_changesets", repoid="empty", start="0") == "Repository is empty"
    assert api.error("get_changeset", repoid="empty", raw_id="tip") == (
        "Changeset tip does not exist"
    )
    assert api.error("get_changeset", repoid="empty", raw_id="0" * 40) == (
        f"Changeset {'0' * 40} does not exist"
    )


def test_access(api: Api) -> None:
    uid, key = api.new_user("bob")
    bob = api.as_user(key)
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo", repo_name="grp/secret", private=True)
    api.call("create_repo", repo_name="open")
    ids = push_commits(bare("grp/secret"), [{"f": "1"}])
    push_commits(bare("open"), [{"g": "2"}])
    secret_id = api.call("get_repo", repoid="grp/secret")["repo_id"]
    # Kallithea 0.7 answers `Access denied to repo grp/secret`, naming the repository
    # even to a caller who gave its id; repohost answers as for a missing one.
    for repoid in ("grp/secret", secret_id):
        hidden = f"repository `{repoid}` does not exist"
        assert bob.error("get_changesets", repoid=repoid) == hidden
        assert bob.error("get_changeset", repoid=repoid, raw_id=ids[0]) == hidden
        # the check comes before anything about the revision
        assert bob.error("get_changeset", repoid=repoid, raw_id="nope") == hidden
        assert bob.error("get_changesets", repoid=repoid, start_date="bad") == hidden
    assert len(bob.call("get_changesets", repoid="open")) == 1
    for who in (api, bob):
        assert who.error("get_changesets", repoid="missing") == (
            "repository `missing` does not exist"
        )
        assert who.error("get_changeset", repoid="missing", raw_id="tip") == (
            "repository `missing` does not exist"
        )
        assert who.error("get_changesets", repoid=9999) == "repository `9999` does not exist"
    api.call("grant_user_permission", repoid="grp/secret", userid=uid, perm="repository.read")
    assert ids_of(bob.call("get_changesets", repoid="grp/secret")) == ids
    assert bob.call("get_changeset", repoid="grp/secret", raw_id=ids[0])["raw_id"] == ids[0]
    api.call("grant_user_permission", repoid="grp/secret", userid=uid, perm="repository.none")
    assert bob.error("get_changesets", repoid="grp/secret") == (
        "repository `grp/secret` does not exist"
    )
    # the owner of a private repository reads it
    bob.call("create_repo", repo_name="bobs", private=True)
    push_commits(bare("bobs"), [{"h": "3"}])
    assert len(bob.call("get_changesets", repoid="bobs")) == 1


# --- get_changeset ---------------------------------------------------------------------------


def test_get_changeset_shape(api: Api, code: dict[str, str]) -> None:
    order = all_revisions()
    sha = code["c3"]
    result = api.call("get_changeset", repoid="code", raw_id=sha)
    assert set(result) == DETAIL_KEYS
    assert result == {
        "raw_id": sha,
        "short_id": sha[:12],
        "revision": order.index(sha),
        "date": iso(T0 + 600),
        "message": "Ünïcode ✓ rename\n\nwith a body\n",
        "author": {"name": "Jöhn Dœ", "email": "john@example.com"},
        "added": ["d.txt"],
        "changed": ["README"],
        "removed": ["c.txt"],
    }
    merge = api.call("get_changeset", repoid="code", raw_id=code["merge"])
    assert merge["author"] == {"name": "Alice Example", "email": "alice@example.com"}
    assert merge["message"] == "Merge feature\n"
    assert (merge["added"], merge["changed"], merge["removed"]) == (
        ["f.txt"],
        ["README", "c.txt"],
        ["a.txt", "dir/b.txt"],
    )
    # the summary in get_changesets agrees
    listed = api.call("get_changesets", repoid="code", with_file_list=True)
    for item in listed:
        detail = api.call("get_changeset", repoid="code", raw_id=item["raw_id"])
        name, _, email = item["author"].partition(" <")
        assert detail == {
            **{k: item[k] for k in DETAIL_KEYS if k != "author"},
            "author": {"name": name, "email": email.rstrip(">")},
        }


def test_get_changeset_by_other_revision_names(api: Api, code: dict[str, str]) -> None:
    def raw(revision: str) -> str:
        return api.call("get_changeset", repoid="code", raw_id=revision)["raw_id"]

    order = all_revisions()
    assert raw("tip") == order[-1]
    assert raw("0") == order[0]
    assert raw("4") == order[4]
    assert raw("v1.0") == code["c1"]
    assert raw("rel") == code["merge"]
    assert raw("feature") == code["f1"]
    assert raw(code["s0"].upper()) == code["s0"]


def test_get_changeset_unknown(api: Api, code: dict[str, str]) -> None:
    blob = git(bare("code"), "rev-parse", f"{code['c0']}:README").strip()
    tree = git(bare("code"), "rev-parse", f"{code['c0']}^{{tree}}").strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x"}
    env.update(GIT_COMMITTER_NAME="x", GIT_COMMITTER_EMAIL="x@x")
    dangling = subprocess.run(
        ["git", "commit-tree", tree, "-m", "nobody points here"],
        cwd=bare("code"),
        env=env,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()
    for revision in (
        "f" * 40,
        "nope",
        "99",
        code["c0"][:12],
        blob,
        tree,
        dangling,
    ):
        assert api.error("get_changeset", repoid="code", raw_id=revision) == (
            f"Changeset {revision} does not exist"
        ), revision


def test_get_changeset_with_reviews(api: Api, code: dict[str, str]) -> None:
    plain = api.call("get_changeset", repoid="code", raw_id=code["c1"])
    with_reviews = api.call("get_changeset", repoid="code", raw_id=code["c1"], with_reviews=True)
    assert with_reviews == {**plain, "reviews": []}
    assert "reviews" not in api.call(
        "get_changeset", repoid="code", raw_id=code["c1"], with_reviews=False
    )
