"""Who may use which GET view: roles × views, each cell the exact HTTP answer.

The worlds are the repository matrix's (``tests.test_repo_permission_matrix``:
``grp/repo``, public or private, two commits, README ``hello again`` at the
tip), and so are the roles, each calling with its key in ``?api_key=`` and
again in ``Authorization: Bearer`` (both must give the cell's answer). Three
rows call without a key, as the anonymous default user: ``anon_read`` as
installed (the default user reads public repositories), ``anon_noread`` after
the default user's row on ``grp/repo`` is set to ``repository.none``, and
``anon_off`` with the default user deactivated (anonymous access switched off).

The rules (facts §5.1, DECISIONS.md "Web views"): a key on a view that is not
in the whitelist (by default all but ``rawfile`` and ``changeset-download``)
is refused before it is looked at; feeds take a key whatever the whitelist
says; a bad key (the default user's, an inactive user's, an expired one) or
an address outside the user's IP whitelist is refused before the repository
is looked up; a repository the caller may not read answers exactly like a
missing one. The views are called through their Lambda handlers with API
Gateway events; each row is one test, asserting all nine cells at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY
from tests.support.api import Api, LambdaTransport
from tests.support.matrix import parse_table
from tests.support.web import Page, lambda_get
from tests.test_repo_permission_matrix import REFUSED_IP, REPO, World, repo_world
from tests.test_repo_permission_matrix import ROLES as KEY_ROLES

#: Column → (the URL after ``/grp/repo/``, the module whose ``handle_event`` serves it).
VIEWS: dict[str, tuple[str, str]] = {
    "raw": ("raw/tip/README", "repohost.web.files"),
    "rawfile": ("rawfile/tip/README", "repohost.web.files"),
    "changeset-diff": ("changeset-diff/tip", "repohost.web.changesets"),
    "raw-changeset": ("raw-changeset/tip", "repohost.web.changesets"),
    "changeset-patch": ("changeset-patch/tip", "repohost.web.changesets"),
    "changeset-download": ("changeset-download/tip", "repohost.web.changesets"),
    "archive": ("archive/tip.tar.gz", "repohost.web.archive"),
    "feed-rss": ("feed/rss", "repohost.web.feeds"),
    "feed-atom": ("feed/atom", "repohost.web.feeds"),
}

#: Cell codes → the exact (status, body) of a refusal; ``ok`` is a 200 whose body
#: ``BODY_OK`` accepts.
OK = "ok"
REFUSALS = {
    "404": (404, b"Not found\n"),
    "nowl": (403, b"API key access is not enabled for this view\n"),
    "nokey": (403, b"Invalid API key\n"),
    "noip": (403, f"IP {REFUSED_IP} not allowed\n".encode()),
    "noanon": (403, b"Anonymous access is disabled: give an API key\n"),
}

# fmt: off
#               raw    raw-   cset-  raw-   cset-  cset-  archive feed  feed
#                      file   diff   cset   patch  down-  .tar.gz rss   atom
#                                                  load
PUBLIC = """
admin           ok     nowl   ok     ok     ok     nowl   ok     ok     ok
owner           ok     nowl   ok     ok     ok     nowl   ok     ok     ok
reader          ok     nowl   ok     ok     ok     nowl   ok     ok     ok
writer          ok     nowl   ok     ok     ok     nowl   ok     ok     ok
repo_admin      ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_reader       ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_writer       ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_admin        ok     nowl   ok     ok     ok     nowl   ok     ok     ok
group_admin     ok     nowl   ok     ok     ok     nowl   ok     ok     ok
group_only      ok     nowl   ok     ok     ok     nowl   ok     ok     ok
explicit_none   ok     nowl   ok     ok     ok     nowl   ok     ok     ok
inactive_ug     ok     nowl   ok     ok     ok     nowl   ok     ok     ok
regular         ok     nowl   ok     ok     ok     nowl   ok     ok     ok
anonymous       nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
inactive_user   nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
expired_key     nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
ip_refused      noip   nowl   noip   noip   noip   nowl   noip   noip   noip
anon_read       ok     ok     ok     ok     ok     ok     ok     ok     ok
anon_noread     404    404    404    404    404    404    404    404    404
anon_off        noanon noanon noanon noanon noanon noanon noanon noanon noanon
"""

PRIVATE = """
admin           ok     nowl   ok     ok     ok     nowl   ok     ok     ok
owner           ok     nowl   ok     ok     ok     nowl   ok     ok     ok
reader          ok     nowl   ok     ok     ok     nowl   ok     ok     ok
writer          ok     nowl   ok     ok     ok     nowl   ok     ok     ok
repo_admin      ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_reader       ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_writer       ok     nowl   ok     ok     ok     nowl   ok     ok     ok
ug_admin        ok     nowl   ok     ok     ok     nowl   ok     ok     ok
group_admin     ok     nowl   ok     ok     ok     nowl   ok     ok     ok
group_only      404    nowl   404    404    404    nowl   404    404    404
explicit_none   404    nowl   404    404    404    nowl   404    404    404
inactive_ug     404    nowl   404    404    404    nowl   404    404    404
regular         404    nowl   404    404    404    nowl   404    404    404
anonymous       nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
inactive_user   nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
expired_key     nokey  nowl   nokey  nokey  nokey  nowl   nokey  nokey  nokey
ip_refused      noip   nowl   noip   noip   noip   nowl   noip   noip   noip
anon_read       404    404    404    404    404    404    404    404    404
anon_noread     404    404    404    404    404    404    404    404    404
anon_off        noanon noanon noanon noanon noanon noanon noanon noanon noanon
"""
# fmt: on

#: The rows that call without a key.
KEYLESS = ("anon_read", "anon_noread", "anon_off")


CODES = (OK, *REFUSALS)
EXPECTED = {
    "public": parse_table(PUBLIC, VIEWS, CODES),
    "private": parse_table(PRIVATE, VIEWS, CODES),
}
ROLES = tuple(EXPECTED["public"])


def _diff(page: Page, w: World) -> bool:
    return page.body.startswith(b"diff --git a/README b/README") and (
        b"-hello\n+hello again\n" in page.body
    )


def _is(page: Page, header: str, value: str) -> bool:
    return (page.header(header) or "").split(";")[0] == value


#: What a 200 must carry, per column (the tip is ``w.commits[-1]``, README ``hello again``).
BODY_OK: dict[str, Callable[[Page, World], bool]] = {
    "raw": lambda p, w: p.body == b"hello again\n" and _is(p, "Content-Type", "text/plain"),
    "rawfile": lambda p, w: (
        p.body == b"hello again\n"
        and p.header("Content-Disposition") == "attachment; filename=README"
    ),
    "changeset-diff": _diff,
    "raw-changeset": _diff,
    "changeset-patch": lambda p, w: (
        p.body.startswith(f"From {w.commits[-1]} ".encode()) and b"+hello again\n" in p.body
    ),
    "changeset-download": lambda p, w: (
        _diff(p, w) and p.header("Content-Disposition") == "attachment; filename=tip.diff"
    ),
    "archive": lambda p, w: (
        p.body[:2] == b"\x1f\x8b"
        and p.header("Content-Disposition")
        == f"attachment; filename=grp_repo-{w.commits[-1][:12]}.tar.gz"
    ),
    "feed-rss": lambda p, w: (
        _is(p, "Content-Type", "application/rss+xml")
        and b"<rss" in p.body
        and b"commit 1: README" in p.body
    ),
    "feed-atom": lambda p, w: (
        _is(p, "Content-Type", "application/atom+xml")
        and b"<feed" in p.body
        and b"commit 1: README" in p.body
    ),
}


def outcome(page: Page, column: str, w: World) -> str:
    """The cell code ``page`` amounts to, or a description of what it is instead."""
    if page.status == 200:
        return OK if BODY_OK[column](page, w) else f"200 with {page.body[:80]!r}"
    for code, answer in REFUSALS.items():
        if (page.status, page.body) == answer:
            return code
    return f"{page.status} with {page.body[:80]!r}"


@pytest.fixture
def admin(migrated: str) -> Api:
    return Api(LambdaTransport(), ADMIN_KEY)


@pytest.fixture(scope="module")
def archive_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archive-cache")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, archive_folder: Path) -> Iterator[None]:
    """The deployment's defaults (whitelist included), archives cached in a test folder."""
    from repohost.config import get_settings

    monkeypatch.setenv("REPOHOST_ARCHIVE_CACHE_DIR", str(archive_folder))
    for name in ("REPOHOST_ARCHIVE_BUCKET", "REPOHOST_API_ACCESS_WHITELIST"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def prepare(admin: Api, role: str) -> None:
    """What a keyless row changes in the restored world."""
    from sqlalchemy import update

    from repohost.db.engine import transaction
    from repohost.db.models import User

    if role == "anon_noread":
        admin.call("grant_user_permission", repoid=REPO, userid="default", perm="repository.none")
    elif role == "anon_off":
        with transaction() as session:
            session.execute(update(User).where(User.username == "default").values(active=False))


CASES = [(table, role) for table in EXPECTED for role in ROLES]


@pytest.mark.parametrize(("table", "role"), CASES, ids=[f"{t}-{r}" for t, r in CASES])
def test_matrix(admin: Api, migrated: str, settings: None, table: str, role: str) -> None:
    w = repo_world(admin, migrated, private=table == "private")
    prepare(admin, role)
    ip = REFUSED_IP if role == "ip_refused" else "127.0.0.1"
    got = {}
    for column, (tail, module) in VIEWS.items():
        handler = importlib.import_module(module).handle_event
        path = f"/{REPO}/{tail}"
        if role in KEYLESS:
            got[column] = outcome(lambda_get(handler, path, source_ip=ip), column, w)
            continue
        key = w.keys[role]
        by_query = outcome(lambda_get(handler, path, key=key, source_ip=ip), column, w)
        by_bearer = outcome(lambda_get(handler, path, bearer=key, source_ip=ip), column, w)
        got[column] = by_query if by_query == by_bearer else f"{by_query} / Bearer: {by_bearer}"
    assert got == EXPECTED[table][role]


def test_the_rows_are_the_repository_matrix_roles_and_the_keyless_callers() -> None:
    assert tuple(EXPECTED["public"]) == (*KEY_ROLES, *KEYLESS)
    assert set(EXPECTED["public"]) == set(EXPECTED["private"])


def test_the_nowl_cells_are_the_default_whitelist() -> None:
    """``rawfile`` and ``changeset-download`` are the views the default whitelist leaves out.

    (``tests/test_matrix_coverage.py`` checks that every view has its column.)
    """
    from repohost.config import Settings

    assert Settings().api_access_whitelist == {
        "FilesController:raw",
        "FilesController:archivefile",
        "ChangesetController:changeset_raw",
        "ChangesetController:changeset_patch",
    }
    assert [c for c, cell in EXPECTED["public"]["admin"].items() if cell == "nowl"] == [
        "rawfile",
        "changeset-download",
    ]
