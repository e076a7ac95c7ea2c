"""Load: many concurrent clients against the local server with a realistic mix of calls.

    .venv/bin/python benchmarks/load.py [--clients 200] [--seconds 60] [--seed N]

Each client is a thread with its own keep-alive connection that picks its next
request at random from a weighted mix: mostly reads (users, repositories,
nodes, changesets, raw files, diffs, archives, feeds) and a few writes (a
repository of its own created, renamed and deleted; a gist). Everything runs
against ``repohost.local.server.LocalServer`` with a throwaway PostgreSQL.

It reports errors (any non-200 status, any JSON-RPC error, any transport
failure), throughput, latency percentiles per kind of call, and database
connections: the most the engine's pool had checked out at once, how many
it opened in all, and the most ``pg_stat_activity`` showed (sampled every
0.1 s). It exits non-zero when there was any error. Only loopback is used, and
the run stops by itself.

The local server runs one invocation per function at a time, like one warm
Lambda instance per function: under 200 clients the latency is mostly queueing
behind the other clients' calls, not the time one call takes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from _setup import ADMIN_KEY, ROOT, migrated_postgres

Samples = dict[str, list[float]]
Outcome = tuple[bool, object]


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def reconnect(self) -> None:
        self.connection.close()
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def rpc(self, method: str, **args: object) -> Outcome:
        body = json.dumps({"id": 1, "api_key": self.key, "method": method, "args": args})
        self.connection.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            return False, f"HTTP {response.status}: {data[:200]!r}"
        envelope = json.loads(data)
        return envelope["error"] is None, envelope["error"] or envelope["result"]

    def get(self, path: str) -> Outcome:
        self.connection.request("GET", path, headers={"Authorization": f"Bearer {self.key}"})
        response = self.connection.getresponse()
        data = response.read()
        return response.status == 200, f"HTTP {response.status} {path}: {data[:120]!r}"


class Mix:
    """One client's requests: weighted reads, and writes on a repository of its own."""

    def __init__(self, client: Client, number: int, rng: random.Random, views: set[str]) -> None:
        self.client, self.rng = client, rng
        self.own = f"load/c{number}"
        self.state = "absent"  # absent -> created -> renamed -> absent
        self.gists: list[int] = []
        rpc, get = client.rpc, client.get
        app = "load/app"
        kinds: list[tuple[str, int, Callable[[], Outcome]]] = [
            ("get_user", 8, lambda: rpc("get_user")),
            ("get_repos", 6, lambda: rpc("get_repos")),
            ("get_repo", 12, lambda: rpc("get_repo", repoid=app)),
            (
                "get_repo_nodes",
                6,
                lambda: rpc("get_repo_nodes", repoid=app, revision="tip", root_path="src"),
            ),
            ("get_changesets", 8, lambda: rpc("get_changesets", repoid=app, max_revisions=20)),
            ("get_changeset", 6, lambda: rpc("get_changeset", repoid=app, raw_id=self.tip())),
            ("write_repo", 3, self.write_repo),
            ("create_gist", 1, self.create_gist),
        ]
        if "FilesFunction" in views:
            kinds.append(
                ("raw", 16, lambda: get(f"/{app}/raw/tip/src/module{rng.randrange(200)}.py"))
            )
        if "ChangesetsFunction" in views:
            kinds.append(("diff", 8, lambda: get(f"/{app}/changeset-diff/tip")))
        if "ArchiveFunction" in views:
            kinds.append(("archive", 4, lambda: get(f"/{app}/archive/tip.tar.gz")))
        if "FeedsFunction" in views:
            kinds.append(("feed", 3, lambda: get(f"/{app}/feed/atom")))
        self.kinds = kinds
        self.weights = [weight for _, weight, _ in kinds]

    #: The ids of load/app's commits (set once the repository is filled).
    tips: ClassVar[list[str]] = []

    def tip(self) -> str:
        return self.rng.choice(self.tips)

    def next(self) -> tuple[str, Callable[[], Outcome]]:
        kind, _weight, call = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "write_repo":  # name the step, so each has its own figures
            kind = {"absent": "create_repo", "created": "update_repo", "renamed": "delete_repo"}[
                self.state
            ]
        return kind, call

    def write_repo(self) -> Outcome:
        client, own = self.client, self.own
        if self.state == "absent":
            outcome = client.rpc("create_repo", repo_name=own, description="load")
            self.state = "created" if outcome[0] else self.state
        elif self.state == "created":
            outcome = client.rpc("update_repo", repoid=own, name=own.rsplit("/", 1)[1] + "-x")
            self.state = "renamed" if outcome[0] else self.state
        else:
            outcome = client.rpc("delete_repo", repoid=own + "-x")
            self.state = "absent" if outcome[0] else self.state
        return outcome

    def create_gist(self) -> Outcome:
        files = {"notes.txt": {"content": "load test\n" * self.rng.randrange(1, 100)}}
        ok, result = self.client.rpc("create_gist", files=files, gist_type="private")
        return ok, result


def run(
    port: int, clients: int, seconds: float, views: set[str], seed: int
) -> tuple[Samples, list[str]]:
    samples: Samples = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work(number: int) -> None:
        client = Client(port, ADMIN_KEY)
        mix = Mix(client, number, random.Random(seed * 1000 + number), views)
        start.wait()
        while time.monotonic() < deadline[0]:
            kind, call = mix.next()
            began = time.perf_counter()
            try:
                ok, detail = call()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, detail = False, repr(exc)
                client.reconnect()
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                samples[kind].append(elapsed)
                if not ok:
                    errors.append(f"{kind}: {str(detail)[:160]}")
        client.connection.close()

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    start.wait()
    for thread in threads:
        thread.join(timeout=seconds + 600)
        if thread.is_alive():
            errors.append("a client was still waiting ten minutes after the end")
    return samples, errors


class Connections:
    """The engine pool's most checked-out connections and connections opened."""

    def __init__(self) -> None:
        from sqlalchemy import event

        from repohost.db.engine import get_engine

        self.engine = get_engine()
        self.lock = threading.Lock()
        self.checked_out = 0
        self.most_checked_out = 0
        self.opened = 0
        event.listen(self.engine, "connect", self._connect)
        event.listen(self.engine, "checkout", self._checkout)
        event.listen(self.engine, "checkin", self._checkin)

    def _connect(self, *_args: object) -> None:
        with self.lock:
            self.opened += 1

    def _checkout(self, *_args: object) -> None:
        with self.lock:
            self.checked_out += 1
            self.most_checked_out = max(self.most_checked_out, self.checked_out)

    def _checkin(self, *_args: object) -> None:
        with self.lock:
            self.checked_out -= 1

    def limit(self) -> str:
        pool = self.engine.pool
        size, overflow = getattr(pool, "_pool", None), getattr(pool, "_max_overflow", None)
        return f"pool_size {size.maxsize if size else '?'}, max_overflow {overflow}"


def server_side(url: str, stop: threading.Event, seen: list[int]) -> None:
    """Sample the database's own count of connections to ``bench`` (less this watcher's)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        while not stop.wait(0.1):
            count = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench'")
            ).scalar_one()
            connection.rollback()
            seen.append(int(count) - 1)
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    load_before = os.getloadavg()
    cache = tempfile.TemporaryDirectory()
    os.environ["REPOHOST_ARCHIVE_CACHE_DIR"] = cache.name  # not ./data of the checkout
    with cache, migrated_postgres() as url:
        from tests.support.gitcli import push_commits

        from repohost.config import get_settings
        from repohost.jobs import queue
        from repohost.local.server import LocalServer
        from repohost.logs import configure_logging

        # One line per request from 200 clients would cost the server (same process) more
        # than the requests: only warnings and errors are shown.
        configure_logging()
        logging.getLogger("repohost").setLevel(logging.WARNING)
        with LocalServer(ROOT / "template.yaml", port=0) as server:
            port = int(server.url.rsplit(":", 1)[1])
            setup = Client(port, ADMIN_KEY)
            assert setup.rpc("create_repo_group", group_name="load")[0]
            assert setup.rpc("create_repo", repo_name="load/app")[0]
            commits = [
                {f"src/module{i}.py": f"value = {i + n}\n" * 20 for i in range(200) if i % 7 == n}
                for n in range(7)
            ]
            Mix.tips = push_commits(Path(get_settings().repos_root) / "load" / "app", commits)
            setup.connection.close()
            views = {route.function_name for route in server.routes}
            connections = Connections()
            seen: list[int] = []
            stop = threading.Event()
            watcher = threading.Thread(target=server_side, args=(url, stop, seen), daemon=True)
            watcher.start()
            started = time.monotonic()
            samples, errors = run(port, options.clients, options.seconds, views, options.seed)
            elapsed = time.monotonic() - started
            stop.set()
            watcher.join()
            queue.drain(60)
    total = sum(len(v) for v in samples.values())
    print(
        f"python benchmarks/load.py --clients {options.clients} --seconds {options.seconds:g} "
        f"--seed {options.seed}"
    )
    print(
        f"{os.cpu_count()} CPUs, load average before {load_before[0]:.2f}; server, PostgreSQL "
        "and clients on this one machine"
    )
    print(f"{options.clients} clients, {elapsed:.0f} s, {total} requests ({total / elapsed:.0f}/s)")
    print(f"errors: {len(errors)}")
    for line in errors[:10]:
        print("  " + line)
    print(f"{'request':16s} {'n':>7s} {'per s':>7s} {'p50 ms':>9s} {'p95 ms':>9s} {'p99 ms':>9s}")
    for kind, values in sorted(samples.items()):
        q = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        print(
            f"{kind:16s} {len(values):7d} {len(values) / elapsed:7.1f} "
            f"{q[49]:9.1f} {q[94]:9.1f} {q[98]:9.1f}"
        )
    print(
        f"database connections: at most {connections.most_checked_out} checked out at once, "
        f"{connections.opened} opened during the run ({connections.limit()}); "
        f"pg_stat_activity at most {max(seen) if seen else 'n/a'}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
