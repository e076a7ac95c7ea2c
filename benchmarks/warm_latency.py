"""Warm latency of simple calls through the local server (real HTTP, real PostgreSQL).

    .venv/bin/python benchmarks/warm_latency.py [--calls 300] [--users 100]

The local server calls the same Lambda handler as AWS does; the figure is
the client's wall-clock time per call on loopback, after a warm-up.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time

from _setup import ADMIN_KEY, ROOT, describe, migrated_postgres


def timed_calls(port: int, method: str, args: dict, calls: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"id": 1, "api_key": ADMIN_KEY, "method": method, "args": args})
    samples = []
    for i in range(calls + 20):
        start = time.perf_counter()
        connection.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        elapsed = (time.perf_counter() - start) * 1000
        assert answer["error"] is None, answer
        if i >= 20:  # warm-up
            samples.append(elapsed)
    connection.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--users", type=int, default=100)
    options = parser.parse_args()
    with migrated_postgres():
        from repohost.db.engine import transaction
        from repohost.db.models import User
        from repohost.local.server import LocalServer

        with transaction() as session:
            session.add_all(
                User(username=f"user{i:04d}", email=f"user{i:04d}@example.com")
                for i in range(options.users)
            )
        with LocalServer(ROOT / "template.yaml", port=0) as server:
            port = int(server.url.rsplit(":", 1)[1])
            for method in ("get_user", "get_users"):
                samples = timed_calls(port, method, {}, options.calls)
                print(f"{method:10s} ({options.users} users): {describe(samples)}")


if __name__ == "__main__":
    main()
