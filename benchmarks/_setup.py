"""What the benchmarks share: a throwaway PostgreSQL with repohost's schema and an admin."""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import subprocess
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


def git(cwd: Path, *args: str) -> str:
    """Run git with no user or system configuration; its output, stripped."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=master", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode().strip()


def rpc(port: int, method: str, **args: object) -> object:
    """One JSON-RPC call as the admin; fails loudly on an error answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"id": 1, "api_key": ADMIN_KEY, "method": method, "args": args})
    connection.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    connection.close()
    assert answer["error"] is None, answer
    return answer["result"]


def source_tree(
    files: int, rng: random.Random, line_counts: tuple[int, ...] = (15, 40, 80, 150, 300)
) -> dict[str, bytes]:
    """A source-repository-like tree: text files of a small vocabulary, a binary in 60."""
    letters = "abcdefghijklmnopqrstuvwxyz_"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(400)]
    tree = {}
    for number in range(files):
        folder = f"pkg{number % 25}/mod{number % 6}"
        if number % 60 == 0:
            tree[f"{folder}/asset{number}.bin"] = rng.randbytes(rng.randint(2_000, 40_000))
            continue
        text = "\n".join(
            " " * rng.choice([0, 4, 8, 12]) + " ".join(rng.choices(words, k=rng.randint(1, 8)))
            for _ in range(rng.choice(line_counts))
        )
        tree[f"{folder}/file{number}.py"] = text.encode() + b"\n"
    return tree
