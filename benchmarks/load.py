"""Load: many concurrent clients against the local server with a realistic mix of calls.

    .venv/bin/python benchmarks/load.py [--clients 200] [--seconds 60]

Each client is a thread with its own keep-alive connection that loops over a
mix of reads (users, repositories, nodes, changesets, and — when their
functions are present — raw files and archives) and a few writes (creating
and deleting a repository of its own). It reports errors (any non-200 status
or any JSON-RPC error), latency percentiles per kind of call, and the most
database connections seen at once (``pg_stat_activity``). Only loopback is
used, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

from _setup import ADMIN_KEY, ROOT, migrated_postgres

Samples = dict[str, list[float]]


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.key = key

    def rpc(self, method: str, **args: object) -> tuple[bool, object]:
        body = json.dumps({"id": 1, "api_key": self.key, "method": method, "args": args})
        self.connection.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            return False, data[:200]
        envelope = json.loads(data)
        return envelope["error"] is None, envelope["error"] or envelope["result"]

    def get(self, path: str) -> tuple[bool, object]:
        self.connection.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
        response = self.connection.getresponse()
        response.read()
        return response.status == 200, response.status


def _mix(client: Client, number: int, views: bool) -> list[tuple[str, object]]:
    own = f"load/c{number}-{random.randrange(1 << 30)}"
    calls: list[tuple[str, object]] = [
        ("get_user", lambda: client.rpc("get_user")),
        ("get_repos", lambda: client.rpc("get_repos")),
        ("get_repo", lambda: client.rpc("get_repo", repoid="load/app")),
        (
            "get_repo_nodes",
            lambda: client.rpc("get_repo_nodes", repoid="load/app", revision="tip", root_path="/"),
        ),
        ("get_changesets", lambda: client.rpc("get_changesets", repoid="load/app")),
        ("create_repo", lambda: client.rpc("create_repo", repo_name=own)),
        ("delete_repo", lambda: client.rpc("delete_repo", repoid=own)),
    ]
    if views:
        calls += [
            ("raw", lambda: client.get("/load/app/raw/tip/src/module1.py")),
            ("archive", lambda: client.get("/load/app/archive/tip.tar.gz")),
            ("diff", lambda: client.get("/load/app/changeset-diff/tip")),
        ]
    return calls


def run(port: int, clients: int, seconds: float, views: bool) -> tuple[Samples, list[str]]:
    samples: Samples = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work(number: int) -> None:
        client = Client(port, ADMIN_KEY)
        while time.monotonic() < deadline:
            for kind, call in _mix(client, number, views):
                start = time.perf_counter()
                try:
                    ok, detail = call()
                except (OSError, http.client.HTTPException) as exc:
                    ok, detail = False, repr(exc)
                    client = Client(port, ADMIN_KEY)
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    samples[kind].append(elapsed)
                    if not ok:
                        errors.append(f"{kind}: {str(detail)[:120]}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, errors


def max_connections(url: str, stop: threading.Event, seen: list[int]) -> None:
    """Sample the server's connections to the database (less this watcher's own)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        while not stop.wait(0.5):
            count = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench'")
            ).scalar_one()
            seen.append(int(count) - 1)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    options = parser.parse_args()
    with migrated_postgres() as url:
        from tests.support.gitcli import push_commits

        from repohost.config import get_settings
        from repohost.local.server import LocalServer

        with LocalServer(ROOT / "template.yaml", port=0) as server:
            port = int(server.url.rsplit(":", 1)[1])
            setup = Client(port, ADMIN_KEY)
            assert setup.rpc("create_repo_group", group_name="load")[0]
            assert setup.rpc("create_repo", repo_name="load/app")[0]
            files = {f"src/module{i}.py": f"value = {i}\n" * 20 for i in range(200)}
            push_commits(Path(get_settings().repos_root) / "load" / "app", [files, {"README": "x"}])
            views = any(r.function_name == "ArchiveFunction" for r in server.routes)
            seen: list[int] = []
            stop = threading.Event()
            watcher = threading.Thread(target=max_connections, args=(url, stop, seen))
            watcher.start()
            started = time.monotonic()
            samples, errors = run(port, options.clients, options.seconds, views)
            elapsed = time.monotonic() - started
            stop.set()
            watcher.join()
    total = sum(len(v) for v in samples.values())
    print(f"{options.clients} clients, {elapsed:.0f} s, {total} calls ({total / elapsed:.0f}/s)")
    print(f"errors: {len(errors)}")
    for line in errors[:10]:
        print("  " + line)
    print(f"{'call':16s} {'n':>7s} {'p50 ms':>9s} {'p95 ms':>9s} {'p99 ms':>9s}")
    for kind, values in sorted(samples.items()):
        q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        print(f"{kind:16s} {len(values):7d} {q[49]:9.1f} {q[94]:9.1f} {q[98]:9.1f}")
    print(f"database connections at most: {max(seen) if seen else 'n/a'}")


if __name__ == "__main__":
    main()
