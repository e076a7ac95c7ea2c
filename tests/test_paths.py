"""Every path trick stays inside its repository (issue 7, "Paths").

A marker file is planted outside the repository root, next to it, and a
private repository holds another; symbolic links committed into a repository
point at the marker, at ``/etc/passwd`` and up the tree. Then every view
(raw, rawfile, changesets, archive, feeds), ``get_repo_nodes``, gists and the
methods that take repository and group names are asked for paths spelled with
every trick: ``..``, ``%2e%2e``, ``%2f``, doubled slashes, backslashes, NUL,
absolute paths, fullwidth and other look-alike dots, combining dots, overlong
UTF-8, very long paths. No answer may carry a marker or ``/etc/passwd``'s
content, nothing may be created or changed outside the root, and a refused
call leaves the root as it was.

The views are asked over real HTTP through the local server and, for what a
local HTTP server could not carry (very long paths), through their handlers.
"""

from __future__ import annotations

import io
import secrets
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git
from tests.support.web import Page, http_get, lambda_get
from tests.test_bad_input import root_listing, staging_leftovers

PASSWD_LINE = b"root:x:0:"


def push_tree(bare: Path, files: dict[str, str], links: dict[str, str], when: int) -> str:
    """Commit ``files`` and symbolic links ``{name: target}`` as the next commit; push it."""
    work = bare.parent / f".work-{secrets.token_hex(4)}"
    work.mkdir()
    try:
        git(work, "init", "-q")
        if git(work, "--git-dir", str(bare), "for-each-ref", "refs/heads/master"):
            git(work, "fetch", "-q", str(bare), "master:refs/remotes/origin/master")
            git(work, "checkout", "-q", "-B", "master", "refs/remotes/origin/master")
        for name, content in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        for name, target in links.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"commit at {when}", when=when)
        git(work, "push", "-q", str(bare), "master:master")
        return git(work, "rev-parse", "HEAD").strip()
    finally:
        shutil.rmtree(work)


@dataclass
class Site:
    api: Api
    base: str  # the local server
    outside: Path  # the marker file next to the repository root
    marker: bytes  # its content
    hidden_marker: bytes  # the content of a file in the private repository "hidden"
    outsider: str  # key of a user who may read "app" but not "hidden"
    commits: list[str]

    def secrets(self) -> tuple[bytes, ...]:
        return (self.marker, self.hidden_marker, PASSWD_LINE)

    def assert_clean(self, body: bytes, what: object) -> None:
        for secret in self.secrets():
            assert secret not in body, (what, secret)


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    from repohost.config import get_settings

    folder = tmp_path / "archive-cache"
    monkeypatch.setenv("REPOHOST_ARCHIVE_CACHE_DIR", str(folder))
    monkeypatch.delenv("REPOHOST_ARCHIVE_BUCKET", raising=False)
    get_settings.cache_clear()
    yield folder
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def site(lambda_api: Api, local_server: str, cache_dir: Path) -> Iterator[Site]:
    api = lambda_api
    root = repos_root()
    outside = root.parent / "outside-secret.txt"
    marker = f"OUTSIDE-{secrets.token_hex(16)}".encode()
    outside.write_bytes(marker)
    hidden_marker = f"HIDDEN-{secrets.token_hex(16)}".encode()
    api.call("create_repo", repo_name="app")
    api.call("create_repo", repo_name="hidden", private=True)
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo", repo_name="grp/inner")
    push_tree(root / "hidden", {"secret.txt": hidden_marker.decode()}, {}, 1_600_000_000)
    push_tree(root / "grp" / "inner", {"README": "inner\n"}, {}, 1_600_000_000)
    first = push_tree(
        root / "app",
        {"README": "hello\n", "src/a.py": "print('a')\n", "docs/guide.txt": "guide\n"},
        {},
        1_600_000_000,
    )
    second = push_tree(
        root / "app",
        {"notes.txt": "notes\n"},
        {
            "passwd": "/etc/passwd",
            "up": "../../..",
            "updir": "../../../..",
            "secretlink": str(outside),
            "rel": "../../outside-secret.txt",
            "hiddenlink": "../hidden/objects",
            "docs/back": "..",
        },
        1_600_000_060,
    )
    for name in ("app", "hidden", "grp/inner"):
        api.call("invalidate_cache", repoid=name)
    _uid, outsider = api.new_user("outsider")
    yield Site(api, local_server, outside, marker, hidden_marker, outsider, [first, second])
    outside.unlink(missing_ok=True)


def outside_listing() -> list[str]:
    """What sits next to the repository root (a path escaping the root would land here)."""
    parent = repos_root().parent
    return sorted(p.name for p in parent.iterdir())


# --- the views --------------------------------------------------------------------------------

#: File paths after ``raw/<rev>/`` as they are sent (already percent-encoded).
FILE_TRICKS = [
    "../../outside-secret.txt",
    "..%2f..%2foutside-secret.txt",
    "%2e%2e/%2e%2e/outside-secret.txt",
    "%2e%2e%2f%2e%2e%2foutside-secret.txt",
    "%2E%2E%2F%2E%2E%2Foutside-secret.txt",
    "..%5c..%5coutside-secret.txt",
    "..\\..\\outside-secret.txt",
    "%252e%252e/%252e%252e/outside-secret.txt",
    "....//....//outside-secret.txt",
    "..;/..;/outside-secret.txt",
    "src/../../../outside-secret.txt",
    "src/%2e%2e/%2e%2e/%2e%2e/outside-secret.txt",
    "src/./a.py",
    "./README",
    "src//a.py",
    "src%2f%2fa.py",
    "README%00",
    "README%00.txt",
    "%00",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "//etc/passwd",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/outside-secret.txt",
    "%e0%80%ae%e0%80%ae/outside-secret.txt",
    "%c0%af..%c0%afoutside-secret.txt",
    "%ef%bc%8e%ef%bc%8e/%ef%bc%8e%ef%bc%8e/outside-secret.txt",
    "%e2%80%a4%e2%80%a4/%e2%80%a4%e2%80%a4/outside-secret.txt",
    "%e2%80%a5/%e2%80%a5/outside-secret.txt",
    ".%cc%87./.%cc%87./outside-secret.txt",
    "%ef%bc%8f..%ef%bc%8f..%ef%bc%8foutside-secret.txt",
    "up/outside-secret.txt",
    "up/etc/passwd",
    "updir/etc/passwd",
    "docs/back/README",
    "hiddenlink/..",
    "..",
    "%2e",
    ".",
]


def _abs_marker(site: Site) -> str:
    return str(site.outside)


def get(site: Site, path: str, **kw: Any) -> Page:
    page = http_get(site.base, path, **kw)
    site.assert_clean(page.body, path)
    return page


@pytest.mark.parametrize("view", ["raw", "rawfile"])
def test_file_views_never_read_outside_the_repository(site: Site, view: str) -> None:
    before, beside = root_listing(), outside_listing()
    tricks = [*FILE_TRICKS, _abs_marker(site), _abs_marker(site).lstrip("/")]
    for rev in ("tip", site.commits[1]):
        for trick in tricks:
            path = f"/app/{view}/{rev}/{trick}"
            for key in (None, site.outsider) if view == "raw" else (None,):
                page = get(site, path, **({} if key is None else {"bearer": key}))
                assert page.status == 404, (path, page.status, page.body[:200])
    assert root_listing() == before and outside_listing() == beside


def test_symbolic_links_are_served_as_their_link_text(site: Site) -> None:
    expected = {
        "passwd": b"/etc/passwd",
        "up": b"../../..",
        "secretlink": str(site.outside).encode(),
        "rel": b"../../outside-secret.txt",
        "hiddenlink": b"../hidden/objects",
        "docs/back": b"..",
    }
    for name, target in expected.items():
        for view in ("raw", "rawfile"):
            page = get(site, f"/app/{view}/tip/{name}")
            assert (page.status, page.body) == (200, target), (view, name)


def test_very_long_paths_are_404_not_500(site: Site) -> None:
    from repohost.web.changesets import handle_event as changesets
    from repohost.web.files import handle_event as files

    long_paths = [
        "/app/raw/tip/" + "a/" * 5000 + "README",
        "/app/raw/tip/" + "x" * 70000,
        "/app/raw/tip/" + "../" * 5000 + "outside-secret.txt",
        "/app/raw/tip/" + "%2e%2e%2f" * 5000 + "outside-secret.txt",
        "/" + "a/" * 3000 + "raw/tip/README",
        "/app/raw/" + "r" * 70000 + "/README",
    ]
    for path in long_paths:
        page = lambda_get(files, path)
        site.assert_clean(page.body, path[:80])
        assert page.status == 404, (path[:80], page.status)
    page = lambda_get(changesets, "/app/changeset-diff/" + "f" * 70000)
    assert page.status == 404


#: Repository names (the part before the view keyword) spelled to step elsewhere.
NAME_TRICKS = [
    "/%2e%2e/raw/tip/outside-secret.txt",
    "/..%2f..%2f/raw/tip/outside-secret.txt",
    "/%2e%2e%2f%2e%2e/raw/tip/outside-secret.txt",
    "/app/..%2fhidden/raw/tip/secret.txt",
    "/app%2f..%2fhidden/raw/tip/secret.txt",
    "/app/%2e%2e/hidden/raw/tip/secret.txt",
    "/grp/..%2fhidden/raw/tip/secret.txt",
    "/grp/inner/..%2f..%2fhidden/raw/tip/secret.txt",
    "/hidden%00/raw/tip/secret.txt",
    "/hidden%2f/raw/tip/secret.txt",
    "/HIDDEN/raw/tip/secret.txt",
    "/hidden%20/raw/tip/secret.txt",
    "/%ef%bd%88idden/raw/tip/secret.txt",
    "/_2%2f..%2fhidden/raw/tip/secret.txt",
    "/_0000000000002/raw/tip/secret.txt",
    "/_-1/raw/tip/secret.txt",
    "/%c0%ae%c0%ae/raw/tip/outside-secret.txt",
    "//hidden/raw/tip/secret.txt",
    "/./hidden/raw/tip/secret.txt",
    "/.rc_gist_store/1/raw/tip/f.txt",
    "/.trash/raw/tip/x",
]


def test_repository_names_in_urls_never_step_elsewhere(site: Site) -> None:
    before, beside = root_listing(), outside_listing()
    for path in NAME_TRICKS:
        for key in (None, site.outsider):
            page = get(site, path, **({} if key is None else {"bearer": key}))
            assert page.status in (403, 404), (path, page.status)
    assert root_listing() == before and outside_listing() == beside


CHANGESET_TRICKS = [
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e",
    "..",
    "HEAD%00",
    "tip%00",
    "refs%2fheads%2f..%2f..%2f..%2fHEAD",
    "..%2fhidden%2fHEAD",
    "%c0%ae%c0%ae",
    "tip...%2e%2e",
    "...",
    "%ef%bc%8e%ef%bc%8e",
]


@pytest.mark.parametrize(
    "view", ["changeset-diff", "raw-changeset", "changeset-patch", "changeset-download"]
)
def test_changeset_views_resolve_revisions_only_inside(site: Site, view: str) -> None:
    before = root_listing()
    for trick in CHANGESET_TRICKS:
        page = get(site, f"/app/{view}/{trick}")
        assert page.status == 404, (view, trick, page.status)
    # The symbolic links of the second commit are in the diff as their link text only.
    page = get(site, f"/app/changeset-diff/{site.commits[1]}")
    assert page.status == 200 and b"+/etc/passwd" in page.body
    assert root_listing() == before


ARCHIVE_TRICKS = [
    "..%2f..%2foutside-secret.txt.zip",
    "%2e%2e%2f%2e%2e%2foutside-secret.tar.gz",
    "..%5c..%5cx.tar",
    "tip.zip%00.txt",
    "tip%00.zip",
    "%2e%2e.tgz",
    "tip%2f..%2f..%2fx.zip",
    "..%2f..%2f..%2f..%2ftmp%2fevil.tar.bz2",
    "%2ftmp%2fevil.zip",
    "%c0%ae%c0%ae.zip",
    "%ef%bc%8e%ef%bc%8e.zip",
]


def test_archive_names_never_choose_a_path(site: Site, cache_dir: Path) -> None:
    before, beside = root_listing(), outside_listing()
    for trick in ARCHIVE_TRICKS:
        page = get(site, f"/app/archive/{trick}")
        assert page.status == 404, (trick, page.status)
    assert get(site, "/app/archive/tip.zip/../../x.zip").status == 404
    assert root_listing() == before and outside_listing() == beside
    assert not cache_dir.exists() or not any(p for p in cache_dir.rglob("*") if p.is_file())


def _members(ext: str, data: bytes) -> list[tuple[str, str, bytes]]:
    found = []
    if ext == ".zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                mode = info.external_attr >> 16
                kind = "link" if stat.S_ISLNK(mode) else "dir" if info.is_dir() else "file"
                found.append((info.filename, kind, archive.read(info)))
        return found
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if member.issym() or member.islnk():
                found.append((member.name, "link", member.linkname.encode()))
            elif member.isdir():
                found.append((member.name, "dir", b""))
            else:
                body = tar.extractfile(member)
                found.append((member.name, "file", body.read() if body else b""))
    return found


@pytest.mark.parametrize("ext", [".zip", ".tar", ".tar.gz", ".tar.bz2"])
def test_archives_hold_links_as_links_and_nothing_from_outside(
    site: Site, cache_dir: Path, ext: str
) -> None:
    page = get(site, f"/app/archive/tip{ext}")
    assert page.status == 200
    members = _members(ext, page.body)
    top = f"app-{site.commits[1][:12]}/"
    for name, _kind, data in members:
        assert name.startswith(top) or name == top.rstrip("/"), name
        assert ".." not in Path(name).parts and not name.startswith("/"), name
        site.assert_clean(data, name)
    links = {name[len(top) :]: data for name, kind, data in members if kind == "link"}
    assert links["passwd"] == b"/etc/passwd"
    assert links["secretlink"] == str(site.outside).encode()
    assert links["up"] == b"../../.."
    # What was built went into the cache folder and nowhere else.
    assert all(p.is_relative_to(cache_dir) for p in cache_dir.rglob("*"))


def test_feeds_list_links_without_following_them(site: Site) -> None:
    for kind in ("rss", "atom"):
        page = get(site, f"/app/feed/{kind}")
        assert page.status == 200
        assert b"secretlink" in page.body


# --- get_repo_nodes --------------------------------------------------------------------------

NODE_TRICKS = [
    "..",
    "../..",
    "../hidden",
    "/..",
    "docs/..",
    "docs/../..",
    "docs/../../hidden",
    "./docs",
    "docs/.",
    "docs\\..",
    "..\\..",
    "%2e%2e",
    "..%2f..",
    "/etc",
    "//etc",
    str(Path("/etc")),
    "up",
    "up/",
    "updir/etc",
    "docs/back",
    "docs/back/docs",
    "hiddenlink",
    "．．",
    "․․",
    "‥",
    ".\u0307.",
    "\uff0fetc",
    "a/" * 3000,
    "x" * 100_000,
]


def test_get_repo_nodes_root_path_tricks(site: Site) -> None:
    api = site.api
    before = root_listing()
    failed = "failed to get repo: `app` nodes"
    for trick in NODE_TRICKS:
        for revision in ("tip", site.commits[1]):
            assert (
                api.error("get_repo_nodes", repoid="app", revision=revision, root_path=trick)
                == failed
            ), trick[:60]
    nodes = api.call("get_repo_nodes", repoid="app", revision="tip", root_path="/")
    names = {node["name"]: node["type"] for node in nodes}
    for link in ("passwd", "up", "updir", "secretlink", "rel", "hiddenlink", "docs/back"):
        assert names[link] == "file", link  # a link is listed, never entered
    assert all(".." not in Path(name).parts for name in names)
    assert set(names) >= {"README", "src", "src/a.py", "docs", "docs/guide.txt"}
    for revision in ("../..", "..%2f..", "HEAD/../..", "/etc/passwd", "tip/.."):
        assert api.error("get_repo_nodes", repoid="app", revision=revision, root_path="") == failed
    assert root_listing() == before


def test_changeset_methods_take_no_path_from_revisions(site: Site) -> None:
    api = site.api
    for raw_id in ("../../outside-secret.txt", "..", "/etc/passwd", "tip/..", "．．"):
        assert api.error("get_changeset", repoid="app", raw_id=raw_id) == (
            f"Changeset {raw_id} does not exist"
        )
        error = api.error("get_changesets", repoid="app", start=raw_id)
        assert error == f"Changeset {raw_id} does not exist"
    error = api.error("get_changesets", repoid="app", branch_name="../../../hidden")
    assert error == "branch `../../../hidden` does not exist"


# --- gists ------------------------------------------------------------------------------------

GIST_NAME_TRICKS = [
    "..",
    ".",
    "../x",
    "../../outside-secret.txt",
    "a/b",
    "/abs",
    "\\x",
    "a\\..\\b",
    ".git",
    ".GIT",
    "x\x00y",
    "",
    "\n",
    "x" * 300,
    "é" * 200,
]


def _gist_store() -> list[str]:
    store = repos_root() / ".rc_gist_store"
    return sorted(p.name for p in store.iterdir()) if store.exists() else []


def test_gist_file_names_cannot_name_a_path(site: Site) -> None:
    api = site.api
    before, beside = root_listing(), outside_listing()
    for name in GIST_NAME_TRICKS:
        for gist_type in ("public", "private"):
            error = api.error("create_gist", files={name: {"content": "x"}}, gist_type=gist_type)
            assert error == "failed to create gist", repr(name)
        assert api.error("create_gist", files={"ok.txt": {"content": "x"}, name: {"content": "y"}})
    assert root_listing() == before and outside_listing() == beside
    assert staging_leftovers() == []


def test_look_alike_gist_names_are_plain_names_inside_the_gist(site: Site) -> None:
    """Names that only look like dots or slashes are stored as they are, inside the gist."""
    api = site.api
    beside = outside_listing()
    names = ["．．", "․․", "‥", ".\u0307.", "\uff0fetc", "...", "..a", "%2e%2e", "%2f"]
    gist = api.call("create_gist", files={n: {"content": n} for n in names})["gist"]
    bare = repos_root() / ".rc_gist_store" / gist["access_id"]
    listed = git(bare, "ls-tree", "-z", "--name-only", "HEAD").split("\0")
    assert sorted(filter(None, listed)) == sorted(names)
    assert outside_listing() == beside
    assert _gist_store() == [gist["access_id"]]


def test_gist_ids_cannot_name_a_path(site: Site) -> None:
    api = site.api
    api.call("create_gist", files={"f.txt": {"content": "x"}})
    before = root_listing()
    for gistid in ("../app", "..", "../../outside-secret.txt", "/etc", "1/../..", "%2e%2e"):
        assert api.error("get_gist", gistid=gistid) == f"gist `{gistid}` does not exist"
        assert api.error("delete_gist", gistid=gistid) == f"gist `{gistid}` does not exist"
    assert root_listing() == before


# --- repository and group names ---------------------------------------------------------------

NAME_VALUES = [
    "..",
    ".",
    "../escape",
    "../../escape",
    "a/../../escape",
    "grp/../../escape",
    "grp/../app",
    "grp/./x",
    "./x",
    "/abs",
    "/tmp/escape",
    "x/",
    "grp//x",
    "grp\\..\\..\\escape",
    "..\\escape",
    "%2e%2e",
    "%2e%2e%2fescape",
    "..%2fescape",
    "．．",
    "．．/escape",
    "\u2024\u2024",
    "\u2025",
    ".\u0307.",
    "\uff0fescape",
    "x\u0000y",
    ".hidden",
    ".rc_gist_store",
    ".trash",
    ".tmp",
    "-rf",
    "a" * 300,
    "/".join(["d"] * 200),
    "grp/" + "b" * 250,
    "\u202eevil",
]


def _names_refused(site: Site, call: Callable[[str], str], label: str) -> None:
    before, beside = root_listing(), outside_listing()
    for name in NAME_VALUES:
        error = call(name)
        assert error, (label, name)
        assert root_listing() == before, (label, name)
        assert outside_listing() == beside, (label, name)
    assert staging_leftovers() == []


def test_create_repo_refuses_every_path_trick(site: Site) -> None:
    api = site.api
    _names_refused(site, lambda n: api.error("create_repo", repo_name=n), "create_repo")


def test_fork_repo_refuses_every_path_trick(site: Site) -> None:
    api = site.api
    _names_refused(site, lambda n: api.error("fork_repo", repoid="app", fork_name=n), "fork_repo")


def test_update_repo_refuses_every_path_trick(site: Site) -> None:
    api = site.api
    _names_refused(site, lambda n: api.error("update_repo", repoid="app", name=n), "name")
    _names_refused(site, lambda n: api.error("update_repo", repoid="app", group=n), "group")


def test_repo_group_methods_refuse_every_path_trick(site: Site) -> None:
    api = site.api
    _names_refused(site, lambda n: api.error("create_repo_group", group_name=n), "create")
    _names_refused(
        site,
        lambda n: api.error("create_repo_group", group_name="x", parent=n),
        "create in parent",
    )
    _names_refused(
        site, lambda n: api.error("update_repo_group", repogroupid="grp", group_name=n), "rename"
    )
    _names_refused(
        site, lambda n: api.error("update_repo_group", repogroupid="grp", parent=n), "move"
    )


def test_names_that_look_like_paths_address_nothing(site: Site) -> None:
    """Lookups by name compare names; a path spelling never reaches a repository."""
    api = site.api
    for name in ("app/", "/app", "./app", "grp/../app", "grp/inner/..", "APP/..", "app\x00"):
        envelope = api.envelope("get_repo", {"repoid": name})
        assert envelope["result"] is None, name
    for name in ("grp/", "/grp", "grp/.", "grp/inner/.."):
        assert api.error("get_repo_group", repogroupid=name) == (
            f"repository group `{name}` does not exist"
        )


REPO_METHODS = (
    ("get_repo", {}),
    ("get_repo_nodes", {"revision": "tip", "root_path": ""}),
    ("get_changesets", {}),
    ("get_changeset", {"raw_id": "tip"}),
    ("invalidate_cache", {}),
    ("fork_repo", {"fork_name": "stolen"}),
    ("pull", {}),
    ("lock", {"locked": True}),
    ("update_repo", {"description": "still here"}),
    ("update_repo", {"name": "renamed"}),
    ("set_webhook_secret", {}),
)
REPO_VIEWS = (
    "/linked/raw/tip/marker.txt",
    "/linked/rawfile/tip/marker.txt",
    "/linked/changeset-diff/tip",
    "/linked/changeset-patch/tip",
    "/linked/changeset-download/tip",
    "/linked/archive/tip.zip",
    "/linked/archive/tip.tar.gz",
    "/linked/feed/rss",
    "/linked/feed/atom",
)


def swap_directory(name: str, swap: str, target: Path) -> None:
    root = repos_root()
    shutil.rmtree(root / name)
    if swap == "symlink":
        (root / name).symlink_to(target)


@pytest.mark.parametrize("swap", ["symlink", "missing"])
def test_a_repository_directory_swapped_or_gone_is_never_followed(site: Site, swap: str) -> None:
    """A repository whose directory became a link to outside, or vanished, answers cleanly.

    The link points at a repository outside the root holding the marker: nothing
    may be read from it, copied from it or written into it. Every method answers an
    error or a result, never ``Internal server error``; every view answers 404.
    """
    api = site.api
    root = repos_root()
    elsewhere = root.parent / f"elsewhere-{secrets.token_hex(4)}"
    git(root.parent, "init", "-q", "--bare", str(elsewhere))
    push_tree(elsewhere, {"marker.txt": site.marker.decode()}, {}, 1_600_000_000)
    outside_before = root_listing(elsewhere)
    api.call("create_repo", repo_name="linked")
    try:
        swap_directory("linked", swap, elsewhere)
        before = root_listing()
        broken = []
        for path in REPO_VIEWS:
            page = get(site, path)
            if page.status != 404:
                broken.append((path, page.status))
        for method, args in REPO_METHODS:
            envelope = api.envelope(method, {"repoid": "linked", **args})
            site.assert_clean(str(envelope).encode(), method)
            if envelope["error"] == "Internal server error":
                broken.append((method, args))
        assert broken == [], broken
        assert root_listing() == before
        assert root_listing(elsewhere) == outside_before
        assert not (root / "stolen").exists()
    finally:
        (root / "linked").unlink(missing_ok=True)
        shutil.rmtree(elsewhere, ignore_errors=True)


@pytest.mark.parametrize("swap", ["symlink", "missing"])
def test_get_repo_with_revision_names_of_a_swapped_directory(
    site: Site, swap: str, tmp_path: Path
) -> None:
    site.api.call("create_repo", repo_name="linked")
    swap_directory("linked", swap, tmp_path)
    try:
        envelope = site.api.envelope("get_repo", {"repoid": "linked", "with_revision_names": True})
        assert envelope["error"] != "Internal server error"
    finally:
        (repos_root() / "linked").unlink(missing_ok=True)


def plant_hostile_commit(bare: Path) -> str:
    """A commit whose tree git would never write (``git fsck`` flags it), as a hostile
    upstream could serve it to ``pull``: ``..``, ``.``, ``.git``, names holding ``/`` or
    backslashed ``..``, and a name given twice (a link to ``/tmp``, then a directory)."""
    from dulwich.objects import Blob, Commit, Tree
    from dulwich.repo import Repo

    with Repo(str(bare)) as repo:
        store = repo.object_store
        payload = Blob.from_string(b"pwned\n")
        link = Blob.from_string(b"/tmp")
        store.add_object(payload)
        store.add_object(link)
        inner = Tree()
        inner.add(b"evil.sh", 0o100755, payload.id)
        store.add_object(inner)
        # Written byte by byte: dulwich's Tree keeps one entry per name.
        raw = b"".join(
            b"%o %s\0%s" % (mode, name, bytes.fromhex(sha.decode()))
            for name, mode, sha in (
                (b"..", 0o040000, inner.id),
                (b".", 0o040000, inner.id),
                (b".git", 0o040000, inner.id),
                (b".GIT", 0o040000, inner.id),
                (b"a/../../b", 0o100644, payload.id),
                (b"/abs", 0o100644, payload.id),
                (b"..\\..\\win", 0o100644, payload.id),
                (b"dup", 0o120000, link.id),
                (b"dup", 0o040000, inner.id),
                (b"ok.txt", 0o100644, payload.id),
            )
        )
        tree = Tree.from_raw_string(Tree.type_num, raw)
        store.add_object(tree)
        commit = Commit()
        commit.tree = tree.id
        commit.author = commit.committer = b"Mallory <m@example.com>"
        commit.author_time = commit.commit_time = 1_600_000_100
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = b"hostile tree\n"
        store.add_object(commit)
        repo.refs[b"refs/heads/master"] = commit.id
        return commit.id.decode()


@pytest.mark.parametrize("ext", [".zip", ".tar", ".tar.gz", ".tar.bz2"])
def test_archives_of_a_hostile_tree_extract_inside_their_folder(
    site: Site, cache_dir: Path, ext: str, tmp_path: Path
) -> None:
    api = site.api
    api.call("create_repo", repo_name="mirror")
    commit = plant_hostile_commit(repos_root() / "mirror")
    page = get(site, f"/mirror/archive/tip{ext}")
    assert page.status == 200
    top = f"mirror-{commit[:12]}"
    members = _members(ext, page.body)
    names = [name.rstrip("/") for name, _kind, _data in members]
    assert sorted(names) == sorted([top, f"{top}/dup", f"{top}/ok.txt"]), names
    assert [kind for name, kind, _ in members if name.rstrip("/") == f"{top}/dup"] == ["link"]
    # Extracting it (as a build farm would) writes inside the folder only.
    folder = tmp_path / "extracted"
    folder.mkdir()
    if ext == ".zip":
        with zipfile.ZipFile(io.BytesIO(page.body)) as archive:
            archive.extractall(folder)  # noqa: S202 - checking where an extractor writes
    else:
        with tarfile.open(fileobj=io.BytesIO(page.body), mode="r:*") as tar:
            tar.extractall(folder, filter="fully_trusted")  # noqa: S202 - a naive extractor
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    assert written == sorted([top, f"{top}/dup", f"{top}/ok.txt"]), written


def test_views_never_serve_a_hostile_trees_odd_names(site: Site) -> None:
    api = site.api
    api.call("create_repo", repo_name="mirror")
    plant_hostile_commit(repos_root() / "mirror")
    for path in ("../evil.sh", "%2e%2e/evil.sh", "./evil.sh", "a%2f..%2f..%2fb", "/abs"):
        assert get(site, f"/mirror/raw/tip/{path}").status == 404, path
    assert get(site, "/mirror/raw/tip/ok.txt").body == b"pwned\n"
