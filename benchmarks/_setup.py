"""What the benchmarks share: a throwaway PostgreSQL with repohost's schema and an admin."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import PostgresServer  # noqa: E402

ADMIN_KEY = "b" * 40


@contextmanager
def migrated_postgres(dbname: str = "bench") -> Iterator[str]:
    """A fresh database, migrated, with the first admin holding ``ADMIN_KEY``.

    Repositories go to a temporary folder, removed afterwards.
    """
    with PostgresServer() as server, tempfile.TemporaryDirectory() as repos:
        url = server.create_database(dbname)
        os.environ["REPOHOST_DATABASE_URL"] = url
        os.environ["REPOHOST_REPOS_ROOT"] = repos
        from repohost.db import bootstrap, engine, migrate

        engine.reset()
        migrate.upgrade()
        bootstrap.ensure_defaults()
        bootstrap.ensure_first_admin(ADMIN_KEY)
        yield url


def describe(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, "
        f"min {ordered[0]:.1f} ms (n={len(ordered)})"
    )
