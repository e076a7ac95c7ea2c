"""Shared fixtures: a real PostgreSQL per test run, a clean database per test, API clients.

The database is PostgreSQL (started here from Debian's server binaries) unless
``REPOHOST_TEST_DB=sqlite``; without the binaries the PostgreSQL tests are
skipped with the reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.support import loghygiene
from tests.support.api import Api, HttpTransport, LambdaTransport
from tests.support.postgres import PostgresServer, skip_reason

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "a" * 40


def pytest_configure(config: pytest.Config) -> None:
    loghygiene.install()
    loghygiene.remember(ADMIN_KEY)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leaks = loghygiene.leaks()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if leaks:
        if reporter is not None:
            reporter.write_line(f"LOG HYGIENE: {len(leaks)} log line(s) contain secrets:", red=True)
            for line in leaks[:20]:
                reporter.write_line("  " + line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.write_line(f"log hygiene: {loghygiene.line_count()} log lines, no secrets")


def require_postgres() -> None:
    """Skip loudly where no PostgreSQL server can be started; under CI, fail instead."""
    reason = skip_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must not skip PostgreSQL tests: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    require_postgres()
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.environ.get("REPOHOST_TEST_DB") == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'repohost.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database("repohost_tests")


@pytest.fixture(scope="session")
def migrated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Point repohost at the test database and migrate it once."""
    from repohost.db import engine, migrate

    os.environ["REPOHOST_DATABASE_URL"] = database_url
    os.environ["REPOHOST_REPOS_ROOT"] = str(tmp_path_factory.mktemp("repos"))
    engine.reset()
    migrate.upgrade()
    return database_url


def repos_root() -> Path:
    from repohost.config import get_settings

    return get_settings().repos_root


def _wipe(url: str) -> None:
    from repohost.db.engine import get_engine
    from repohost.db.models import Base

    tables = [t.name for t in Base.metadata.sorted_tables]
    with get_engine().begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our own table names


def _empty(root: Path) -> None:
    import shutil

    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@pytest.fixture
def db(migrated: str) -> str:
    """A fresh install: only the default rows, admin key ``ADMIN_KEY``, no repositories."""
    from repohost.db import bootstrap

    _wipe(migrated)
    _empty(repos_root())
    bootstrap.ensure_defaults()
    bootstrap.ensure_first_admin(ADMIN_KEY)
    return migrated


@pytest.fixture(scope="session")
def local_server(migrated: str) -> Iterator[str]:
    from repohost.local.server import LocalServer

    with LocalServer(ROOT / "template.yaml", port=0) as server:
        yield server.url


@pytest.fixture(params=["lambda", "http"])
def api(request: pytest.FixtureRequest, db: str) -> Api:
    """An API client, once calling the Lambda handler, once over real HTTP."""
    if request.param == "http":
        return Api(HttpTransport(request.getfixturevalue("local_server")), ADMIN_KEY)
    return Api(LambdaTransport(), ADMIN_KEY)


@pytest.fixture
def lambda_api(db: str) -> Api:
    """In-process only: for tests that need to choose the client IP."""
    return Api(LambdaTransport(), ADMIN_KEY)
