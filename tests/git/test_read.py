"""``repohost.git.read`` against the real git command on the fixture repositories."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dulwich.repo import Repo

from repohost.git import read
from repohost.git.errors import (
    BranchNotFound,
    EmptyRepository,
    InvalidRange,
    PathNotFound,
    RepoNotFound,
    RevisionNotFound,
)
from tests.git.conftest import T0, SampleRepo, commit_tree, git


@pytest.fixture
def repo(sample: SampleRepo) -> Iterator[Repo]:
    with read.open_repo(sample.path) as opened:
        yield opened


def utc(offset: int) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC).replace(tzinfo=None)


def rev_list(path: Path, *args: str) -> list[str]:
    return git(path, "rev-list", "--all", "--reverse", "--date-order", *args).split()


def git_log(path: Path, *args: str) -> list[str]:
    return git(path, "log", "--date-order", "--reverse", "--format=%H", *args).split()


def tree_entries(path: Path, commit: str) -> tuple[set[str], set[str]]:
    """(dirs, files) of a commit according to ``git ls-tree -r -t``; submodules left out."""
    dirs, files = set(), set()
    for record in git(path, "ls-tree", "-r", "-t", "-z", commit).split("\0"):
        if record:
            meta, name = record.split("\t", 1)
            kind = meta.split()[1]
            if kind == "tree":
                dirs.add(name)
            elif kind == "blob":
                files.add(name)
    return dirs, files


def name_status(path: Path, parent: str, commit: str) -> dict[str, set[str]]:
    fields = git(path, "diff-tree", "-r", "-z", "--no-renames", "--name-status", parent, commit)
    parts = [part for part in fields.split("\0") if part]
    result: dict[str, set[str]] = {"added": set(), "changed": set(), "removed": set()}
    for status, name in zip(parts[::2], parts[1::2], strict=True):
        key = {"A": "added", "D": "removed", "M": "changed", "T": "changed"}[status]
        result[key].add(name)
    return result


# -- opening ------------------------------------------------------------------------------


def test_open_repo_refuses_a_plain_directory(tmp_path: Path) -> None:
    with pytest.raises(RepoNotFound):
        read.open_repo(tmp_path)
    with pytest.raises(RepoNotFound):
        read.open_repo(tmp_path / "missing")


# -- revision list and identifiers ------------------------------------------------------


@pytest.mark.parametrize("which", ["sample", "sample_packed", "dag0", "dag1", "dag2"])
def test_numeric_revisions_follow_git_rev_list(
    request: pytest.FixtureRequest, dag_repos: list[Path], which: str
) -> None:
    path = (
        dag_repos[int(which[3])] if which.startswith("dag") else request.getfixturevalue(which).path
    )
    expected = rev_list(path)
    assert len(expected) >= 10
    with read.open_repo(path) as opened:
        assert [read.resolve_revision(opened, str(i)) for i in range(len(expected))] == expected
        assert read.resolve_revision(opened, "tip") == expected[-1]
        with pytest.raises(RevisionNotFound):
            read.resolve_revision(opened, str(len(expected)))


@pytest.mark.parametrize("branch", ["master", "dev", "topic/a", "topic/b", "x", "y"])
def test_branch_listings_follow_git_log(dag_repos: list[Path], branch: str) -> None:
    for path in dag_repos:
        with read.open_repo(path) as opened:
            got = [item["raw_id"] for item in read.list_changesets(opened, branch_name=branch)]
        assert got == git_log(path, f"refs/heads/{branch}")


@pytest.mark.parametrize("rev", [None, "", "tip", "HEAD", "head", -1])
def test_tip_names_mean_the_newest_commit(repo: Repo, sample: SampleRepo, rev: object) -> None:
    assert read.resolve_revision(repo, rev) == rev_list(sample.path)[-1] == sample.commits["c5"]


def test_head_means_the_newest_commit_not_the_head_ref(writable_sample: SampleRepo) -> None:
    git(writable_sample.path, "symbolic-ref", "HEAD", "refs/heads/skew")
    with read.open_repo(writable_sample.path) as opened:
        assert read.resolve_revision(opened, "HEAD") == writable_sample.commits["c5"]


def test_digit_strings_shorter_than_12_are_indexes(repo: Repo, sample: SampleRepo) -> None:
    order = rev_list(sample.path)
    assert read.resolve_revision(repo, "0") == order[0] == sample.commits["c1"]
    assert read.resolve_revision(repo, "00003") == order[3]
    assert read.resolve_revision(repo, 4) == order[4]
    assert read.resolve_revision(repo, "2") == order[2] != sample.commits["c1"]  # not branch "2"
    for rev in ("99999999999", "000000000000", "-2", "0x1", "٣", True, 2.5, [], -5):
        with pytest.raises(RevisionNotFound):
            read.resolve_revision(repo, rev)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rev", "git_rev"),
    [
        ("master", "refs/heads/master"),
        ("feature", "refs/heads/feature"),
        ("skew", "refs/heads/skew"),
        ("same", "same^{commit}"),  # git, like repohost, prefers the tag
        ("v0.1", "v0.1^{commit}"),
        ("v1.0", "v1.0^{commit}"),
        ("nested", "nested^{commit}"),
        ("upstream", "refs/remotes/origin/upstream"),
    ],
)
def test_ref_names_resolve_like_git(repo: Repo, sample: SampleRepo, rev: str, git_rev: str) -> None:
    assert read.resolve_revision(repo, rev) == git(sample.path, "rev-parse", git_rev).strip()


def test_refs_naming_no_commit_and_unknown_names(repo: Repo) -> None:
    for rev in ("tree-tag", "origin/upstream", "refs/heads/master", "missing", "mast", "\udc80"):
        with pytest.raises(RevisionNotFound):
            read.resolve_revision(repo, rev)


def test_full_ids_must_be_reachable_commits(writable_sample: SampleRepo) -> None:
    path = writable_sample.path
    c1 = writable_sample.commits["c1"]
    tree = git(path, "rev-parse", f"{c1}^{{tree}}").strip()
    blob = git(path, "rev-parse", f"{c1}:README.md").strip()
    dangling = commit_tree(path, tree, "unreachable", 0)
    with read.open_repo(path) as opened:
        for sha in rev_list(path):
            assert read.resolve_revision(opened, sha) == sha
        assert read.resolve_revision(opened, c1.upper()) == c1
        for rev in (c1[:12], c1[:39], tree, blob, dangling, "f" * 40):
            with pytest.raises(RevisionNotFound):
                read.resolve_revision(opened, rev)


def git_refs(path: Path) -> list[tuple[bytes, bytes]]:
    listing = git(path, "for-each-ref", "--format=%(refname) %(objectname)")
    refs = [tuple(line.encode().split()) for line in listing.splitlines()]
    head = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=path, capture_output=True
    )
    if head.returncode == 0:
        refs.append((b"HEAD", head.stdout.strip()))
    return sorted(refs)


@pytest.mark.parametrize("which", ["sample", "sample_packed"])
def test_refs_are_read_as_git_reads_them(request: pytest.FixtureRequest, which: str) -> None:
    path = request.getfixturevalue(which).path
    with read.open_repo(path) as opened:
        assert list(read._refs_state(opened)) == git_refs(path)


def test_loose_refs_override_packed_ones(writable_sample: SampleRepo) -> None:
    path = writable_sample.path
    c1 = writable_sample.commits["c1"]
    assert "refs/heads/feature" in (path / "packed-refs").read_text()
    git(path, "update-ref", "refs/heads/feature", c1)
    git(path, "update-ref", "-d", "refs/heads/skew")
    (path / "refs" / "heads" / "master.lock").write_text("garbage\n")
    git(path, "symbolic-ref", "refs/heads/dangling", "refs/heads/nowhere")
    with read.open_repo(path) as opened:
        assert list(read._refs_state(opened)) == git_refs(path)
        assert read.resolve_revision(opened, "feature") == c1
        assert "skew" not in read.branches(opened) and "dangling" not in read.branches(opened)
        assert read.resolve_revision(opened, "master") == writable_sample.commits["c5"]


def test_the_cache_follows_ref_changes(writable_sample: SampleRepo) -> None:
    path = writable_sample.path
    with read.open_repo(path) as opened:
        assert read.resolve_revision(opened, "tip") == writable_sample.commits["c5"]
    tree = git(path, "rev-parse", "master^{tree}").strip()
    newer = commit_tree(path, tree, "newer", 9999, writable_sample.commits["c5"])
    git(path, "update-ref", "refs/heads/later", newer)
    with read.open_repo(path) as opened:
        assert read.resolve_revision(opened, "tip") == newer
        assert read.resolve_revision(opened, "10") == newer
        assert read.last_changeset(opened)["revision"] == 10
    git(path, "update-ref", "-d", "refs/heads/later")
    with read.open_repo(path) as opened:
        assert read.resolve_revision(opened, "tip") == writable_sample.commits["c5"]


def test_a_detached_head_counts_and_a_dangling_head_does_not_empty(
    writable_sample: SampleRepo,
) -> None:
    path = writable_sample.path
    tree = git(path, "rev-parse", "master^{tree}").strip()
    detached = commit_tree(path, tree, "only HEAD", 50)
    git(path, "update-ref", "--no-deref", "HEAD", detached)
    with read.open_repo(path) as opened:
        assert detached in rev_list(path)
        assert [read.resolve_revision(opened, str(i)) for i in range(11)] == rev_list(path)
    git(path, "symbolic-ref", "HEAD", "refs/heads/unborn")
    with read.open_repo(path) as opened:
        assert read.resolve_revision(opened, "tip") == rev_list(path)[-1]


def test_an_empty_repository(empty_repo: Path) -> None:
    with read.open_repo(empty_repo) as opened:
        for rev in ("tip", "0", "master", "f" * 40):
            with pytest.raises(EmptyRepository):
                read.resolve_revision(opened, rev)
        assert read.last_changeset(opened) == {
            "short_id": "000000000000",
            "raw_id": "0" * 40,
            "revision": -1,
            "message": "",
            "date": datetime(1970, 1, 1),
            "author": "",
        }
        with pytest.raises(EmptyRepository):
            read.list_changesets(opened)
        with pytest.raises(BranchNotFound):
            read.list_changesets(opened, branch_name="master")
        assert read.branches(opened) == {} and read.tags(opened) == {}


# -- nodes -------------------------------------------------------------------------------------


ROOT_DIRS = ["a", "a-b", "docs", "img", "src", "vendor", "ünï cödé", "docs/api"]
ROOT_FILES = [
    "README.md",
    "a.txt",
    "feature.txt",
    "file with spaces.txt",
    "link",
    "noeol.txt",
    "tc",
    "日本語.txt",
    "a/y.txt",
    "a-b/x.txt",
    "docs/intro.rst",
    "docs/api/ref.rst",
    "img/logo.png",
    "src/main.py",
    "ünï cödé/naïve.txt",
]


def test_list_nodes_at_the_root_in_kallithea_order(repo: Repo, sample: SampleRepo) -> None:
    nodes = read.list_nodes(repo, sample.commits["c5"], "/")
    assert nodes == [{"name": d, "type": "dir"} for d in ROOT_DIRS] + [
        {"name": f, "type": "file"} for f in ROOT_FILES
    ]


@pytest.mark.parametrize("root_path", ["", "/", None, "//"])
def test_root_path_spellings_of_the_root(repo: Repo, sample: SampleRepo, root_path: str) -> None:
    assert [n["name"] for n in read.list_nodes(repo, sample.commits["c5"], root_path)] == [
        *ROOT_DIRS,
        *ROOT_FILES,
    ]


@pytest.mark.parametrize("root_path", ["docs", "/docs", "docs/", "//docs//"])
def test_list_nodes_below_a_directory(repo: Repo, sample: SampleRepo, root_path: str) -> None:
    assert read.list_nodes(repo, sample.commits["c5"], root_path) == [
        {"name": "docs/api", "type": "dir"},
        {"name": "docs/intro.rst", "type": "file"},
        {"name": "docs/api/ref.rst", "type": "file"},
    ]


def test_list_nodes_below_unicode_and_nested_directories(repo: Repo, sample: SampleRepo) -> None:
    tip = sample.commits["c5"]
    assert read.list_nodes(repo, tip, "ünï cödé") == [
        {"name": "ünï cödé/naïve.txt", "type": "file"}
    ]
    assert read.list_nodes(repo, tip, "docs/api") == [{"name": "docs/api/ref.rst", "type": "file"}]
    assert read.list_nodes(repo, tip, "vendor") == []


@pytest.mark.parametrize(
    "root_path",
    [
        "missing",
        "README.md",
        "link",
        "vendor/sub",
        "link/x",
        "..",
        "../",
        "docs/..",
        "docs/../docs",
        "docs/./api",
        "./docs",
        "docs//api",
        "docs\\api",
        "a\x00",
        "C:\\docs",
        "DOCS",
        "\ud800",
    ],
)
def test_list_nodes_refuses_bad_paths(repo: Repo, sample: SampleRepo, root_path: str) -> None:
    with pytest.raises(PathNotFound):
        read.list_nodes(repo, sample.commits["c5"], root_path)


def test_list_nodes_needs_a_commit_id(repo: Repo, sample: SampleRepo) -> None:
    tree = git(sample.path, "rev-parse", "master^{tree}").strip()
    for commit in (tree, "f" * 40, "tip", "zz", sample.commits["c5"][:12]):
        with pytest.raises(RevisionNotFound):
            read.list_nodes(repo, commit, "")
    assert read.list_nodes(repo, sample.commits["c5"].upper(), "docs/api")


@pytest.mark.parametrize("which", ["sample", "sample_packed"])
def test_list_nodes_matches_ls_tree_for_every_commit(
    request: pytest.FixtureRequest, which: str
) -> None:
    path = request.getfixturevalue(which).path
    with read.open_repo(path) as opened:
        for commit in rev_list(path):
            nodes = read.list_nodes(opened, commit)
            dirs = [n["name"] for n in nodes if n["type"] == "dir"]
            files = [n["name"] for n in nodes if n["type"] == "file"]
            assert nodes == [{"name": d, "type": "dir"} for d in dirs] + [
                {"name": f, "type": "file"} for f in files
            ]
            assert (set(dirs), set(files)) == tree_entries(path, commit)
            assert len(dirs) == len(set(dirs)) and len(files) == len(set(files))


def test_list_nodes_on_the_900_file_repository(big_repo: Path) -> None:
    with read.open_repo(big_repo) as opened:
        nodes = read.list_nodes(opened, read.resolve_revision(opened, "tip"), "/")
    tops = [f"dir{t:02d}" for t in range(30)]
    expected_dirs = tops + [f"{top}/sub{s}" for top in tops for s in range(3)]
    expected_files = [
        f"{top}/sub{s}/file{f}.txt" for top in tops for s in range(3) for f in range(10)
    ]
    assert [n["name"] for n in nodes] == expected_dirs + expected_files
    assert [n["type"] for n in nodes] == ["dir"] * 120 + ["file"] * 900
    assert (set(expected_dirs), set(expected_files)) == tree_entries(big_repo, "master")


# -- changesets ----------------------------------------------------------------------------------


def test_last_changeset(repo: Repo, sample: SampleRepo) -> None:
    c5 = sample.commits["c5"]
    result = read.last_changeset(repo)
    assert list(result) == ["short_id", "raw_id", "revision", "message", "date", "author"]
    assert result == {
        "short_id": c5[:12],
        "raw_id": c5,
        "revision": 9,
        "message": "Latin-1 message: café\n",
        "date": utc(700),
        "author": "Alice Example <alice@example.com>",
    }


def test_dates_are_utc_whatever_the_commit_timezone(repo: Repo, sample: SampleRepo) -> None:
    for key, offset in (("c1", 0), ("c2", 100), ("skew", -1000)):
        assert read.changeset_summary(repo, sample.commits[key])["date"] == utc(offset)
        assert (
            int(git(sample.path, "log", "-1", "--format=%ct", sample.commits[key])) == T0 + offset
        )


def test_changeset_summary_shape(repo: Repo, sample: SampleRepo) -> None:
    c4 = sample.commits["c4"]
    summary = read.changeset_summary(repo, c4)
    assert summary == {
        "short_id": c4[:12],
        "raw_id": c4,
        "revision": rev_list(sample.path).index(c4),
        "message": "Ünïcode message ✓\n\nwith a body\n",
        "date": utc(400),
        "author": "Jöhn Dœ <john@example.com>",
    }
    with_files = read.changeset_summary(repo, c4, with_file_list=True)
    assert list(with_files) == [*summary, "added", "changed", "removed"]
    assert with_files["changed"] == ["src/main.py"]


def test_changeset_detail_shape(repo: Repo, sample: SampleRepo) -> None:
    merge = sample.commits["merge"]
    detail = read.changeset_detail(repo, "v1.0")
    assert detail == {
        "raw_id": merge,
        "short_id": merge[:12],
        "revision": rev_list(sample.path).index(merge),
        "date": utc(600),
        "message": "Merge feature\n",
        "author": {"name": "Alice Example", "email": "alice@example.com"},
        "added": ["feature.txt"],
        "changed": ["a.txt", "src/main.py"],
        "removed": [],
    }
    assert list(detail) == [
        "raw_id",
        "short_id",
        "revision",
        "date",
        "message",
        "author",
        "added",
        "changed",
        "removed",
    ]
    assert read.changeset_detail(repo, sample.commits["c4"])["author"] == {
        "name": "Jöhn Dœ",
        "email": "john@example.com",
    }
    with pytest.raises(RevisionNotFound):
        read.changeset_detail(repo, "no-such-revision")


@pytest.mark.parametrize(
    ("key", "added", "changed", "removed"),
    [
        ("c2", ["link", "vendor/sub"], ["README.md", "src/main.py"], []),
        ("c3", ["docs/intro.rst"], [], ["docs/index.rst", "old.txt"]),
        ("c5", [], ["img/logo.png", "tc"], []),
    ],
)
def test_file_lists_of_renames_mode_and_type_changes(
    repo: Repo, sample: SampleRepo, key: str, added: list, changed: list, removed: list
) -> None:
    detail = read.changeset_detail(repo, sample.commits[key])
    assert (detail["added"], detail["changed"], detail["removed"]) == (added, changed, removed)


def test_file_lists_match_git_diff_tree_against_every_parent(
    repo: Repo, sample: SampleRepo
) -> None:
    for commit in rev_list(sample.path):
        parents = git(sample.path, "rev-list", "--parents", "-n1", commit).split()[1:]
        detail = read.changeset_detail(repo, commit)
        if not parents:
            files = [n["name"] for n in read.list_nodes(repo, commit) if n["type"] == "file"]
            assert detail["added"] == files
            assert (detail["changed"], detail["removed"]) == ([], [])
            continue
        expected: dict[str, set[str]] = {"added": set(), "changed": set(), "removed": set()}
        for parent in parents:
            for key, paths in name_status(sample.path, parent, commit).items():
                expected[key] |= paths
        for key, paths in expected.items():
            assert detail[key] == sorted(paths), (commit, key)


def test_root_commit_lists_its_files_in_walk_order(repo: Repo, sample: SampleRepo) -> None:
    added = read.changeset_detail(repo, sample.commits["c1"])["added"]
    assert added[:3] == ["README.md", "a.txt", "file with spaces.txt"]
    assert added.index("noeol.txt") < added.index("a/y.txt")  # root files before subdirectories


# -- get_changesets ------------------------------------------------------------------------------


def ids(items: list[dict]) -> list[str]:
    return [item["raw_id"] for item in items]


def test_list_changesets_default_and_reverse(repo: Repo, sample: SampleRepo) -> None:
    everything = git_log(sample.path, "--all")
    assert everything == rev_list(sample.path)
    items = read.list_changesets(repo)
    assert ids(items) == everything
    assert [item["revision"] for item in items] == list(range(10))
    assert ids(read.list_changesets(repo, reverse=True)) == everything[::-1]
    assert list(items[0]) == ["short_id", "raw_id", "revision", "message", "date", "author"]


@pytest.mark.parametrize("count", [1, 3, 10, 50])
def test_max_revisions_keeps_the_newest(repo: Repo, sample: SampleRepo, count: int) -> None:
    expected = git_log(sample.path, f"--max-count={count}", "--all")
    assert ids(read.list_changesets(repo, max_revisions=count)) == expected
    assert ids(read.list_changesets(repo, max_revisions=count, reverse=True)) == expected[::-1]


def test_max_revisions_zero_or_negative_means_all(repo: Repo, sample: SampleRepo) -> None:
    for count in (0, -1, None):
        assert len(read.list_changesets(repo, max_revisions=count)) == 10


def test_branch_listing(repo: Repo, sample: SampleRepo) -> None:
    items = read.list_changesets(repo, branch_name="feature", max_revisions=2)
    assert ids(items) == git_log(sample.path, "--max-count=2", "refs/heads/feature")
    everything = rev_list(sample.path)
    assert [item["revision"] for item in items] == [everything.index(i) for i in ids(items)]
    with pytest.raises(BranchNotFound):
        read.list_changesets(repo, branch_name="v1.0")  # a tag is not a branch
    with pytest.raises(BranchNotFound):
        read.list_changesets(repo, branch_name="upstream")


def test_start_and_end_are_inclusive_revisions(repo: Repo, sample: SampleRepo) -> None:
    order = rev_list(sample.path)
    c = sample.commits
    start, end = order.index(c["c2"]), order.index(c["merge"])
    assert ids(read.list_changesets(repo, start=c["c2"], end="v1.0")) == order[start : end + 1]
    assert ids(read.list_changesets(repo, start="1", end="3")) == order[1:4]
    assert ids(read.list_changesets(repo, start="3", end="3")) == order[3:4]
    assert ids(read.list_changesets(repo, start="", end="2")) == order[:3]
    assert ids(read.list_changesets(repo, end="")) == order  # '' is the tip
    assert ids(read.list_changesets(repo, start="5", reverse=True)) == order[5:][::-1]
    with pytest.raises(InvalidRange):
        read.list_changesets(repo, start="4", end="2")
    with pytest.raises(RevisionNotFound):
        read.list_changesets(repo, start="nope")


def test_start_and_end_outside_the_selection_mean_first_and_last(
    repo: Repo, sample: SampleRepo
) -> None:
    feature = git_log(sample.path, "refs/heads/feature")
    c = sample.commits
    assert ids(read.list_changesets(repo, start=c["skew"], branch_name="feature")) == feature
    assert ids(read.list_changesets(repo, end=c["skew"], branch_name="feature")) == feature
    assert (
        ids(read.list_changesets(repo, start=c["c3"], end=c["tie"], branch_name="feature"))
        == (feature[feature.index(c["c3"]) :])
    )


def test_date_bounds_are_inclusive(repo: Repo, sample: SampleRepo) -> None:
    since, until = T0 + 200, T0 + 600
    expected = git_log(sample.path, f"--since=@{since}", f"--until=@{until}", "--all")
    items = read.list_changesets(repo, start_date=utc(200), end_date=utc(600))
    assert ids(items) == expected
    c = sample.commits
    assert set(expected) == {c["c3"], c["f1"], c["c4"], c["f2"], c["merge"]}
    assert ids(read.list_changesets(repo, start_date=utc(650))) == [c["c5"]]
    aware = datetime.fromtimestamp(T0 + 650, UTC)
    assert ids(read.list_changesets(repo, start_date=aware)) == [c["c5"]]
    assert ids(read.list_changesets(repo, end_date=utc(-1))) == [c["skew"]]


def test_list_changesets_with_file_lists(repo: Repo, sample: SampleRepo) -> None:
    items = read.list_changesets(repo, with_file_list=True)
    for item in items:
        detail = read.changeset_detail(repo, item["raw_id"])
        assert (item["added"], item["changed"], item["removed"]) == (
            detail["added"],
            detail["changed"],
            detail["removed"],
        )


# -- refs ------------------------------------------------------------------------------------------


def test_branches_and_tags(repo: Repo, sample: SampleRepo) -> None:
    heads = git(
        sample.path, "for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads"
    )
    expected_branches = dict(line.split() for line in heads.splitlines())
    assert read.branches(repo) == expected_branches
    assert list(read.branches(repo)) == sorted(expected_branches)

    names = git(sample.path, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags").split()
    expected_tags = {
        name: git(sample.path, "rev-parse", f"refs/tags/{name}^{{}}").strip() for name in names
    }
    assert read.tags(repo) == expected_tags
    assert list(read.tags(repo)) == sorted(expected_tags, reverse=True)
    assert read.tags(repo)["nested"] == sample.commits["merge"]
