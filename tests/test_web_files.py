"""The raw and rawfile views over real HTTP (facts §5.2–§5.4, DECISIONS.md "Web views")."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from repohost.web.files import MAX_BODY_BYTES
from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api
from tests.support.gitcli import git
from tests.support.web import Page, http_get

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 20
BINARY = bytes(range(256)) * 4
LATIN1 = "café au lait\n".encode("latin-1")
SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n'
HTML = "<html><body><script>alert(1)</script></body></html>\n"
TEXT_FILES = {
    "README.md": "# Readme\n",
    "src/app.py": "print('hello')\n",
    "logo.svg": SVG,
    "page.html": HTML,
    "dir é/naïve file.txt": "unicode name\n",
    "notes": "no extension\n",
}
BINARY_FILES = {
    "image.png": PNG,
    "favicon.ico": b"\x00\x00\x01\x00" + BINARY,
    "data.bin": BINARY,
    "bundle.tar.gz": b"\x1f\x8b\x08\x00" + BINARY,
    "shot.png.gz": b"\x1f\x8b\x08\x00" + BINARY,
    "latin1.txt": LATIN1,
    'odd "name";\r\nx.bin': BINARY,
}


def build(work: Path, bare: Path, large: bool = False) -> list[str]:
    """Two commits: every kind of file, then README changed; pushed with a branch and tags."""
    work.mkdir()
    git(work, "init", "-q")
    for name, content in {**TEXT_FILES, **BINARY_FILES}.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.symlink("/etc/passwd", work / "evil")
    os.symlink("../../../../../../..", work / "up")
    if large:
        rng = random.Random(7)
        (work / "large.bin").write_bytes(rng.randbytes(MAX_BODY_BYTES + 1))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "everything")
    git(work, "tag", "-a", "-m", "release", "v1.0")
    git(work, "branch", "stable")
    (work / "README.md").write_text("# Readme, second edition\n")
    git(work, "commit", "-q", "-am", "second", when=1_600_000_060)
    git(work, "push", "-q", str(bare), "master", "stable", "v1.0")
    return git(work, "rev-list", "--reverse", "master").split()


@pytest.fixture(autouse=True)
def whitelist_both_views(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keys work on both views here (``rawfile`` is not in the default whitelist)."""
    from repohost.config import get_settings

    monkeypatch.setenv(
        "REPOHOST_API_ACCESS_WHITELIST", "FilesController:raw,FilesController:rawfile"
    )
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def repo(lambda_api: Api, tmp_path: Path) -> dict:
    lambda_api.call("create_repo", repo_name="files")
    return {"ids": build(tmp_path / "work", repos_root() / "files")}


def get(server: str, path: str, **kw: object) -> Page:
    return http_get(server, path, key=ADMIN_KEY, **kw)


@pytest.fixture
def server(local_server: str) -> str:
    """The local server's base URL (a short name for the many calls below)."""
    return local_server


def test_raw_serves_the_bytes_with_kallithea_types(server: str, repo: dict) -> None:
    cases = {
        "README.md": ("text/plain; charset=utf-8", "inline"),
        "src/app.py": ("text/plain; charset=utf-8", "inline"),
        "image.png": ("image/png", "inline"),
        "favicon.ico": ("image/vnd.microsoft.icon", "inline"),
        "data.bin": ("application/octet-stream", "attachment; filename=data.bin"),
        "bundle.tar.gz": ("application/octet-stream", "attachment; filename=bundle.tar.gz"),
        "shot.png.gz": ("application/octet-stream", "attachment; filename=shot.png.gz"),
        "latin1.txt": ("text/plain", "inline"),
        "notes": ("text/plain; charset=utf-8", "inline"),
    }
    for name, (content_type, disposition) in cases.items():
        page = get(server, f"/files/raw/tip/{name}")
        assert page.status == 200, name
        assert page.header("Content-Type") == content_type, name
        assert page.header("Content-Disposition") == disposition, name
        assert page.header("X-Content-Type-Options") == "nosniff"
        assert page.header("Content-Security-Policy") == (
            "default-src 'none'; style-src 'unsafe-inline'; sandbox"
        )
        expected = TEXT_FILES.get(name) or BINARY_FILES.get(name)
        if name == "README.md":
            expected = "# Readme, second edition\n"
        assert page.body == (expected if isinstance(expected, bytes) else expected.encode())


@pytest.mark.parametrize("name", ["logo.svg", "page.html"])
def test_raw_never_serves_svg_or_html_as_themselves(server: str, repo: dict, name: str) -> None:
    page = get(server, f"/files/raw/tip/{name}")
    assert page.status == 200
    assert page.header("Content-Type") == "text/plain; charset=utf-8"
    assert page.header("X-Content-Type-Options") == "nosniff"
    assert "sandbox" in page.header("Content-Security-Policy")
    assert page.body == TEXT_FILES[name].encode()


def test_rawfile_is_always_an_attachment_with_the_guessed_type(server: str, repo: dict) -> None:
    cases = {
        "src/app.py": ("text/x-python", "attachment; filename=app.py"),
        "page.html": ("text/html", "attachment; filename=page.html"),
        "logo.svg": ("image/svg+xml", "attachment; filename=logo.svg"),
        "image.png": ("image/png", "attachment; filename=image.png"),
        "bundle.tar.gz": ("application/gzip", "attachment; filename=bundle.tar.gz"),
        "notes": ("text/plain", "attachment; filename=notes"),
        "data.bin": ("application/octet-stream", "attachment; filename=data.bin"),
    }
    for name, (content_type, disposition) in cases.items():
        page = get(server, f"/files/rawfile/tip/{name}")
        assert page.status == 200, name
        assert (page.header("Content-Type"), page.header("Content-Disposition")) == (
            content_type,
            disposition,
        ), name
        assert page.header("X-Content-Type-Options") == "nosniff"


def test_file_names_that_need_quoting_stay_in_one_header(server: str, repo: dict) -> None:
    page = get(server, "/files/rawfile/tip/dir%20%C3%A9/na%C3%AFve%20file.txt")
    assert page.status == 200
    assert page.header("Content-Disposition") == (
        "attachment; filename=\"na_ve file.txt\"; filename*=UTF-8''na%C3%AFve%20file.txt"
    )
    page = get(server, "/files/raw/tip/odd%20%22name%22%3B%0D%0Ax.bin")
    assert page.status == 200
    assert page.body == BINARY
    assert page.header("Content-Disposition") == (
        'attachment; filename="odd _name_;__x.bin"; '
        "filename*=UTF-8''odd%20%22name%22%3B%0D%0Ax.bin"
    )


def test_symlinks_are_served_as_their_link_text(server: str, repo: dict) -> None:
    page = get(server, "/files/raw/tip/evil")
    assert page.status == 200
    assert page.body == b"/etc/passwd"
    assert get(server, "/files/raw/tip/up").body == b"../../../../../../.."
    assert get(server, "/files/raw/tip/up/etc/passwd").status == 404
    assert get(server, "/files/raw/tip/evil/x").status == 404


TRICKS = [
    "/files/raw/tip/../../../../etc/passwd",
    "/files/raw/tip/src/../../config",
    "/files/raw/tip/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/files/raw/tip/src/..%2f..%2fconfig",
    "/files/raw/tip/%2Fetc%2Fpasswd",
    "/files/raw/tip//etc/passwd",
    "/files/raw/tip/README.md%00.png",
    "/files/raw/tip/..%5C..%5Cconfig",
    "/files/raw/tip/config",
    "/files/raw/tip/HEAD",
    "/files/raw/tip/objects",
    "/files/raw/tip/up/etc/passwd",
    "/files/raw/..%2F..%2F/config",
    "/files/raw/%2e%2e/config",
    "/files/raw/tip/%",
    "/files/raw/tip/%ff%fe",
    "/files/rawfile/tip/../config",
    "/files/rawfile/tip/%2e%2e",
]


@pytest.mark.parametrize("path", TRICKS)
def test_path_tricks_never_leave_the_repository(server: str, repo: dict, path: str) -> None:
    page = get(server, path)
    assert page.status == 404, page
    assert b"root:" not in page.body
    assert b"[core]" not in page.body
    assert b"ref:" not in page.body
    assert len(page.body) < 100


def test_directories_missing_files_and_unknown_revisions_are_404(server: str, repo: dict) -> None:
    for path in ("src", "nope.txt", "src/nope.py", "README.md/x"):
        page = get(server, f"/files/raw/tip/{path}")
        assert (page.status, page.body) == (404, b"No file at this path and revision\n"), path
        assert page.header("Content-Type") == "text/plain; charset=utf-8"
    for rev in ("nope", "f" * 40, "99", repo["ids"][0][:12], "-1"):
        page = get(server, f"/files/raw/{rev}/README.md")
        assert (page.status, page.body) == (404, b"No such revision in this repository\n"), rev


def test_revisions_by_every_name(server: str, repo: dict) -> None:
    first, second = repo["ids"]
    old, new = b"# Readme\n", b"# Readme, second edition\n"
    for rev, body in {
        "tip": new,
        "HEAD": new,
        "master": new,
        "stable": old,
        "v1.0": old,
        "0": old,
        "1": new,
        first: old,
        second.upper(): new,
    }.items():
        page = get(server, f"/files/raw/{rev}/README.md")
        assert (page.status, page.body) == (200, body), rev


def test_etag_and_if_none_match(server: str, repo: dict) -> None:
    blob = git(repos_root() / "files", "rev-parse", "master:README.md").strip()
    page = get(server, "/files/raw/tip/README.md")
    assert page.header("ETag") == f'"{blob}"'
    assert page.header("Cache-Control") == "private, no-cache"
    assert page.header("Pragma") == "no-cache"
    for value in (f'"{blob}"', f'W/"{blob}"', f'"other", "{blob}"', "*"):
        again = get(server, "/files/raw/tip/README.md", headers={"If-None-Match": value})
        assert again.status == 304, value
        assert again.body == b""
        assert again.header("ETag") == f'"{blob}"'
        assert again.header("Content-Type") is None  # a cache must not retype the stored file
    stale = get(server, "/files/raw/tip/README.md", headers={"If-None-Match": '"0000"'})
    assert stale.status == 200
    older = get(server, "/files/raw/stable/README.md", headers={"If-None-Match": f'"{blob}"'})
    assert older.status == 200
    assert older.header("ETag") != f'"{blob}"'


def test_anonymous_readers_get_a_shareable_cache_control(server: str, repo: dict) -> None:
    page = http_get(server, "/files/raw/tip/README.md")
    assert page.status == 200
    assert page.header("Cache-Control") == "no-cache"


def test_head_has_the_headers_without_the_body(server: str, repo: dict) -> None:
    get_page = get(server, "/files/raw/tip/image.png")
    head = get(server, "/files/raw/tip/image.png", method="HEAD")
    assert head.status == 200
    assert head.body == b""
    for name in ("Content-Type", "Content-Disposition", "ETag", "Cache-Control"):
        assert head.header(name) == get_page.header(name), name


def test_methods_other_than_get_and_head_are_refused(server: str, repo: dict) -> None:
    page = get(server, "/files/raw/tip/README.md", method="POST")
    assert page.status == 405
    assert page.header("Allow") == "GET, HEAD"


def test_repositories_in_groups_and_by_id(lambda_api: Api, server: str, tmp_path: Path) -> None:
    api = lambda_api
    api.call("create_repo_group", group_name="a")
    api.call("create_repo_group", group_name="b", parent="a")
    api.call("create_repo_group", group_name="c", parent="a/b")
    api.call("create_repo", repo_name="a/b/c/deep")
    build(tmp_path / "work", repos_root() / "a/b/c/deep")
    repo_id = api.call("get_repo", repoid="a/b/c/deep")["repo_id"]
    for prefix in ("/a/b/c/deep", f"/_{repo_id}"):
        page = get(server, f"{prefix}/raw/tip/src/app.py")
        assert (page.status, page.body) == (200, b"print('hello')\n"), prefix
        assert http_get(server, f"{prefix}/rawfile/tip/src/app.py").status == 200
    assert get(server, "/a/b/raw/tip/src/app.py").status == 404
    assert get(server, f"/_{repo_id + 1}/raw/tip/src/app.py").status == 404


def test_a_file_too_big_for_one_response_points_to_the_archive(
    lambda_api: Api, server: str, tmp_path: Path
) -> None:
    lambda_api.call("create_repo", repo_name="huge")
    ids = build(tmp_path / "work", repos_root() / "huge", large=True)
    page = get(server, "/huge/raw/tip/large.bin")
    assert page.status == 413
    assert page.header("Content-Type") == "text/plain; charset=utf-8"
    assert f"/huge/archive/{ids[1]}.zip".encode() in page.body
    assert str(MAX_BODY_BYTES + 1).encode() in page.body
    assert get(server, "/huge/rawfile/tip/large.bin").status == 413
    assert get(server, "/huge/raw/tip/README.md").status == 200


def test_an_empty_repository_has_no_files(lambda_api: Api, server: str) -> None:
    lambda_api.call("create_repo", repo_name="blank")
    page = get(server, "/blank/raw/tip/README.md")
    assert (page.status, page.body) == (404, b"No such revision in this repository\n")
