"""Archives (facts §5.6): ``/{repo}/archive/{rev}{ext}`` through the local server over HTTP.

Contents are compared with ``git archive`` of the same commit; the S3 cache runs
on moto (in-process), concurrency through the handler on threads (the local
server runs one invocation per function at a time, like one Lambda instance).
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
import threading
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git
from tests.support.web import Page, http_get, lambda_get

COMMIT_TIME = 1_650_000_000
LONG_PATH = "deep/" + "/".join(["directory-with-a-long-name"] * 5) + "/file.txt"
LONG_NAME = "n" * 120 + ".txt"  # no "/" to split at: a pax record
UNSPLITTABLE = "/".join(["d" * 60] * 5) + "/f"  # no split fits ustar's fields
LONG_TARGET = "../" * 40 + "target"
EXTENSIONS = [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".zip"]
CONTENT_TYPES = {
    ".tar": "application/x-tar",
    ".tar.gz": "application/x-gzip",
    ".tgz": "application/x-gzip",
    ".tar.bz2": "application/x-bzip2",
    ".zip": "application/zip",
}


# -- fixtures and helpers -------------------------------------------------------------


def _reset_settings() -> None:
    from repohost.config import get_settings
    from repohost.web import archive_cache

    get_settings.cache_clear()
    archive_cache._s3_client.cache_clear()


@pytest.fixture
def cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A fresh local archive cache (no bucket) for each test."""
    folder = tmp_path / "archive-cache"
    monkeypatch.setenv("REPOHOST_ARCHIVE_CACHE_DIR", str(folder))
    monkeypatch.delenv("REPOHOST_ARCHIVE_BUCKET", raising=False)
    monkeypatch.delenv("REPOHOST_ARCHIVE_INLINE_LIMIT", raising=False)
    _reset_settings()
    yield folder
    monkeypatch.undo()
    _reset_settings()


@pytest.fixture
def web(local_server: str, cache_dir: Path, lambda_api: Api) -> str:
    return local_server


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every archive build of this test, by kind; each build takes a little longer."""
    import repohost.web.archive as view
    from repohost.git.archive import write_archive

    built: list[str] = []

    def counting(repo: Any, commit: str, kind: str, prefix: str, out: Any) -> None:
        built.append(kind)
        time.sleep(0.2)  # widens the window in which racing requests could build too
        write_archive(repo, commit, kind, prefix, out)

    monkeypatch.setattr(view, "write_archive", counting)
    return built


def rich_repository(api: Api, name: str, **fields: Any) -> list[str]:
    """A repository whose tree has every kind of entry; returns its two commit ids."""
    api.call("create_repo", repo_name=name, **fields)
    bare = repos_root() / name
    ids = []
    work = bare.parent / f".work-{name.replace('/', '_')}"
    work.mkdir()
    try:
        git(work, "init", "-q")
        files: dict[str, bytes] = {
            "README": b"hello\n",
            "empty": b"",
            "bin/run.sh": b"#!/bin/sh\necho hi\n",
            "src/a.py": b"print('a')\n",
            "src/b/c.txt": b"c\n" * 1000,
            "src/big.txt": b"".join(b"line %d\n" % i for i in range(60_000)),  # several blocks
            "blob.bin": bytes(range(256)) * 64,
            "caf\u00e9/na\u00efve.txt": b"unicode names\n",
            "Z-upper": b"sorted after digits, before lower case\n",
            LONG_PATH: b"a path longer than 100 characters\n",
            LONG_NAME: b"a name longer than 100 characters\n",
            UNSPLITTABLE: b"a path that ustar cannot hold\n",
        }
        for path, data in files.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(data)
        (work / "bin/run.sh").chmod(0o755)
        os.symlink("src/a.py", work / "link-to-a")
        os.symlink("../../outside", work / "src/escaping-link")
        os.symlink(LONG_TARGET, work / "long-link")
        git(work, "add", "-A")
        # A submodule entry: git archive writes it as an empty directory.
        git(work, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},vendor/sub")
        git(work, "commit", "-q", "-m", "first", when=COMMIT_TIME)
        ids.append(git(work, "rev-parse", "HEAD").strip())
        (work / "README").write_bytes(b"hello again\n")
        git(work, "rm", "-q", "src/a.py")
        git(work, "add", "README")  # not -A: that would drop the submodule
        git(work, "commit", "-q", "-m", "second", when=COMMIT_TIME + 60)
        ids.append(git(work, "rev-parse", "HEAD").strip())
        git(work, "push", "-q", str(bare), "master:master")
    finally:
        shutil.rmtree(work)
    return ids


def git_archive(name: str, commit: str, top: str) -> bytes:
    return subprocess.run(
        ["git", "archive", "--format=tar", f"--prefix={top}/", commit],
        cwd=repos_root() / name,
        capture_output=True,
        check=True,
    ).stdout


Entry = tuple[str, str, bool, bytes]  # name, kind, executable, data (or link target)


def tar_entries(data: bytes) -> list[Entry]:
    found = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            if member.issym():
                found.append((member.name, "link", False, member.linkname.encode()))
            elif member.isdir():
                found.append((member.name.rstrip("/") + "/", "dir", False, b""))
            else:
                body = tar.extractfile(member)
                assert body is not None
                found.append((member.name, "file", bool(member.mode & 0o100), body.read()))
    return found


def zip_entries(data: bytes) -> list[Entry]:
    found = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            assert info.create_system == 3
            if stat.S_ISLNK(mode):
                found.append((info.filename, "link", False, archive.read(info)))
            elif info.is_dir():
                assert stat.S_ISDIR(mode)
                found.append((info.filename, "dir", False, b""))
            else:
                assert stat.S_ISREG(mode)
                found.append((info.filename, "file", bool(mode & 0o100), archive.read(info)))
    return found


def entries(ext: str, data: bytes) -> list[Entry]:
    return zip_entries(data) if ext == ".zip" else tar_entries(data)


def get(base: str, path: str, **kw: Any) -> Page:
    return http_get(base, path, **kw)


# -- contents ---------------------------------------------------------------------------


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_every_format_has_git_archives_contents(web: str, lambda_api: Api, ext: str) -> None:
    _, second = rich_repository(lambda_api, "rich")
    page = get(web, f"/rich/archive/tip{ext}")
    assert page.status == 200, page.body
    top = f"rich-{second[:12]}"
    assert page.header("Content-Type") == CONTENT_TYPES[ext]
    assert page.header("Content-Disposition") == f"attachment; filename={top}{ext}"
    assert page.header("Pragma") == "no-cache"
    assert page.header("Cache-Control") == "no-cache"
    assert (page.header("ETag") or "").startswith(f'"{second}-')
    expected = tar_entries(git_archive("rich", second, top))
    assert entries(ext, page.body) == expected
    names = [name for name, *_ in expected]
    for name in ("vendor/sub/", LONG_PATH, LONG_NAME, UNSPLITTABLE, UNSPLITTABLE[:-1]):
        assert f"{top}/{name}" in names
    assert (f"{top}/long-link", "link", False, LONG_TARGET.encode()) in expected
    assert (f"{top}/bin/run.sh", "file", True, b"#!/bin/sh\necho hi\n") in expected
    assert (f"{top}/link-to-a", "link", False, b"src/a.py") in expected
    assert (f"{top}/src/escaping-link", "link", False, b"../../outside") in expected


@pytest.mark.parametrize("ext", [".tar", ".tar.gz", ".tar.bz2"])
def test_tar_metadata_is_fixed(web: str, lambda_api: Api, ext: str) -> None:
    _, second = rich_repository(lambda_api, "rich")
    data = get(web, f"/rich/archive/tip{ext}").body
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        assert tar.pax_headers == {"comment": second}
        for member in tar.getmembers():
            assert member.mtime == COMMIT_TIME + 60
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
            expected = 0o777 if member.issym() else 0o755 if member.isdir() else None
            assert member.mode in ((expected,) if expected else (0o644, 0o755)), member.name
    unpack = {".tar": bytes, ".tar.gz": gzip.decompress, ".tar.bz2": bz2.decompress}[ext]
    raw = unpack(data)
    commit_id = subprocess.run(
        ["git", "get-tar-commit-id"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    assert commit_id.strip() == second
    if ext == ".tar.gz":
        assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # gzip -n's header


def test_zip_metadata_is_fixed(web: str, lambda_api: Api) -> None:
    _, second = rich_repository(lambda_api, "rich")
    data = get(web, "/rich/archive/tip.zip").body
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.comment == second.encode()
        stamp = time.gmtime(COMMIT_TIME + 60)[:6]
        for info in archive.infolist():
            assert info.date_time == stamp
            mode = info.external_attr >> 16
            assert stat.S_IMODE(mode) in (0o644, 0o755, 0o777), info.filename


@pytest.mark.parametrize("ext", [".zip", ".tar.gz"])
def test_other_revisions(web: str, lambda_api: Api, ext: str) -> None:
    first, _ = rich_repository(lambda_api, "rich")
    git(repos_root() / "rich", "tag", "v1", first)
    git(repos_root() / "rich", "branch", "old", first)
    top = f"rich-{first[:12]}"
    expected = tar_entries(git_archive("rich", first, top))
    for revision in (first, first.upper(), "0", "v1", "old"):
        page = get(web, f"/rich/archive/{revision}{ext}")
        assert page.status == 200, (revision, page.body)
        assert page.header("Content-Disposition") == f"attachment; filename={top}{ext}"
        assert entries(ext, page.body) == expected
    assert entries(ext, get(web, f"/rich/archive/1{ext}").body) != expected


# -- determinism and the local cache -------------------------------------------------------


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_same_bytes_every_time(web: str, lambda_api: Api, cache_dir: Path, ext: str) -> None:
    rich_repository(lambda_api, "rich")
    first = get(web, f"/rich/archive/tip{ext}")
    again = get(web, f"/rich/archive/tip{ext}")
    assert len([p for p in cache_dir.rglob("*") if p.is_file()]) == 1
    shutil.rmtree(cache_dir)
    rebuilt = get(web, f"/rich/archive/master{ext}")
    assert first.body == again.body == rebuilt.body
    assert first.header("ETag") == rebuilt.header("ETag")


def test_cache_is_keyed_by_repository_commit_and_format(
    web: str, lambda_api: Api, cache_dir: Path, builds: list[str]
) -> None:
    _, second = rich_repository(lambda_api, "rich")
    rid = lambda_api.call("get_repo", repoid="rich")["repo_id"]
    get(web, "/rich/archive/tip.tar.gz")
    get(web, f"/rich/archive/{second}.tar.gz")
    tgz = get(web, "/rich/archive/master.tgz")
    assert builds == ["tgz"]
    assert tgz.header("Content-Disposition") == f"attachment; filename=rich-{second[:12]}.tgz"
    get(web, "/rich/archive/tip.zip")
    assert builds == ["tgz", "zip"]
    stored = sorted(p.relative_to(cache_dir).as_posix() for p in cache_dir.rglob("*.*"))
    top = f"rich-{second[:12]}"
    assert stored == [f"v1/{rid}/{second}/{top}.tar.gz", f"v1/{rid}/{second}/{top}.zip"]


def test_a_renamed_repository_gets_its_new_top_directory(web: str, lambda_api: Api) -> None:
    _, second = rich_repository(lambda_api, "rich")
    get(web, "/rich/archive/tip.zip")
    lambda_api.call("update_repo", repoid="rich", name="renamed")
    page = get(web, "/renamed/archive/tip.zip")
    assert page.header("Content-Disposition") == f"attachment; filename=renamed-{second[:12]}.zip"
    assert {name.split("/")[0] for name, *_ in zip_entries(page.body)} == {f"renamed-{second[:12]}"}


def test_if_none_match_and_head(web: str, lambda_api: Api, builds: list[str]) -> None:
    rich_repository(lambda_api, "rich")
    etag = get(web, "/rich/archive/tip.zip").header("ETag")
    assert etag is not None
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        page = get(web, "/rich/archive/tip.zip", headers={"If-None-Match": sent})
        assert (page.status, page.body, page.header("ETag")) == (304, b"", etag)
    assert get(web, "/rich/archive/tip.zip", headers={"If-None-Match": '"x"'}).status == 200
    assert get(web, "/rich/archive/tip.tar", headers={"If-None-Match": etag}).status == 200
    from repohost.web.archive import handle_event

    full = get(web, "/rich/archive/tip.zip")
    head = get(web, "/rich/archive/tip.zip", method="HEAD")
    assert (head.status, head.body, head.header("ETag")) == (200, b"", etag)
    # The handler's own length (the local server recomputes it for the empty body).
    head = lambda_get(handle_event, "/rich/archive/tip.zip", method="HEAD")
    assert head.header("Content-Length") == str(len(full.body))
    assert builds == ["zip", "tar"]


def test_concurrent_first_requests_build_once_locally(
    web: str, lambda_api: Api, builds: list[str]
) -> None:
    rich_repository(lambda_api, "rich")
    pages = _race("/rich/archive/tip.tar.gz", 6)
    assert [page.status for page in pages] == [200] * 6
    assert len({page.body for page in pages}) == 1
    assert builds == ["tgz"]


def _race(path: str, count: int) -> list[Page]:
    """``count`` requests at once, straight into the handler (as many Lambda threads)."""
    from repohost.web.archive import handle_event

    barrier = threading.Barrier(count)
    pages: list[Page] = []

    def one() -> None:
        barrier.wait()
        pages.append(lambda_get(handle_event, path))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pages


# -- errors and access ------------------------------------------------------------------


def test_downloads_disabled_is_403(web: str, lambda_api: Api, builds: list[str]) -> None:
    rich_repository(lambda_api, "closed", enable_downloads=False)
    for path in ("tip.zip", "nope.zip", "tip.rar"):
        page = get(web, f"/closed/archive/{path}")
        assert (page.status, page.body) == (403, b"Downloads disabled\n")
    assert builds == []


def test_bad_revision_type_and_empty_repository(web: str, lambda_api: Api) -> None:
    rich_repository(lambda_api, "rich")
    lambda_api.call("create_repo", repo_name="empty")
    cases = {
        "/rich/archive/nope.zip": "Unknown revision nope",
        "/rich/archive/12345.tar.gz": "Unknown revision 12345",
        "/rich/archive/%ZZ.zip": None,
        "/rich/archive/tiptar": "Unknown archive type",
        "/rich/archive/tip.rar": "Unknown archive type",
        "/rich/archive/x": "Unknown archive type",
        "/rich/archive/..ax": "Unknown archive type",
        "/rich/archive/tip.zipz": "Unknown archive type",
        "/rich/archive/nope.rar": "Unknown archive type",
        "/empty/archive/tip.zip": "Empty repository",
        "/empty/archive/tip.rar": "Empty repository",
        "/missing/archive/tip.zip": "Not found",
    }
    for path, message in cases.items():
        page = get(web, path)
        assert page.status == 404, path
        if message is not None:
            assert page.body == message.encode() + b"\n", path
            assert page.header("Content-Type") == "text/plain; charset=utf-8"


def test_group_repository_and_id_form(web: str, lambda_api: Api) -> None:
    lambda_api.call("create_repo_group", group_name="team")
    lambda_api.call("create_repo_group", group_name="sub", parent="team")
    _, second = rich_repository(lambda_api, "team/sub/app")
    repo_id = lambda_api.call("get_repo", repoid="team/sub/app")["repo_id"]
    page = get(web, "/team/sub/app/archive/tip.zip")
    assert page.status == 200
    name = f"team_sub_app-{second[:12]}.zip"
    assert page.header("Content-Disposition") == f"attachment; filename={name}"
    top = f"app-{second[:12]}"
    assert zip_entries(page.body) == tar_entries(git_archive("team/sub/app", second, top))
    by_id = get(web, f"/_{repo_id}/archive/tip.zip")
    assert by_id.status == 200
    assert by_id.body == page.body
    assert by_id.header("Content-Disposition") == f"attachment; filename={name}"


def test_private_repository_and_keys(web: str, lambda_api: Api) -> None:
    from tests.conftest import ADMIN_KEY

    rich_repository(lambda_api, "secret", private=True)
    rich_repository(lambda_api, "open")
    _, outsider = lambda_api.new_user("outsider")
    assert get(web, "/secret/archive/tip.zip", key=outsider).status == 404
    assert get(web, "/secret/archive/tip.zip", bearer=outsider).status == 404
    assert get(web, "/secret/archive/tip.zip").status == 404
    assert get(web, "/secret/archive/tip.zip", key=ADMIN_KEY).status == 200
    assert get(web, "/secret/archive/tip.zip", bearer=ADMIN_KEY).status == 200
    assert get(web, "/open/archive/tip.zip").status == 200
    assert get(web, "/open/archive/tip.zip", key="1" * 40).status == 403


def test_key_refused_when_archives_are_not_whitelisted(
    web: str, lambda_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import ADMIN_KEY

    rich_repository(lambda_api, "rich")
    monkeypatch.setenv("REPOHOST_API_ACCESS_WHITELIST", "FilesController:raw")
    _reset_settings()
    page = get(web, "/rich/archive/tip.zip", key=ADMIN_KEY)
    assert page.status == 403
    assert page.header("Content-Disposition") is None
    assert get(web, "/rich/archive/tip.zip").status == 200  # anonymous needs no key


def test_downloads_are_journalled(web: str, lambda_api: Api) -> None:
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import JournalEntry

    _, second = rich_repository(lambda_api, "rich")
    get(web, "/rich/archive/tip.zip")
    get(web, "/rich/archive/tip.zip", method="HEAD")
    with transaction() as session:
        actions = session.scalars(
            select(JournalEntry.action).where(JournalEntry.action.like("user_downloaded%"))
        ).all()
    assert actions == [f"user_downloaded_archive:rich-{second[:12]}.zip"]


# -- S3 (moto) --------------------------------------------------------------------------


BUCKET = "repohost-archives"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> Iterator[Any]:
    """An S3 archive cache on moto; the local folder must stay unused."""
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "REPOHOST_ARCHIVE_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    _reset_settings()
    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client
    assert not cache_dir.exists()
    _reset_settings()


def _keys(client: Any) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_s3_cache_hit(web: str, lambda_api: Api, s3: Any, builds: list[str]) -> None:
    _, second = rich_repository(lambda_api, "rich")
    rid = lambda_api.call("get_repo", repoid="rich")["repo_id"]
    first = get(web, "/rich/archive/tip.tar.gz")
    again = get(web, "/rich/archive/tip.tar.gz")
    assert (first.status, again.status) == (200, 200)
    assert first.body == again.body
    assert builds == ["tgz"]
    key = f"v1/{rid}/{second}/rich-{second[:12]}.tar.gz"
    assert _keys(s3) == [key]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == first.body


def test_s3_large_archive_redirects_to_presigned_url(
    web: str, lambda_api: Api, s3: Any, monkeypatch: pytest.MonkeyPatch, builds: list[str]
) -> None:
    _, second = rich_repository(lambda_api, "rich")
    inline = get(web, "/rich/archive/tip.zip").body
    monkeypatch.setenv("REPOHOST_ARCHIVE_INLINE_LIMIT", str(len(inline) - 1))
    _reset_settings()
    for _ in range(2):  # the build that just happened, then a cache hit
        page = get(web, "/rich/archive/tip.zip")
        assert page.status == 302, page.body
        assert page.header("Cache-Control") == "no-cache"
        location = urllib.parse.urlsplit(page.header("Location") or "")
        query = dict(urllib.parse.parse_qsl(location.query))
        filename = f"rich-{second[:12]}.zip"
        assert location.scheme == "https"
        assert query["response-content-disposition"] == f"attachment; filename={filename}"
        assert query["response-content-type"] == "application/zip"
        assert query["X-Amz-Expires"] == "300"
        assert location.hostname is not None and BUCKET in location.hostname + location.path
        key = urllib.parse.unquote(location.path).split(f"/{BUCKET}/")[-1].lstrip("/")
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == inline
    assert builds == ["zip"]
    small = get(web, "/rich/archive/tip.tar.bz2")  # a smaller archive is still inline
    assert small.status == 200 and len(small.body) < len(inline)


def test_s3_concurrent_first_requests_build_once(
    web: str, lambda_api: Api, s3: Any, builds: list[str]
) -> None:
    rich_repository(lambda_api, "rich")
    pages = _race("/rich/archive/tip.zip", 6)
    assert [page.status for page in pages] == [200] * 6
    assert len({page.body for page in pages}) == 1
    assert builds == ["zip"]
    assert len(_keys(s3)) == 1


def test_s3_upload_never_replaces_an_archive_stored_meanwhile(
    web: str, lambda_api: Api, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another instance finishing first wins; this one still serves its own (equal) bytes."""
    import repohost.web.archive as view
    from repohost.git.archive import write_archive

    _, second = rich_repository(lambda_api, "rich")
    rid = lambda_api.call("get_repo", repoid="rich")["repo_id"]
    key = f"v1/{rid}/{second}/rich-{second[:12]}.tar"

    def racing(repo: Any, commit: str, kind: str, prefix: str, out: Any) -> None:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"stored by another instance")
        write_archive(repo, commit, kind, prefix, out)

    monkeypatch.setattr(view, "write_archive", racing)
    page = get(web, "/rich/archive/tip.tar")
    assert page.status == 200
    with tarfile.open(fileobj=io.BytesIO(page.body)) as tar:
        assert tar.getnames()[0] == f"rich-{second[:12]}"
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"stored by another instance"


def test_s3_missing_key_refused_without_list_permission_is_a_miss(
    web: str, lambda_api: Api, s3: Any, monkeypatch: pytest.MonkeyPatch, builds: list[str]
) -> None:
    """Without s3:ListBucket, S3 answers a missing key with 403 AccessDenied."""
    from botocore.exceptions import ClientError

    from repohost.web import archive_cache

    client = archive_cache._s3_client()
    original = client.get_object

    def get_object(**kw: Any) -> Any:
        try:
            return original(**kw)
        except client.exceptions.NoSuchKey:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject") from None

    monkeypatch.setattr(client, "get_object", get_object)
    rich_repository(lambda_api, "rich")
    first = get(web, "/rich/archive/tip.zip")
    again = get(web, "/rich/archive/tip.zip")
    assert (first.status, again.status) == (200, 200)
    assert first.body == again.body
    assert builds == ["zip"]
    assert len(_keys(s3)) == 1


def test_names_that_are_not_utf8(web: str, lambda_api: Api) -> None:
    """tar keeps the raw bytes (as git archive); zip, which cannot, shows U+FFFD."""
    lambda_api.call("create_repo", repo_name="latin")
    bare = repos_root() / "latin"
    work = bare.parent / ".work-latin"
    work.mkdir()
    try:
        git(work, "init", "-q")
        (work / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"latin-1 name\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "latin-1")
        commit = git(work, "rev-parse", "HEAD").strip()
        git(work, "push", "-q", str(bare), "master:master")
    finally:
        shutil.rmtree(work)
    top = f"latin-{commit[:12]}"
    expected = tar_entries(git_archive("latin", commit, top))
    assert (f"{top}/{os.fsdecode(b'caf\xe9.txt')}", "file", False, b"latin-1 name\n") in expected
    for ext in (".tar", ".tar.gz", ".tar.bz2"):
        assert tar_entries(get(web, f"/latin/archive/tip{ext}").body) == expected
    names = [name for name, *_ in zip_entries(get(web, "/latin/archive/tip.zip").body)]
    assert names == [f"{top}/", f"{top}/caf\ufffd.txt"]


def test_tar_gz_bytes_do_not_depend_on_the_compression_threads(
    lambda_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks are cut by byte count, never by timing: 1 or 4 threads, the same bytes."""
    import repohost.git.archive as archive
    from repohost.git.read import open_repo

    _, second = rich_repository(lambda_api, "rich")
    big = repos_root() / "rich"
    built = []
    for threads in (1, 4, 4):
        monkeypatch.setattr(archive, "_GZIP_THREADS", threads)
        out = io.BytesIO()
        with open_repo(big) as repo:
            archive.write_archive(repo, second, "tgz", "top", out)
        built.append(out.getvalue())
    assert built[0] == built[1] == built[2]
    assert len(gzip.decompress(built[0])) > 2 * archive._GZIP_BLOCK  # several blocks
    tar = subprocess.run(
        ["git", "archive", "--format=tar", "--prefix=top/", second],
        cwd=big,
        capture_output=True,
        check=True,
    ).stdout
    assert tar_entries(built[0]) == tar_entries(tar)
