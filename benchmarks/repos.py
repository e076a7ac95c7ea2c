"""Repository methods at scale through the local server (real HTTP, real PostgreSQL, real git).

    .venv/bin/python benchmarks/repos.py [--calls 200] [--repos 10000]

Kallithea 0.7 on the same kind of machine takes about 19 ms for ``get_repo``,
60 ms for ``get_repos`` with 100 repositories and 120 ms for ``get_repo_nodes``
at the root of a 900-file repository; repohost's targets are a fifth of each,
and ``get_repos`` over 10,000 repositories at most 100 ms (issue 3, "Scale").

Repositories for the ``get_repos`` figures are inserted straight into the
database (rows and the anonymous user's permission rows; ``get_repos`` never
opens a repository directory); every tenth is private. The regular user is in
a user group with ``repository.write`` on 200 repositories and has their own
``repository.read`` on 100 private ones, so both permission paths are used.
``get_repo_nodes`` runs on a real repository made through the API, with 900
files in 120 directories pushed with git. Each figure is the client's
wall-clock time per call on loopback with keep-alive, from sending the request
to the last byte of the answer, after a warm-up (decoding the answer is the
client's business: for 10,000 repositories, 6 MB of JSON, it takes Python's
``json.loads`` about 30 ms more).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _setup import ADMIN_KEY, ROOT, describe, migrated_postgres

USER_KEY = "c" * 40
WARM_UP = 20


class Client:
    """One keep-alive connection to the local server."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.key = key

    def send(self, method: str, args: dict[str, Any]) -> tuple[bytes, bool]:
        """The answer's bytes as they arrived, and whether they are gzip-compressed.

        Answers over 64 KB come compressed (``get_repos`` over 10,000 repositories
        could not leave a Lambda otherwise); inflating them, like decoding, is the
        client's business, so ``timed`` stops the clock before either.
        """
        body = json.dumps({"id": 1, "api_key": self.key, "method": method, "args": args})
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        self.connection.request("POST", "/_admin/api", body, headers)
        reply = self.connection.getresponse()
        return reply.read(), reply.getheader("Content-Encoding") == "gzip"

    @staticmethod
    def answer(raw: bytes, gzipped: bool) -> Any:
        answer = json.loads(gzip.decompress(raw) if gzipped else raw)
        assert answer["error"] is None, answer
        return answer["result"]

    def call(self, method: str, **args: Any) -> Any:
        return self.answer(*self.send(method, args))

    def timed(self, calls: int, method: str, **args: Any) -> tuple[list[float], Any]:
        """Time to the last byte of each answer (inflating and decoding it not counted)."""
        samples: list[float] = []
        reply = b"", False
        for i in range(calls + WARM_UP):
            start = time.perf_counter()
            reply = self.send(method, args)
            elapsed = (time.perf_counter() - start) * 1000
            if i >= WARM_UP:
                samples.append(elapsed)
        return samples, self.answer(*reply)


def report(label: str, samples: list[float], target_ms: float) -> bool:
    import statistics

    median = statistics.median(samples)
    verdict = "ok" if median <= target_ms else "MISSED"
    print(f"{label:48s} {describe(samples)}  target ≤ {target_ms:g} ms: {verdict}", flush=True)
    return median <= target_ms


def permission_ids(session: Any) -> dict[str, int]:
    from sqlalchemy import select

    from repohost.db.models import Permission

    rows = session.execute(select(Permission.permission_name, Permission.permission_id))
    return {name: permission_id for name, permission_id in rows}


def insert_repositories(first: int, count: int, owner_id: int) -> None:
    """``count`` repository rows with their anonymous-user permission rows, in bulk."""
    from sqlalchemy import insert, select

    from repohost.db.engine import transaction
    from repohost.db.models import Repository, User, UserRepoToPerm

    now = datetime(2024, 5, 1, 12, 0, 0)
    with transaction() as session:
        perms = permission_ids(session)
        default_id = session.scalars(select(User.user_id).where(User.username == "default")).one()
        rows = []
        for n in range(first, first + count):
            rows.append(
                {
                    "repo_name": f"repo-{n:05d}",
                    "repo_type": "git",
                    "owner_id": owner_id,
                    "private": n % 10 == 9,
                    "description": f"Repository number {n}, with a sentence of description.",
                    "created_on": now,
                    "updated_on": now,
                    "landing_rev": "rev:tip",
                    "changeset_cache": {
                        "short_id": f"{n:012x}",
                        "raw_id": f"{n:040x}",
                        "revision": n % 500,
                        "message": f"Commit message of repository {n}\n\nWith a body.",
                        "date": "2024-04-30T10:11:12",
                        "author": "Alice Example <alice@example.com>",
                    },
                }
            )
        ids = session.scalars(
            insert(Repository).returning(Repository.repo_id, sort_by_parameter_order=True), rows
        ).all()
        session.execute(
            insert(UserRepoToPerm),
            [
                {
                    "user_id": default_id,
                    "repository_id": repo_id,
                    "permission_id": perms[
                        "repository.none" if row["private"] else "repository.read"
                    ],
                }
                for repo_id, row in zip(ids, rows, strict=True)
            ],
        )


def grant_regular_user(user_id: int) -> None:
    """A user group with write on 200 repositories; the user's own read on 100 private ones."""
    from sqlalchemy import insert, select

    from repohost.db.engine import transaction
    from repohost.db.models import (
        Repository,
        UserGroup,
        UserGroupMember,
        UserGroupRepoToPerm,
        UserRepoToPerm,
    )

    with transaction() as session:
        perms = permission_ids(session)
        repo_ids = session.scalars(select(Repository.repo_id).order_by(Repository.repo_id)).all()
        private = session.scalars(
            select(Repository.repo_id).where(Repository.private).order_by(Repository.repo_id)
        ).all()
        group = UserGroup(users_group_name="developers", owner_id=user_id)
        session.add(group)
        session.flush()
        session.add(UserGroupMember(users_group_id=group.users_group_id, user_id=user_id))
        session.execute(
            insert(UserGroupRepoToPerm),
            [
                {
                    "users_group_id": group.users_group_id,
                    "repository_id": repo_id,
                    "permission_id": perms["repository.write"],
                }
                for repo_id in repo_ids[::50][:200]
            ],
        )
        session.execute(
            insert(UserRepoToPerm),
            [
                {"user_id": user_id, "repository_id": r, "permission_id": perms["repository.read"]}
                for r in private[:100]
            ],
        )


def nine_hundred_files() -> dict[str, str]:
    """900 files in 120 directories (3 levels), a few at the top."""
    files: dict[str, str] = {f"top-{i}.txt": f"top {i}\n" for i in range(4)}
    directories = [f"d{a}" for a in range(8)]
    directories += [f"d{a}/s{b}" for a in range(8) for b in range(4)]
    directories += [f"d{a}/s{b}/t{c}" for a in range(8) for b in range(4) for c in range(2)]
    directories += [f"lib{a}" for a in range(16)]
    assert len(directories) == 120
    n = 0
    while len(files) < 900:
        directory = directories[n % len(directories)]
        files[f"{directory}/file-{n:04d}.py"] = f"print({n})\n"
        n += 1
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repos", type=int, default=10_000)
    options = parser.parse_args()
    os.environ["REPOHOST_REPOS_ROOT"] = tempfile.mkdtemp(prefix="bench-repos-")
    print(f"{'call':48s} client wall-clock per call, {options.calls} calls after {WARM_UP}")
    met = []
    with migrated_postgres("bench_repos"):
        import logging

        from tests.support.gitcli import push_commits

        from repohost.config import get_settings
        from repohost.local.server import LocalServer

        logging.getLogger("repohost.local.server").setLevel(logging.WARNING)  # one line a call

        with LocalServer(ROOT / "template.yaml", port=0) as server:
            port = int(server.url.rsplit(":", 1)[1])
            admin = Client(port, ADMIN_KEY)
            user_id = admin.call("create_user", username="regular", email="regular@example.com")[
                "user"
            ]["user_id"]
            regular = Client(port, admin.call("create_api_key", userid=user_id)["api_key"])
            admin_id = admin.call("get_user")["user_id"]

            insert_repositories(0, 100, admin_id)
            samples, result = admin.timed(options.calls, "get_repos")
            assert len(result) == 100
            met.append(report("get_repos, 100 repositories, admin", samples, 12))
            samples, result = regular.timed(options.calls, "get_repos")
            met.append(report(f"get_repos, 100 repositories, regular ({len(result)})", samples, 12))

            samples, _ = admin.timed(options.calls, "get_repo", repoid="repo-00050")
            met.append(report("get_repo, admin", samples, 3.8))
            samples, _ = regular.timed(options.calls, "get_repo", repoid="repo-00050")
            met.append(report("get_repo, regular", samples, 3.8))

            admin.call("create_repo", repo_name="big")
            bare = Path(get_settings().repos_root) / "big"
            push_commits(bare, [nine_hundred_files()])
            samples, nodes = admin.timed(
                options.calls, "get_repo_nodes", repoid="big", revision="tip", root_path="/"
            )
            assert len(nodes) == 900 + 120, len(nodes)
            met.append(report("get_repo_nodes, root of 900 files / 120 dirs", samples, 24))

            insert_repositories(100, options.repos - 100, admin_id)
            grant_regular_user(user_id)
            total = options.repos + 1
            samples, result = admin.timed(options.calls // 4, "get_repos")
            assert len(result) == total, len(result)
            met.append(report(f"get_repos, {total} repositories, admin", samples, 100))
            samples, result = regular.timed(options.calls // 4, "get_repos")
            met.append(
                report(f"get_repos, {total} repositories, regular ({len(result)})", samples, 100)
            )
            samples, _ = admin.timed(options.calls, "get_repo", repoid="repo-05000")
            met.append(report(f"get_repo, admin, {total} repositories", samples, 3.8))
            samples, _ = regular.timed(options.calls, "get_repo", repoid="repo-05000")
            met.append(report(f"get_repo, regular, {total} repositories", samples, 3.8))
    print("all targets met" if all(met) else "SOME TARGETS MISSED")


if __name__ == "__main__":
    main()
