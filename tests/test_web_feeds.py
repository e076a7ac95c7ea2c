"""RSS and Atom feeds (facts §5.7) through the local server over HTTP, parsed with ElementTree."""

from __future__ import annotations

import email.utils
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits
from tests.support.web import Page, http_get, lambda_get

A = "{http://www.w3.org/2005/Atom}"
START = 1_600_000_000  # push_commits dates commit n at START + 60 n


@pytest.fixture
def web(local_server: str, lambda_api: Api) -> str:
    return local_server


@pytest.fixture
def setenv(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Change a ``REPOHOST_*`` setting for one test; restored (and re-read) afterwards."""
    from repohost.config import get_settings

    def change(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()


def make_repo(api: Api, name: str, commits: int, **fields: Any) -> list[str]:
    """A repository with ``commits`` commits, commit n adding file ``f<n>``; ids oldest first."""
    api.call("create_repo", repo_name=name, **fields)
    if not commits:
        return []
    return push_commits(repos_root() / name, [{f"f{n}": f"{n}\n"} for n in range(commits)])


def commit_messages(name: str, messages: list[str]) -> list[str]:
    """Commits with the given messages on top of ``name``'s master; their ids."""
    work = repos_root() / f".work-{name}"
    work.mkdir()
    ids = []
    try:
        git(work, "init", "-q")
        for number, message in enumerate(messages):
            (work / "file").write_text(f"{number}\n")
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", message, when=START + 60 * number)
            ids.append(git(work, "rev-parse", "HEAD").strip())
        git(work, "push", "-q", str(repos_root() / name), "master:master")
    finally:
        shutil.rmtree(work)
    return ids


def rss(page: Page) -> ET.Element:
    assert page.status == 200, page.body
    assert page.header("Content-Type") == "application/rss+xml; charset=utf-8"
    root = ET.fromstring(page.body)  # noqa: S314 - our own server's output
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    return channel


def atom(page: Page) -> ET.Element:
    assert page.status == 200, page.body
    assert page.header("Content-Type") == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(page.body)  # noqa: S314 - our own server's output
    assert root.tag == f"{A}feed"
    return root


def text(element: ET.Element, path: str) -> str:
    found = element.find(path)
    assert found is not None, path
    return found.text or ""


# -- structure ------------------------------------------------------------------------


def test_rss_channel_and_items(web: str, lambda_api: Api) -> None:
    ids = make_repo(lambda_api, "proj", 3)
    git(repos_root() / "proj", "tag", "v1", ids[1])
    channel = rss(http_get(web, "/proj/feed/rss"))
    assert text(channel, "title") == "proj feed"
    assert text(channel, "link") == f"{web}/proj"
    assert text(channel, "description") == "Changes on proj repository"
    assert text(channel, "language") == "en-us"
    assert text(channel, "ttl") == "5"
    self_link = channel.find(f"{A}link")
    assert self_link is not None and self_link.get("href") == f"{web}/proj/feed/rss"
    items = channel.findall("item")
    assert [text(item, "link") for item in items] == [
        f"{web}/proj/changeset-diff/{commit}" for commit in reversed(ids)
    ]
    for number, item in zip([2, 1, 0], items, strict=True):
        assert text(item, "title") == f"commit {number}: f{number}"
        assert text(item, "guid") == text(item, "link")
        assert text(item, "author") == "alice@example.com (Alice Example)"
        published = email.utils.parsedate_to_datetime(text(item, "pubDate"))
        assert published == datetime.fromtimestamp(START + 60 * number, UTC)
        description = text(item, "description")
        assert description.startswith("<pre>Alice Example &lt;alice@example.com&gt; committed")
        assert f" added f{number}\n" in description
        assert f'<a href="{web}/proj/changeset-diff/{ids[number]}">' in description
    assert "tag: v1" in text(items[1], "description")
    assert "branch: master" in text(items[0], "description")
    assert "branch: master" not in text(items[1], "description")
    last = email.utils.parsedate_to_datetime(text(channel, "lastBuildDate"))
    assert last == datetime.fromtimestamp(START + 120, UTC)


def test_atom_feed_and_entries(web: str, lambda_api: Api) -> None:
    ids = make_repo(lambda_api, "proj", 3)
    feed = atom(http_get(web, "/proj/feed/atom"))
    assert text(feed, f"{A}id") == f"{web}/proj/feed/atom"
    assert text(feed, f"{A}title") == "proj feed"
    assert text(feed, f"{A}subtitle") == "Changes on proj repository"
    assert text(feed, f"{A}updated") == "2020-09-13T12:28:40Z"  # the newest commit
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{A}link")}
    assert links == {"alternate": f"{web}/proj", "self": f"{web}/proj/feed/atom"}
    entries = feed.findall(f"{A}entry")
    assert len(entries) == 3
    for number, entry in zip([2, 1, 0], entries, strict=True):
        link = f"{web}/proj/changeset-diff/{ids[number]}"
        assert text(entry, f"{A}id") == link
        assert text(entry, f"{A}title") == f"commit {number}: f{number}"
        stamp = datetime.fromtimestamp(START + 60 * number, UTC)
        assert text(entry, f"{A}updated") == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        href = entry.find(f"{A}link")
        assert href is not None and href.get("href") == link
        assert text(entry, f"{A}author/{A}name") == "Alice Example"
        assert text(entry, f"{A}author/{A}email") == "alice@example.com"
        summary = entry.find(f"{A}summary")
        assert summary is not None and summary.get("type") == "html"
        assert f" added f{number}" in (summary.text or "")


def test_item_count_is_limited_to_the_newest(
    web: str, lambda_api: Api, setenv: Callable[[str, str], None]
) -> None:
    ids = make_repo(lambda_api, "many", 23)
    items = rss(http_get(web, "/many/feed/rss")).findall("item")
    assert len(items) == 20  # the default
    assert text(items[0], "link").endswith(ids[-1])
    assert text(items[-1], "link").endswith(ids[3])
    setenv("REPOHOST_FEED_ITEMS", "2")
    entries = atom(http_get(web, "/many/feed/atom")).findall(f"{A}entry")
    assert [text(e, f"{A}id").rsplit("/", 1)[1] for e in entries] == [ids[22], ids[21]]


def test_empty_repository_gives_empty_valid_feeds(web: str, lambda_api: Api) -> None:
    make_repo(lambda_api, "empty", 0)
    channel = rss(http_get(web, "/empty/feed/rss"))
    assert channel.findall("item") == []
    assert text(channel, "title") == "empty feed"
    feed = atom(http_get(web, "/empty/feed/atom"))
    assert feed.findall(f"{A}entry") == []
    datetime.strptime(text(feed, f"{A}updated"), "%Y-%m-%dT%H:%M:%SZ")


def test_titles_and_untrusted_text(web: str, lambda_api: Api) -> None:
    lambda_api.call("create_repo", repo_name="words")
    long_line = "x" * 200
    messages = [
        f"{long_line}\n\nbody",
        "first line only\nsecond line",
        '<script>alert(1)</script> & "quotes" ]]> \x01\x1b[31m',
    ]
    commit_messages("words", messages)
    for page, find in (
        (http_get(web, "/words/feed/rss"), lambda root: root.findall("item")),
        (http_get(web, "/words/feed/atom"), lambda root: root.findall(f"{A}entry")),
    ):
        root = rss(page) if "rss" in (page.header("Content-Type") or "") else atom(page)
        title = "title" if root.tag == "channel" else f"{A}title"
        titles = [text(item, title) for item in find(root)]
        assert titles == [
            '<script>alert(1)</script> & "quotes" ]]> [31m',
            "first line only",
            "x" * 157 + "...",
        ]
        assert len(titles[2]) == 160
        assert b"<script>" not in page.body


# -- addressing and access -------------------------------------------------------------


def test_group_repository_and_id_form(web: str, lambda_api: Api) -> None:
    lambda_api.call("create_repo_group", group_name="team")
    ids = make_repo(lambda_api, "team/app", 1)
    repo_id = lambda_api.call("get_repo", repoid="team/app")["repo_id"]
    for path in ("/team/app/feed/rss", f"/_{repo_id}/feed/rss"):
        channel = rss(http_get(web, path))
        assert text(channel, "title") == "team/app feed"
        assert text(channel, "item/link") == f"{web}/team/app/changeset-diff/{ids[0]}"


def test_feeds_take_keys_even_with_an_empty_whitelist(
    web: str, lambda_api: Api, setenv: Callable[[str, str], None]
) -> None:
    make_repo(lambda_api, "secret", 1, private=True)
    make_repo(lambda_api, "open", 1)
    _, outsider = lambda_api.new_user("outsider")
    setenv("REPOHOST_API_ACCESS_WHITELIST", "")
    for kind in ("rss", "atom"):
        assert http_get(web, f"/secret/feed/{kind}", key=ADMIN_KEY).status == 200
        assert http_get(web, f"/secret/feed/{kind}", bearer=ADMIN_KEY).status == 200
        assert http_get(web, f"/open/feed/{kind}", key=outsider).status == 200
        assert http_get(web, f"/secret/feed/{kind}", key=outsider).status == 404
        assert http_get(web, f"/secret/feed/{kind}").status == 404
        assert http_get(web, f"/open/feed/{kind}").status == 200
        assert http_get(web, f"/open/feed/{kind}", key="1" * 40).status == 403
        assert http_get(web, f"/missing/feed/{kind}", key=ADMIN_KEY).status == 404
    # A view that is not always key-accessible is refused under the same whitelist.
    assert http_get(web, "/open/archive/tip.zip", key=ADMIN_KEY).status == 403


def test_etag_head_and_unknown_kind(web: str, lambda_api: Api) -> None:
    from repohost.web.feeds import handle_event

    make_repo(lambda_api, "proj", 2)
    page = http_get(web, "/proj/feed/atom")
    etag = page.header("ETag")
    assert etag is not None and etag.startswith('"')
    assert http_get(web, "/proj/feed/atom").body == page.body
    cached = http_get(web, "/proj/feed/atom", headers={"If-None-Match": etag})
    assert (cached.status, cached.body) == (304, b"")
    assert http_get(web, "/proj/feed/rss", headers={"If-None-Match": etag}).status == 200
    git(repos_root() / "proj", "tag", "v2")  # now in the newest item's description
    changed = http_get(web, "/proj/feed/atom", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.header("ETag") != etag
    head = http_get(web, "/proj/feed/rss", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    for path in ("/proj/feed/xml", "/proj/feed", "/proj/feed/rss/more"):
        assert lambda_get(handle_event, path).status == 404, path
