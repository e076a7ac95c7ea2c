"""Every GET view is routed to its function for repositories up to MAX_VIEW_DEPTH deep."""

from __future__ import annotations

from pathlib import Path

import pytest

from repohost.local.template import match_route, routes_from_template, sort_routes

ROOT = Path(__file__).resolve().parent.parent
MAX_VIEW_DEPTH = 5

URLS = {
    "raw/tip/src/a.py": "FilesFunction",
    "rawfile/0123abc/README": "FilesFunction",
    "changeset-diff/tip": "ChangesetsFunction",
    "raw-changeset/tip": "ChangesetsFunction",
    "changeset-patch/tip": "ChangesetsFunction",
    "changeset-download/tip": "ChangesetsFunction",
    "archive/tip.tar.gz": "ArchiveFunction",
    "feed/rss": "FeedsFunction",
    "feed/atom": "FeedsFunction",
}


@pytest.mark.parametrize("depth", range(1, MAX_VIEW_DEPTH + 1))
@pytest.mark.parametrize(("tail", "function"), URLS.items())
def test_view_reaches_its_function(depth: int, tail: str, function: str) -> None:
    routes = sort_routes(routes_from_template(ROOT / "template.yaml"))
    repo = "/".join(f"g{i}" for i in range(1, depth)) + ("/" if depth > 1 else "") + "repo"
    for method in ("GET", "HEAD"):
        matched = match_route(routes, method, f"/{repo}/{tail}")
        assert matched is not None, (method, repo, tail)
        assert matched[0].function_name == function


def test_reserved_segments_match_the_view_keywords() -> None:
    from repohost.repos import RESERVED_SEGMENTS

    keywords = {tail.split("/")[0] for tail in URLS}
    assert keywords == RESERVED_SEGMENTS
