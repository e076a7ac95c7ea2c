"""Every function's sample event in ``events/`` drives its handler to a real answer.

The events are what ``sam local invoke -e`` and the docs show, so they must stay
true to both sides: their HTTP shape is checked against the routes in
``template.yaml`` (route key, path parameters), and each is fed unchanged to its
function's handler against the test database and repository root after the
repository, commits, key and webhook secret it names have been made.

The sample repository is ``acme/website`` (two levels, so the events also show
the group-depth routes); its commits are built with fixed authors and dates, so
the commit id in ``changesets_get_diff.json`` is the one built here. The ``api``
and ``migrate`` events go through their handlers in ``tests/test_deploy_pieces.py``.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import io
import json
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"

#: The repository, key and webhook secret the sample events name (all fake).
REPO = "acme/website"
SAMPLE_KEY = "0" * 40
SAMPLE_WEBHOOK_SECRET = "sample-webhook-secret-not-real"
#: The sample repository's commits, oldest first: (message, files, commit time).
COMMITS = [
    (
        "Initial commit",
        {"README.md": "# Website\n", "index.html": "<h1>Hello from acme.example</h1>\n"},
        1_700_000_000,
    ),
    (
        "Describe the website",
        {"README.md": "# Website\n\nThe acme.example home page.\n"},
        1_700_000_060,
    ),
]
#: Their ids, the same on every machine: an id hashes only content, authors, dates, message.
COMMIT_IDS = [
    "763ee498aba707a517e12cf902a3856edac9099a",
    "18a5b5aeafe1a01a8813d78675db2a21bae23fb6",
]


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def load_function(name: str) -> ModuleType:
    """``functions/<name>/app.py`` as Lambda loads it: a file, not a package module."""
    spec = importlib.util.spec_from_file_location(f"fn_{name}", FUNCTIONS / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def body_of(answer: dict[str, Any]) -> bytes:
    body = answer.get("body") or ""
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def push_sample_commits(bare: Path, upto: int = len(COMMITS)) -> list[str]:
    """Commit ``COMMITS[:upto]`` in a scratch work tree and push them to ``bare``."""
    ids = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        git(work, "init", "-q")
        for message, files, when in COMMITS[:upto]:
            for name, content in files.items():
                (work / name).write_text(content)
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", message, when=when)
            ids.append(git(work, "rev-parse", "HEAD").strip())
        git(work, "push", "-q", str(bare.resolve()), "master")
    return ids


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The template's defaults: the default key whitelist, no bucket (archives cached locally)."""
    from repohost.config import get_settings
    from repohost.web import archive_cache

    for name in (
        "REPOHOST_API_ACCESS_WHITELIST",
        "REPOHOST_ARCHIVE_BUCKET",
        "REPOHOST_ARCHIVE_INLINE_LIMIT",
        "REPOHOST_JOB_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPOHOST_ARCHIVE_CACHE_DIR", str(tmp_path / "archive-cache"))
    get_settings.cache_clear()
    archive_cache._s3_client.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    archive_cache._s3_client.cache_clear()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Jobs sent after commit, kept here instead of run by the in-process worker."""
    from repohost.jobs import queue

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(queue, "send", lambda *message: sent.append(message))
    return sent


@pytest.fixture
def website(lambda_api: Api, settings: None) -> list[str]:
    """``acme/website`` with the sample commits, and the sample key as one of admin's keys."""
    from repohost.auth.keys import add_key
    from repohost.db import queries
    from repohost.db.engine import transaction

    lambda_api.call("create_repo_group", group_name="acme")
    lambda_api.call("create_repo", repo_name=REPO)
    ids = push_sample_commits(repos_root() / REPO)
    assert ids == COMMIT_IDS, "the sample commits changed: update COMMIT_IDS and events/"
    with transaction() as session:
        add_key(session, queries.get_user(session, "admin"), key=SAMPLE_KEY)
    return ids


# --- shapes ---------------------------------------------------------------------------------


def test_every_function_has_a_sample_event() -> None:
    functions = sorted(p.name for p in FUNCTIONS.iterdir() if (p / "app.py").is_file())
    assert functions, "no functions found"
    events = [p.name for p in EVENTS.glob("*.json")]
    missing = [f for f in functions if not any(e.startswith(f"{f}_") for e in events)]
    assert missing == [], f"functions without a sample event (events/<function>_*.json): {missing}"


HTTP_EVENTS = {
    "api_get_user.json": "api",
    "files_get_raw.json": "files",
    "changesets_get_diff.json": "changesets",
    "archive_get_tar_gz.json": "archive",
    "feeds_get_atom.json": "feeds",
    "hooks_github_push.json": "hooks",
}


@pytest.mark.parametrize(("name", "function"), HTTP_EVENTS.items())
def test_http_events_are_what_api_gateway_sends_for_their_route(name: str, function: str) -> None:
    """Route key, path parameters and query parameters agree with template.yaml and the path."""
    import urllib.parse

    from repohost.local.template import match_route, routes_from_template, sort_routes

    event = load_event(name)
    assert event["version"] == "2.0"
    http = event["requestContext"]["http"]
    assert http["path"] == event["rawPath"]
    assert event["requestContext"]["routeKey"] == event["routeKey"]
    assert event["isBase64Encoded"] is False
    assert all(key == key.lower() for key in event["headers"]), "API Gateway lower-cases headers"
    routes = sort_routes(routes_from_template(ROOT / "template.yaml"))
    matched = match_route(routes, http["method"], event["rawPath"])
    assert matched is not None, f"{name}: no route for {http['method']} {event['rawPath']}"
    route, parameters = matched
    assert route.code_uri.name == function
    assert route.route_key == event["routeKey"]
    assert event.get("pathParameters", {}) == parameters
    query = dict(urllib.parse.parse_qsl(event["rawQueryString"]))
    assert event.get("queryStringParameters", {}) == query
    if "body" in event:
        assert event["headers"]["content-length"] == str(len(event["body"].encode()))


def test_the_worker_event_is_one_fifo_record() -> None:
    import hashlib

    [record] = load_event("worker_sqs_job.json")["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(".fifo")
    assert record["attributes"]["MessageGroupId"]
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()  # noqa: S324


def test_the_recovery_event_is_a_scheduled_event() -> None:
    event = load_event("recovery_scheduled.json")
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")


# --- each event through its handler ---------------------------------------------------------


def test_files_event_serves_the_raw_file(website: list[str]) -> None:
    answer = load_function("files").handler(load_event("files_get_raw.json"), None)
    assert answer["statusCode"] == 200, body_of(answer)
    assert answer["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert body_of(answer) == COMMITS[1][1]["README.md"].encode()


def test_changesets_event_serves_the_commits_diff(website: list[str]) -> None:
    event = load_event("changesets_get_diff.json")
    assert event["pathParameters"]["rev"] == website[1]
    answer = load_function("changesets").handler(event, None)
    assert answer["statusCode"] == 200, body_of(answer)
    diff = body_of(answer).decode()
    assert "diff --git a/README.md b/README.md" in diff
    assert "+The acme.example home page." in diff
    assert "index.html" not in diff, "only the commit's own change"


def test_archive_event_serves_a_tarball_of_the_tip(website: list[str]) -> None:
    answer = load_function("archive").handler(load_event("archive_get_tar_gz.json"), None)
    assert answer["statusCode"] == 200, body_of(answer)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body_of(answer)))) as tar:
        files = {
            member.name.split("/", 1)[1]: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }
    assert files == {
        "README.md": COMMITS[1][1]["README.md"].encode(),
        "index.html": COMMITS[0][1]["index.html"].encode(),
    }


def test_feeds_event_serves_an_atom_feed_of_the_commits(website: list[str]) -> None:
    answer = load_function("feeds").handler(load_event("feeds_get_atom.json"), None)
    assert answer["statusCode"] == 200, body_of(answer)
    assert answer["headers"]["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(body_of(answer))  # noqa: S314 - our own output
    atom = "{http://www.w3.org/2005/Atom}"
    assert feed.tag == f"{atom}feed"
    titles = [entry.findtext(f"{atom}title") or "" for entry in feed.iter(f"{atom}entry")]
    assert len(titles) == 2
    assert "Describe the website" in titles[0]


def test_hooks_event_queues_a_pull(
    website: list[str], lambda_api: Api, held: list[tuple[Any, ...]]
) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import Job

    lambda_api.call("set_webhook_secret", repoid=REPO, secret=SAMPLE_WEBHOOK_SECRET)
    event = load_event("hooks_github_push.json")
    answer = load_function("hooks").handler(event, None)
    assert (answer["statusCode"], json.loads(answer["body"])) == (202, {"status": "queued"})
    repo_id = lambda_api.call("get_repo", repoid=REPO)["repo_id"]
    with transaction() as session:
        [job] = session.query(Job).filter(Job.repository_id == repo_id).all()
        assert (job.kind, job.state) == ("pull", "queued")
        assert job.payload["ip"] == event["requestContext"]["http"]["sourceIp"]
    assert [message[0] for message in held] == [job.job_id]
    # The same delivery again (GitHub's "Redeliver") starts nothing.
    again = load_function("hooks").handler(event, None)
    assert json.loads(again["body"]) == {"status": "duplicate"}


def test_worker_event_runs_its_job(lambda_api: Api, settings: None) -> None:
    """The record's job: a pull of a fork from its parent, which has moved on since the fork."""
    from repohost.db.engine import transaction
    from repohost.db.models import Job

    lambda_api.call("create_repo_group", group_name="acme")
    lambda_api.call("create_repo", repo_name="acme/upstream")
    first, second = COMMIT_IDS
    assert push_sample_commits(repos_root() / "acme" / "upstream", upto=1) == [first]
    lambda_api.call("fork_repo", repoid="acme/upstream", fork_name=REPO)
    assert git(repos_root() / REPO, "rev-parse", "master").strip() == first
    push_sample_commits(repos_root() / "acme" / "upstream")  # now both commits
    event = load_event("worker_sqs_job.json")
    [record] = event["Records"]
    repo_id = lambda_api.call("get_repo", repoid=REPO)["repo_id"]
    with transaction() as session:
        session.add(Job(job_id=record["body"], kind="pull", repository_id=repo_id, payload={}))
    answer = load_function("worker").handler(event, None)
    assert answer == {"batchItemFailures": []}
    with transaction() as session:
        job = session.get(Job, record["body"])
        assert job is not None and (job.state, job.error) == ("done", "")
    assert git(repos_root() / REPO, "rev-parse", "master").strip() == second
    assert lambda_api.call("get_repo", repoid=REPO)["last_changeset"]["raw_id"] == second


def test_recovery_event_runs_a_recovery(db: str) -> None:
    """Nothing left behind here (tests/test_recovery_function.py has the killed calls)."""
    answer = load_function("recovery").handler(load_event("recovery_scheduled.json"), None)
    assert answer == {"settled": 0, "undone": 0, "purged": 0}
