"""Who may use the raw-file and changeset views, and how (facts §5.1, DECISIONS.md "Web views").

Over real HTTP through the local server, except the refused-address cases,
which need a source address other than loopback and so call the handlers.
Feeds (always key-accessible) and archives are tested with their functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api
from tests.support.gitcli import push_commits
from tests.support.web import Page, http_get, lambda_get

#: View → URL tail; the first four are the default whitelist's.
WHITELISTED = {
    "FilesController:raw": "raw/tip/README",
    "ChangesetController:changeset_raw": "changeset-diff/tip",
    "ChangesetController:changeset_raw (old URL)": "raw-changeset/tip",
    "ChangesetController:changeset_patch": "changeset-patch/tip",
}
NOT_WHITELISTED = {
    "FilesController:rawfile": "rawfile/tip/README",
    "ChangesetController:changeset_download": "changeset-download/tip",
}
ALL_VIEWS = {**WHITELISTED, **NOT_WHITELISTED}


@dataclass
class World:
    member: str  # may read "secret"
    outsider: str  # may read only public repositories
    expired: str  # the member's expired extra key
    inactive: str  # the key of a deactivated user
    member_id: int


@pytest.fixture
def world(lambda_api: Api) -> World:
    api = lambda_api
    api.call("create_repo", repo_name="public")
    api.call("create_repo", repo_name="secret", private=True)
    for name in ("public", "secret"):
        push_commits(repos_root() / name, [{"README": f"{name}\n"}])
    member_id, member = api.new_user("member")
    api.call("grant_user_permission", repoid="secret", userid=member_id, perm="repository.read")
    _uid, outsider = api.new_user("outsider")
    inactive_id, inactive = api.new_user("inactive")
    api.call("grant_user_permission", repoid="secret", userid=inactive_id, perm="repository.read")
    api.call("update_user", userid=inactive_id, active=False)
    extra = api.as_user(member).call("create_api_key", lifetime=1)
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey

    with transaction() as session:
        session.get(UserApiKey, extra["api_key_id"]).expires = time.time() - 1
    return World(member, outsider, extra["api_key"], inactive, member_id)


@pytest.fixture
def whitelist(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Replace the deployment's whitelist for one test: call ``set_whitelist(...)``."""
    yield
    from repohost.config import get_settings

    monkeypatch.undo()
    get_settings.cache_clear()


def set_whitelist(monkeypatch: pytest.MonkeyPatch, names: str) -> None:
    from repohost.config import get_settings

    monkeypatch.setenv("REPOHOST_API_ACCESS_WHITELIST", names)
    get_settings.cache_clear()


def same_answer(a: Page, b: Page) -> bool:
    return (a.status, a.body, a.header("Content-Type")) == (
        b.status,
        b.body,
        b.header("Content-Type"),
    )


@pytest.mark.parametrize("tail", WHITELISTED.values(), ids=WHITELISTED.keys())
def test_whitelisted_views_take_a_key(local_server: str, world: World, tail: str) -> None:
    for credentials in ({"key": world.member}, {"bearer": world.member}):
        page = http_get(local_server, f"/secret/{tail}", **credentials)
        assert page.status == 200, credentials
        assert b"secret" in page.body
    assert http_get(local_server, f"/secret/{tail}", key=ADMIN_KEY).status == 200


@pytest.mark.parametrize("tail", WHITELISTED.values(), ids=WHITELISTED.keys())
def test_bad_keys_are_refused_before_the_repository_is_looked_at(
    local_server: str, world: World, tail: str
) -> None:
    for bad in ("", "123456", "0" * 40, world.expired, world.inactive):
        for credentials in ({"key": bad}, {"bearer": bad}):
            if credentials.get("bearer") == "":
                continue  # an empty Bearer is no credential at all
            page = http_get(local_server, f"/secret/{tail}", **credentials)
            assert page.status == 403, (bad, credentials)
            missing = http_get(local_server, f"/no-such-repo/{tail}", **credentials)
            assert same_answer(page, missing), (bad, credentials)


@pytest.mark.parametrize("tail", NOT_WHITELISTED.values(), ids=NOT_WHITELISTED.keys())
def test_a_key_on_a_view_not_whitelisted_is_403_before_the_key_is_checked(
    local_server: str, world: World, tail: str
) -> None:
    expected = b"API key access is not enabled for this view\n"
    for credentials in ({"key": ADMIN_KEY}, {"bearer": world.member}, {"key": "junk"}):
        for repo in ("secret", "public", "no-such-repo"):
            page = http_get(local_server, f"/{repo}/{tail}", **credentials)
            assert (page.status, page.body) == (403, expected), (repo, credentials)
    assert http_get(local_server, f"/public/{tail}").status == 200  # no key: anonymous


def test_the_whitelist_comes_from_the_settings(
    local_server: str, world: World, monkeypatch: pytest.MonkeyPatch, whitelist: None
) -> None:
    set_whitelist(monkeypatch, "FilesController:rawfile, ChangesetController:changeset_download")
    for tail in NOT_WHITELISTED.values():
        assert http_get(local_server, f"/secret/{tail}", key=world.member).status == 200, tail
    for tail in WHITELISTED.values():
        assert http_get(local_server, f"/secret/{tail}", key=world.member).status == 403, tail
    set_whitelist(monkeypatch, "")
    for tail in ALL_VIEWS.values():
        assert http_get(local_server, f"/public/{tail}", key=ADMIN_KEY).status == 403, tail
        assert http_get(local_server, f"/public/{tail}").status == 200, tail


@pytest.mark.parametrize("tail", ALL_VIEWS.values(), ids=ALL_VIEWS.keys())
def test_private_repositories_look_missing_to_those_who_cannot_read_them(
    local_server: str, world: World, tail: str
) -> None:
    missing = http_get(local_server, f"/no-such-repo/{tail}")
    assert (missing.status, missing.body) == (404, b"Not found\n")
    assert same_answer(http_get(local_server, f"/secret/{tail}"), missing)
    # The permanent ``_<id>`` form must not leak either.
    assert same_answer(http_get(local_server, f"/_{_repo_id('secret')}/{tail}"), missing)
    if tail in WHITELISTED.values():
        outsider = http_get(local_server, f"/secret/{tail}", key=world.outsider)
        assert same_answer(outsider, http_get(local_server, f"/nope/{tail}", key=world.outsider))
        assert outsider.status == 404


def _repo_id(name: str) -> int:
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import Repository

    with transaction() as session:
        return session.scalars(select(Repository.repo_id).where(Repository.repo_name == name)).one()


@pytest.mark.parametrize("tail", ALL_VIEWS.values(), ids=ALL_VIEWS.keys())
def test_anonymous_reads_what_the_default_user_may_read(
    local_server: str, world: World, tail: str
) -> None:
    page = http_get(local_server, f"/public/{tail}")
    assert page.status == 200
    assert b"public" in page.body


def test_anonymous_access_can_be_switched_off(
    lambda_api: Api, local_server: str, world: World
) -> None:
    from sqlalchemy import update

    from repohost.db.engine import transaction
    from repohost.db.models import User

    with transaction() as session:
        session.execute(update(User).where(User.username == "default").values(active=False))
    for tail in ALL_VIEWS.values():
        page = http_get(local_server, f"/public/{tail}")
        assert page.status == 403, tail
        for other in ("secret", "no-such-repo"):
            assert same_answer(http_get(local_server, f"/{other}/{tail}"), page), (tail, other)
    assert http_get(local_server, "/public/raw/tip/README", key=world.outsider).status == 200


def test_bearer_wins_over_the_query_key(local_server: str, world: World) -> None:
    path = "/secret/raw/tip/README"
    assert http_get(local_server, path, key="0" * 40, bearer=world.member).status == 200
    assert http_get(local_server, path, key=world.member, bearer="0" * 40).status == 403


def _add_ip(user_id: int, network: str) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import UserIpMap

    with transaction() as session:
        session.add(UserIpMap(user_id=user_id, ip_addr=network))


@pytest.mark.parametrize(
    ("handler_module", "tail"),
    [
        ("repohost.web.files", "raw/tip/README"),
        ("repohost.web.changesets", "changeset-patch/tip"),
    ],
)
def test_the_user_ip_whitelist_applies(world: World, handler_module: str, tail: str) -> None:
    import importlib

    handler = importlib.import_module(handler_module).handle_event
    _add_ip(world.member_id, "10.1.0.0/16")
    path = f"/secret/{tail}"
    inside = lambda_get(handler, path, key=world.member, source_ip="10.1.2.3")
    assert inside.status == 200
    for credentials in ({"key": world.member}, {"bearer": world.member}):
        outside = lambda_get(handler, path, source_ip="192.0.2.7", **credentials)
        assert (outside.status, outside.body) == (403, b"IP 192.0.2.7 not allowed\n")
        missing = lambda_get(handler, "/gone/" + tail, source_ip="192.0.2.7", **credentials)
        assert same_answer(outside, missing)
    # Forwarded-for headers are never believed.
    spoofed = lambda_get(
        handler,
        path,
        key=world.member,
        source_ip="192.0.2.7",
        headers={"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"},
    )
    assert spoofed.status == 403
    # Another user's list does not restrict this one; the default user's list restricts all.
    assert lambda_get(handler, path, key=ADMIN_KEY, source_ip="192.0.2.7").status == 200


def test_the_default_users_ip_whitelist_restricts_anonymous_access(world: World) -> None:
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import User
    from repohost.web.files import handle_event

    with transaction() as session:
        default_id = session.scalars(select(User.user_id).where(User.username == "default")).one()
    _add_ip(default_id, "10.9.0.0/16")
    assert lambda_get(handle_event, "/public/raw/tip/README", source_ip="10.9.0.1").status == 200
    refused = lambda_get(handle_event, "/public/raw/tip/README", source_ip="192.0.2.1")
    assert refused.status == 403


def test_only_get_and_head(local_server: str, world: World) -> None:
    assert http_get(local_server, "/public/raw/tip/README", method="DELETE").status == 405
    assert http_get(local_server, "/public/changeset-diff/tip", method="POST").status == 405
    assert http_get(local_server, "/public/raw/tip/README", method="HEAD").status == 200
