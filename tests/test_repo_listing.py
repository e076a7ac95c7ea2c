"""The JSON text PostgreSQL keeps with each repository for ``get_repos`` (migration 0004).

A trigger writes ``listing_head``/``listing_tail`` on every insert and update;
``get_repos`` joins the owner's and the origin's names in between. These tests
change every field through the API (and behind it) and check after each change
that ``get_repos`` still answers what the plain-rows way (SQLite's) answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import push_commits

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture(autouse=True)
def _postgresql_only(db: str) -> None:
    if not db.startswith("postgresql"):
        pytest.skip("the trigger and the JSON way are PostgreSQL's")


def both_ways(who: str = "admin") -> tuple[list[Any], list[Any]]:
    """``get_repos``' objects as PostgreSQL's JSON way and the plain-rows way build them."""
    from repohost.auth.permissions import AuthUser
    from repohost.config import get_settings
    from repohost.db import queries
    from repohost.db.engine import Database, transaction
    from repohost.methods import repos as methods
    from repohost.rpc.context import CallContext
    from repohost.rpc.encoding import dumps

    with transaction() as session:
        user = queries.get_user(session, who)
        db = Database(session.connection(), session)
        ctx = CallContext(db, AuthUser(session, user), "127.0.0.1", get_settings(), "test")
        encoded = methods._encoded_repos(ctx)
        by_rows = methods._repos_from_rows(ctx)
    return json.loads(encoded), json.loads(dumps(by_rows))


def stored(name: str) -> tuple[str | None, str | None]:
    from repohost.db.engine import transaction

    with transaction() as session:
        row = session.execute(
            text("SELECT listing_head, listing_tail FROM repositories WHERE repo_name = :n"),
            {"n": name},
        ).one()
    return row[0], row[1]


def behind_the_api(statement: str) -> None:
    from repohost.db.engine import transaction

    with transaction() as session:
        session.execute(text(statement))


def _changes(api: Api) -> Iterator[tuple[str, Callable[[], object]]]:
    yield "create", lambda: api.call("create_repo", repo_name="origin", owner="olga")
    yield "push", lambda: push_commits(repos_root() / "origin", [{"a": "1"}])
    yield "refresh", lambda: api.call("invalidate_cache", repoid="origin")
    yield "fork", lambda: api.call("fork_repo", repoid="origin", fork_name="copy")
    for field, value in (
        ("description", 'quote " back \\ tab \t é 𝄞'),
        ("private", True),
        ("landing_rev", "branch:feature:x"),
        ("enable_statistics", True),
        ("enable_downloads", False),
        ("clone_uri", "https://bot:hunter2@example.com/o.git"),
    ):
        yield field, lambda f=field, v=value: api.call("update_repo", repoid="origin", **{f: v})
    yield "enable_locking", lambda: behind_the_api("UPDATE repositories SET enable_locking = true")
    yield "lock", lambda: api.call("lock", repoid="origin", locked=True)
    yield "unlock", lambda: api.call("lock", repoid="origin", locked=False)
    yield "owner renamed", lambda: api.call("update_user", userid="olga", username="olga2")
    yield "owner changed", lambda: api.call("update_repo", repoid="origin", owner="admin")
    yield "origin renamed", lambda: api.call("update_repo", repoid="origin", name="grp-less")
    yield "origin deleted", lambda: api.call("delete_repo", repoid="grp-less", forks="detach")


def test_every_change_keeps_the_listing_true(lambda_api: Api) -> None:
    api = lambda_api
    api.new_user("olga")
    for change, make in _changes(api):
        make()
        by_json, by_rows = both_ways()
        assert by_json == by_rows, change
        assert by_json, change


def test_rows_written_before_the_trigger_are_filled_by_the_migration(postgres: Any) -> None:
    """Upgrading a 0003 database with repositories in it writes their listing."""
    from sqlalchemy import create_engine

    from repohost.db import migrate

    url = postgres.create_database("listing_upgrade")
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (username, password, active, admin, firstname, lastname,"
                    " email, extern_type, extern_name, created_on)"
                    " VALUES ('u', '', true, false, '', '', 'u@example.com', 'internal', '', now())"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO repositories (repo_name, repo_state, repo_type, owner_id, private,"
                    " enable_statistics, enable_downloads, enable_locking, description, created_on,"
                    " updated_on, landing_rev, pull_pending)"
                    " SELECT 'old', 'repo_state_created', 'git', user_id, false, false, true,"
                    " false, 'd', '2024-01-02 03:04:05', now(), 'rev:tip', false FROM users"
                )
            )
        migrate.upgrade(engine)
        with engine.connect() as connection:
            head, tail = connection.execute(
                text("SELECT listing_head, listing_tail FROM repositories")
            ).one()
    finally:
        engine.dispose()
    assert head.startswith('{"repo_id":') and head.endswith('"landing_rev":["rev", "tip"]')
    assert '"created_on":"2024-01-02T03:04:05"' in head
    assert tail.startswith('"enable_statistics":false') and tail.endswith('"last_changeset":null}')


def test_a_bypassed_trigger_falls_back_to_python(
    lambda_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows the trigger never wrote (e.g. loaded with triggers off) are still listed right."""
    from repohost.db.engine import transaction

    lambda_api.call("create_repo", repo_name="one")
    lambda_api.call("create_repo", repo_name="two", description="second")
    expected = lambda_api.call("get_repos")
    with transaction() as session:
        session.execute(text("ALTER TABLE repositories DISABLE TRIGGER repositories_listing"))
        session.execute(
            text(
                "UPDATE repositories SET listing_head = NULL, description = 'changed'"
                " WHERE repo_name = 'two'"
            )
        )
        session.execute(text("ALTER TABLE repositories ENABLE TRIGGER repositories_listing"))
    assert stored("two")[0] is None
    with caplog.at_level(logging.WARNING, logger="repohost.repos"):
        answer = lambda_api.call("get_repos")
    assert "1 repositories lack their listing" in caplog.text
    assert [r["description"] for r in answer] == [expected[0]["description"], "changed"]
    assert [{**r, "description": None} for r in answer] == [
        {**r, "description": None} for r in expected
    ]
