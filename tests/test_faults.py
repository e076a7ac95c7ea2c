"""Faults: the database going away and coming back, without restarting anything."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import ADMIN_KEY
from tests.support.api import Api, LambdaTransport
from tests.support.postgres import PostgresServer, skip_reason

UNAVAILABLE = "Service temporarily unavailable: the database cannot be reached"


@pytest.fixture
def own_postgres(migrated: str) -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which it may stop; the suite's is restored after."""
    reason = skip_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from repohost.db import bootstrap, engine, migrate

    with PostgresServer() as server:
        os.environ["REPOHOST_DATABASE_URL"] = server.create_database("faults")
        engine.reset()
        migrate.upgrade()
        bootstrap.ensure_defaults()
        assert bootstrap.ensure_first_admin(ADMIN_KEY) == ADMIN_KEY
        try:
            yield server
        finally:
            os.environ["REPOHOST_DATABASE_URL"] = migrated
            engine.reset()


def test_database_stopped_then_back(own_postgres: PostgresServer) -> None:
    api = Api(LambdaTransport(), ADMIN_KEY)
    assert api.call("get_user")["username"] == "admin"
    own_postgres.pause()
    for _ in range(3):
        envelope = api.envelope("get_user", {})
        assert envelope == {"id": 7, "result": None, "error": UNAVAILABLE}
    assert api.envelope("create_user", {"username": "x", "email": "x@example.com"})["error"] == (
        UNAVAILABLE
    )
    own_postgres.resume()
    assert api.call("get_user")["username"] == "admin"
    # The write refused while the database was down did not happen.
    assert api.error("get_user", userid="x") == "user `x` does not exist"
