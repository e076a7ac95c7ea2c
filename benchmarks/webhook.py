"""Webhook to updated: one pushed commit, one signed GitHub webhook, until ``last_changeset`` moves.

    .venv/bin/python benchmarks/webhook.py [--rounds 30] [--template template.yaml]

Everything runs as under ``make run``: the local server calls the Lambda
handlers in-process, jobs go through the in-process queue to the same worker
code as on AWS, the database is PostgreSQL. The upstream is ``git
http-backend`` on 127.0.0.1 (``tests.support.upstream``), which repohost is
allowed to fetch from here (``REPOHOST_ALLOW_PRIVATE_REMOTES``).

Each round commits one change in a clone of the upstream and pushes it; the
clock starts once the push is done. A signed GitHub ``push`` webhook is posted
to ``/_admin/hooks/<repo>`` and ``get_repo`` is polled every 5 ms on another
connection until ``last_changeset`` is the new commit. Printed: the webhook's
own answer time and the webhook-to-updated time (issue 5 targets at most 1 s
median), after a warm-up.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _setup import ADMIN_KEY, ROOT, describe, git, migrated_postgres

WARM_UP = 3
POLL = 0.005
GIVE_UP = 60.0


class Client:
    """One keep-alive connection to the local server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.connection.request("POST", path, body, headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def call(self, method: str, **args: Any) -> Any:
        body = json.dumps({"id": 1, "api_key": ADMIN_KEY, "method": method, "args": args})
        status, raw = self.post("/_admin/api", body.encode(), {"Content-Type": "application/json"})
        answer = json.loads(raw)
        if status != 200 or answer["error"] is not None:
            raise RuntimeError(f"{method}: {status} {answer}")
        return answer["result"]


def webhook_headers(secret: str, body: bytes) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={signature}",
    }


def wait_for(api: Client, name: str, tip: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while api.call("get_repo", repoid=name)["last_changeset"]["raw_id"] != tip:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not reach {tip} within {GIVE_UP} s")
        time.sleep(POLL)


def has_hook_route(template: Path) -> bool:
    from repohost.local.template import routes_from_template

    return any(r.route_key == "POST /_admin/hooks/{repo+}" for r in routes_from_template(template))


def run(template: Path, rounds: int, work_root: Path) -> None:
    from tests.support.upstream import GitUpstream

    from repohost.local.server import LocalServer

    with GitUpstream(work_root / "upstream") as upstream, LocalServer(template, port=0) as server:
        origin = upstream.create("proj.git")
        work = work_root / "work"
        git(work_root, "init", "-q", str(work))
        (work / "counter.txt").write_text("0\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "start")
        git(work, "push", "-q", str(origin), "master")

        port = int(server.url.rsplit(":", 1)[1])
        api, hooks = Client(port), Client(port)
        api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
        wait_for(api, "mirror", git(work, "rev-parse", "HEAD"))
        secret = api.call("set_webhook_secret", repoid="mirror")["webhook_secret"]
        body = json.dumps({"ref": "refs/heads/master"}).encode()

        answers, updated = [], []
        for number in range(WARM_UP + rounds):
            (work / "counter.txt").write_text(f"{number + 1}\n")
            git(work, "commit", "-q", "-am", f"change {number + 1}")
            git(work, "push", "-q", str(origin), "master")
            tip = git(work, "rev-parse", "HEAD")
            start = time.perf_counter()
            status, raw = hooks.post("/_admin/hooks/mirror", body, webhook_headers(secret, body))
            answered = time.perf_counter()
            if status != 202:
                raise RuntimeError(f"webhook answered {status}: {raw!r}")
            wait_for(api, "mirror", tip)
            done = time.perf_counter()
            if number >= WARM_UP:
                answers.append((answered - start) * 1000)
                updated.append((done - start) * 1000)
        print(f"webhook answer:             {describe(answers)}")
        print(f"webhook to last_changeset:  {describe(updated)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    options = parser.parse_args()
    if not has_hook_route(options.template):
        sys.exit(
            f"{options.template} has no POST /_admin/hooks/{{repo+}} route; try"
            " --template tests/fixtures/hooks_template/template.yaml"
        )
    with tempfile.TemporaryDirectory() as tmp:
        work_root = Path(tmp)
        os.environ["REPOHOST_REPOS_ROOT"] = str(work_root / "repos")
        os.environ["REPOHOST_ALLOW_PRIVATE_REMOTES"] = "127.0.0.1/32"
        os.environ.pop("REPOHOST_JOB_QUEUE_URL", None)  # the in-process queue
        os.environ.setdefault("LOG_LEVEL", "WARNING")  # an access-log line per poll otherwise
        with migrated_postgres("bench_webhook"):
            run(options.template, options.rounds, work_root)


if __name__ == "__main__":
    main()
