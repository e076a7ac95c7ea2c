"""``/{repo}/feed/rss`` and ``/{repo}/feed/atom``: Kallithea's ``FeedController`` (facts §5.7).

Always key-accessible, whatever the whitelist says (facts §5.1). RSS 2.0
(``application/rss+xml``) and Atom 1.0 (``application/atom+xml``), built with
ElementTree so that no commit text can break out of its element; characters
XML 1.0 cannot carry (control characters in a commit message) are dropped.

- Items: the newest ``feed_items`` changesets (default 20, Kallithea's code
  default; ``REPOHOST_FEED_ITEMS``), newest first, as ``get_changesets`` lists
  them; an empty repository gives a valid feed without items.
- Item title: the message's first line, shortened to 160 characters with
  ``...``; link (and RSS guid / Atom id): ``<host>/<repo>/changeset-diff/<id>``,
  since repohost has no web UI to link to; author; date (the committer time,
  as everywhere in repohost); description: an HTML ``<pre>`` as Kallithea's,
  with author and date, the branches and tags whose head is the changeset,
  the changeset link, the message and the changed files (at most
  ``MAX_LISTED_FILES``). Unlike Kallithea, no per-file line counts and no diff:
  those would cost a diff of every listed changeset on every request.
- Feed title ``<repo_name> feed`` (Kallithea prefixes its site title; repohost
  has none), description ``Changes on <repo_name> repository``, language
  ``en-us``, ttl 5; the feed's link is the repository's Kallithea URL
  ``<host>/<repo_name>``, its id and self link the feed's URL (without a key).
- A strong ETag (a hash of the body) answers ``If-None-Match`` with 304.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dulwich.repo import Repo

from repohost.git.errors import EmptyRepository, StorageError
from repohost.git.read import branches, list_changesets, open_repo, tags
from repohost.git.storage import RepoStore
from repohost.http.events import Event, base_url
from repohost.web.serve import (
    NOT_FOUND,
    Response,
    View,
    ViewRequest,
    etag_matches,
    serve,
)

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
TITLE_LENGTH = 160
MAX_LISTED_FILES = 100
ET.register_namespace("atom", ATOM_NS)

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}


def _clean(value: str) -> str:
    return _NOT_XML.sub("", value)


def _shorter(value: str, size: int) -> str:
    return value if len(value) <= size else value[: size - 3] + "..."


@dataclass(frozen=True, slots=True)
class _Item:
    title: str
    link: str
    author_name: str
    author_email: str
    date: datetime  # aware, UTC
    html: str


@dataclass(frozen=True, slots=True)
class _Feed:
    title: str
    link: str
    url: str
    description: str
    updated: datetime
    items: list[_Item]


class _Pre:
    """An HTML ``<pre>`` built from text and links; ElementTree does the escaping."""

    def __init__(self) -> None:
        self.root = ET.Element("pre")
        self._last: ET.Element | None = None

    def text(self, value: str) -> None:
        value = _clean(value)
        if self._last is None:
            self.root.text = (self.root.text or "") + value
        else:
            self._last.tail = (self._last.tail or "") + value

    def link(self, href: str, label: str) -> None:
        self._last = ET.SubElement(self.root, "a", href=_clean(href))
        self._last.text = _clean(label)

    def html(self) -> str:
        return ET.tostring(self.root, encoding="unicode", method="html")


def _description(changeset: dict[str, Any], link: str, refs: list[str]) -> str:
    pre = _Pre()
    date = changeset["date"].strftime("%Y-%m-%d %H:%M:%S")
    pre.text(f"{changeset['author']} committed on {date} UTC\n")
    for ref in refs:
        pre.text(f"{ref}\n")
    pre.text("changeset: ")
    pre.link(link, changeset["short_id"][:8])
    pre.text(f"\n\n{changeset['message'].strip()}\n\n")
    files = [
        (operation, path)
        for operation in ("added", "changed", "removed")
        for path in changeset[operation]
    ]
    for operation, path in files[:MAX_LISTED_FILES]:
        pre.text(f" {operation} {path}\n")
    if len(files) > MAX_LISTED_FILES:
        pre.text(f" ... and {len(files) - MAX_LISTED_FILES} more files\n")
    return pre.html()


def _refs_by_commit(git: Repo) -> dict[str, list[str]]:
    found: defaultdict[str, list[str]] = defaultdict(list)
    for name, commit in branches(git).items():
        found[commit].append(f"branch: {name}")
    for name, commit in sorted(tags(git).items()):
        found[commit].append(f"tag: {name}")
    return found


def _feed(request: ViewRequest, base: str, kind: str) -> _Feed:
    repo = request.repo
    repo_url = f"{base}/{urllib.parse.quote(repo.repo_name)}"
    path = RepoStore(request.settings.repos_root).path_for(repo.repo_name)
    with open_repo(path) as git:
        try:
            changesets = list_changesets(
                git, reverse=True, max_revisions=request.settings.feed_items, with_file_list=True
            )
        except EmptyRepository:
            changesets = []
        refs = _refs_by_commit(git) if changesets else {}
    items = []
    for changeset in changesets:
        link = f"{repo_url}/changeset-diff/{changeset['raw_id']}"
        name, address = email.utils.parseaddr(changeset["author"])
        first_line = changeset["message"].strip().split("\n", 1)[0]
        items.append(
            _Item(
                title=_shorter(_clean(first_line), TITLE_LENGTH),
                link=link,
                author_name=name or address or changeset["author"],
                author_email=address,
                date=changeset["date"].replace(tzinfo=UTC),
                html=_description(changeset, link, refs.get(changeset["raw_id"], [])),
            )
        )
    updated = items[0].date if items else repo.created_on.replace(tzinfo=UTC)
    return _Feed(
        title=f"{repo.repo_name} feed",
        link=repo_url,
        url=f"{repo_url}/feed/{kind}",
        description=f"Changes on {repo.repo_name} repository",
        updated=updated,
        items=items,
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """A child element; every text and attribute value goes through ``_clean``."""
    element = ET.SubElement(parent, tag, {name: _clean(value) for name, value in attrs.items()})
    element.text = _clean(text) if text is not None else None
    return element


def _rss(feed: _Feed) -> ET.Element:
    rss = ET.Element("rss", version="2.0")
    channel = _sub(rss, "channel")
    _sub(channel, "title", feed.title)
    _sub(channel, "link", feed.link)
    _sub(channel, "description", feed.description)
    _sub(channel, f"{{{ATOM_NS}}}link", href=feed.url, rel="self", type="application/rss+xml")
    _sub(channel, "language", "en-us")
    _sub(channel, "lastBuildDate", email.utils.format_datetime(feed.updated, usegmt=True))
    _sub(channel, "ttl", "5")
    for item in feed.items:
        entry = _sub(channel, "item")
        _sub(entry, "title", item.title)
        _sub(entry, "link", item.link)
        _sub(entry, "description", item.html)
        if item.author_email:
            # RSS wants an address here, Kallithea's "address (name)" form.
            _sub(entry, "author", f"{item.author_email} ({item.author_name})")
        _sub(entry, "pubDate", email.utils.format_datetime(item.date, usegmt=True))
        _sub(entry, "guid", item.link, isPermaLink="true")
    return rss


def _atom_date(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _atom(feed: _Feed) -> ET.Element:
    # Plain tag names under a default xmlns: ElementTree would otherwise prefix every
    # element (its default_namespace option refuses the unqualified attributes).
    root = ET.Element("feed", {"xmlns": ATOM_NS, XML_LANG: "en-us"})
    _sub(root, "title", feed.title)
    _sub(root, "link", href=feed.link, rel="alternate")
    _sub(root, "link", href=feed.url, rel="self")
    _sub(root, "id", feed.url)
    _sub(root, "updated", _atom_date(feed.updated))
    _sub(root, "subtitle", feed.description)
    for item in feed.items:
        entry = _sub(root, "entry")
        _sub(entry, "title", item.title)
        _sub(entry, "link", href=item.link, rel="alternate")
        _sub(entry, "id", item.link)
        _sub(entry, "updated", _atom_date(item.date))
        author = _sub(entry, "author")
        _sub(author, "name", item.author_name or "unknown")
        if item.author_email:
            _sub(author, "email", item.author_email)
        _sub(entry, "summary", item.html, type="html")
    return root


def _render(request: ViewRequest, base: str) -> Response:
    if len(request.rest) != 1 or request.rest[0] not in _CONTENT_TYPES:
        return NOT_FOUND
    kind = request.rest[0]
    try:
        feed = _feed(request, base, kind)
    except StorageError:  # the directory is gone or unsafe: as if the repository did not exist
        return NOT_FOUND
    if kind == "rss":
        body = ET.tostring(_rss(feed), encoding="unicode", xml_declaration=True)
    else:
        body = ET.tostring(_atom(feed), encoding="unicode", xml_declaration=True)
    etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
    if etag_matches(request, etag):
        return Response(304, b"", headers={"ETag": etag})
    return Response(200, body, _CONTENT_TYPES[kind], {"ETag": etag})


def handle_event(event: Event, context: object = None) -> Event:
    """The feeds function's Lambda handler: one view, ``rss`` or ``atom`` after ``feed``."""
    render = functools.partial(_render, base=base_url(event))
    view = View("feed", "FeedController:rss", render, always_key_accessible=True)
    return serve(event, [view])
