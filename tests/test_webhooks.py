"""Push webhooks (issue 5): signatures of each provider, refusals, replays, coalescing, secrets.

Webhooks are sent as API Gateway 2.0 events to the hook handler, and once over
real HTTP through the local runner. Most tests keep the queued job ids instead
of running them (``held``) and look at the ``Job`` rows and the ``pull_pending``
flag the worker acts on; the tests using ``upstream`` let the in-process worker
pull from a real git upstream on loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repohost.config import get_settings
from repohost.jobs import queue
from tests.support.api import Api
from tests.support.gitcli import git, push_commits
from tests.support.upstream import GitUpstream

FIXTURE_TEMPLATE = Path(__file__).parent / "fixtures" / "hooks_template" / "template.yaml"
# GitHub's published example (docs: "Validating webhook deliveries").
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
PUSH_BODY = json.dumps({"ref": "refs/heads/master", "after": "1" * 40}).encode()
UNAUTHORIZED = {"message": "Unauthorized"}


def hexmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(provider: str, secret: str, body: bytes = PUSH_BODY, **extra: str) -> dict[str, str]:
    """Headers as each provider sends them for a push (Gitea also sends GitHub's)."""
    delivery = extra.pop("delivery", str(uuid.uuid4()))
    headers = {
        "github": {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + hexmac(secret, body),
        },
        "gitlab": {
            "X-Gitlab-Event": "Push Hook",
            "X-Gitlab-Token": secret,
            "X-Gitlab-Event-UUID": delivery,
        },
        "gitea": {
            "X-Gitea-Event": "push",
            "X-Gitea-Delivery": delivery,
            "X-Gitea-Signature": hexmac(secret, body),
            "X-GitHub-Event": "push",
            "X-Hub-Signature-256": "sha256=" + hexmac(secret, body),
        },
        "forgejo": {
            "X-Forgejo-Event": "push",
            "X-Forgejo-Delivery": delivery,
            "X-Forgejo-Signature": hexmac(secret, body),
            "X-Gitea-Signature": hexmac(secret, body),
        },
    }[provider]
    return {"Content-Type": "application/json", **headers, **extra}


def hook(
    path: str, headers: dict[str, str], body: bytes = PUSH_BODY, *, encode: bool = False
) -> tuple[int, dict[str, Any]]:
    """POST /_admin/hooks/<path> through the hook handler, as API Gateway would call it."""
    from repohost.http.hooks import handle_event

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /_admin/hooks/{repo+}",
        "rawPath": f"/_admin/hooks/{path}",
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "pathParameters": {"repo": path},
        "requestContext": {
            "http": {"method": "POST", "path": f"/_admin/hooks/{path}", "sourceIp": "127.0.0.1"},
            "requestId": uuid.uuid4().hex,
        },
        "body": base64.b64encode(body).decode() if encode else body.decode(),
        "isBase64Encoded": encode,
    }
    answer = handle_event(event, None)
    assert answer["headers"]["Content-Type"] == "application/json"
    return answer["statusCode"], json.loads(answer["body"])


def pull_jobs(repo: str | None = None) -> list[Any]:
    from repohost.db.engine import transaction
    from repohost.db.models import Job, Repository

    with transaction() as session:
        query = session.query(Job).filter(Job.kind == "pull")
        if repo is not None:
            query = query.join(Repository, Repository.repo_id == Job.repository_id).filter(
                Repository.repo_name == repo
            )
        return query.order_by(Job.created_on).all()


def pending(repo: str) -> bool:
    from repohost.db.engine import transaction
    from repohost.db.models import Repository

    with transaction() as session:
        return session.query(Repository).filter_by(repo_name=repo).one().pull_pending


def worker_starts_pulls() -> None:
    """What the worker does when it starts a queued pull: it clears ``pull_pending``."""
    from repohost.db.engine import transaction
    from repohost.db.models import Job, Repository

    with transaction() as session:
        session.query(Job).filter(Job.state == "queued").update({"state": "running"})
        session.query(Repository).update({"pull_pending": False})


@pytest.fixture(autouse=True)
def held(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple]]:
    """Jobs sent after commit, kept here instead of run (except for tests with ``upstream``)."""
    sent: list[tuple] = []
    if "upstream" not in request.fixturenames:
        monkeypatch.setattr(queue, "send", lambda *message: sent.append(message))
    yield sent
    assert queue.drain(120), "the in-process job queue did not become idle"


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GitUpstream]:
    """A git upstream on 127.0.0.1, which repohost is allowed to fetch from."""
    monkeypatch.setenv("REPOHOST_ALLOW_PRIVATE_REMOTES", "127.0.0.1/32")
    get_settings.cache_clear()
    with GitUpstream(tmp_path / "upstream") as server:
        yield server
    assert queue.drain(120)
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def secret(lambda_api: Api) -> str:
    """Repository ``mirror`` with a webhook secret set through the API."""
    lambda_api.call("create_repo", repo_name="mirror")
    return lambda_api.call("set_webhook_secret", repoid="mirror")["webhook_secret"]


# --- signatures -------------------------------------------------------------------------------


def test_githubs_published_test_vector(lambda_api: Api, held: list[tuple]) -> None:
    from repohost.webhooks import PROVIDERS, signature_valid

    github = next(p for p in PROVIDERS if p.name == "github")
    assert signature_valid(github, VECTOR_SIGNATURE, VECTOR_SECRET, VECTOR_BODY)
    assert not signature_valid(github, VECTOR_SIGNATURE, VECTOR_SECRET + "!", VECTOR_BODY)
    assert not signature_valid(github, VECTOR_SIGNATURE, VECTOR_SECRET, VECTOR_BODY + b"\n")

    lambda_api.call("create_repo", repo_name="vector")
    lambda_api.call("set_webhook_secret", repoid="vector", secret=VECTOR_SECRET)
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": VECTOR_SIGNATURE,
    }
    assert hook("vector", headers, VECTOR_BODY) == (202, {"status": "queued"})
    [job] = pull_jobs("vector")
    assert pending("vector")
    repo_id = lambda_api.call("get_repo", repoid="vector")["repo_id"]
    # Sent once committed, with the delivery as SQS deduplication id.
    assert held == [(job.job_id, repo_id, f"github:{repo_id}:{headers['X-GitHub-Delivery']}")]
    assert job.payload["ip"] == "127.0.0.1"
    tampered = {**headers, "X-Hub-Signature-256": VECTOR_SIGNATURE[:-1] + "f"}
    assert hook("vector", tampered, VECTOR_BODY) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea", "forgejo"])
def test_each_provider_queues_one_pull(secret: str, provider: str, held: list[tuple]) -> None:
    assert hook("mirror", signed(provider, secret)) == (202, {"status": "queued"})
    jobs = pull_jobs("mirror")
    assert len(jobs) == 1
    assert jobs[0].state == "queued"
    assert [message[0] for message in held] == [jobs[0].job_id]
    assert pending("mirror")


def test_tag_pushes_and_gitlab_idempotency_key(secret: str) -> None:
    tag_push = signed("gitlab", secret, **{"X-Gitlab-Event": "Tag Push Hook"})
    tag_push["Idempotency-Key"] = "retry-stable-key"
    assert hook("mirror", tag_push)[0] == 202
    # A retry carries the same Idempotency-Key with a new event UUID.
    retry = {**tag_push, "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    assert hook("mirror", retry) == (200, {"status": "duplicate"})


def test_signed_body_is_read_raw_even_base64_encoded(secret: str) -> None:
    body = "naïve ünïcode\r\n".encode() + bytes(range(256))
    headers = signed("github", secret, body)
    assert hook("mirror", headers, body, encode=True) == (202, {"status": "queued"})
    assert hook("mirror", signed("github", secret, b"x"), b"y", encode=True)[0] == 401


def test_refusals_look_the_same_and_start_nothing(
    lambda_api: Api, secret: str, held: list[tuple]
) -> None:
    lambda_api.call("create_repo", repo_name="nosecret")
    lambda_api.call("create_repo", repo_name="other")
    other_secret = lambda_api.call("set_webhook_secret", repoid="other")["webhook_secret"]
    good = signed("github", secret)
    unsigned = {k: v for k, v in good.items() if k != "X-Hub-Signature-256"}
    refused = [
        ("mirror", unsigned),
        ("mirror", {**good, "X-Hub-Signature-256": "sha256=" + "0" * 64}),
        ("mirror", {**good, "X-Hub-Signature-256": good["X-Hub-Signature-256"].split("=")[1]}),
        ("mirror", {**good, "X-Hub-Signature-256": "sha1=" + hexmac(secret, PUSH_BODY)}),
        ("mirror", {**good, "X-Hub-Signature-256": "sha256=ünï"}),
        ("mirror", {**unsigned, "X-Hub-Signature": "sha1=whatever"}),
        ("mirror", signed("github", other_secret)),
        ("mirror", signed("gitlab", secret[:-1])),
        ("mirror", signed("gitlab", secret + "x")),
        ("mirror", signed("gitea", "x" * 20)),
        ("nosecret", signed("github", secret)),
        ("nosecret", signed("gitlab", "")),
        ("missing", signed("github", secret)),
        ("_999999", signed("github", secret)),
        ("_abc", signed("github", secret)),
        ("mirror/../mirror", signed("github", secret)),
        ("%ff", signed("github", secret)),
        ("mir%00ror", signed("github", secret)),
        ("", signed("github", secret)),
        ("x" * 400, signed("github", secret)),
    ]
    for path, headers in refused:
        assert hook(path, headers) == (401, UNAUTHORIZED), (path, headers)
    assert pull_jobs() == []
    assert held == []
    assert not pending("mirror")
    from repohost.db.engine import transaction
    from repohost.db.models import WebhookDelivery

    with transaction() as session:
        assert session.query(WebhookDelivery).count() == 0


def test_ping_and_other_events_start_nothing(secret: str) -> None:
    ping = signed("github", secret, **{"X-GitHub-Event": "ping"})
    assert hook("mirror", ping) == (200, {"status": "ok"})
    issues = signed("github", secret, **{"X-GitHub-Event": "issues"})
    assert hook("mirror", issues) == (200, {"status": "ignored"})
    merge = signed("gitlab", secret, **{"X-Gitlab-Event": "Merge Request Hook"})
    assert hook("mirror", merge) == (200, {"status": "ignored"})
    assert pull_jobs() == []
    # An event is only looked at once the signature is good.
    forged_ping = signed("github", "wrong secret value!", **{"X-GitHub-Event": "ping"})
    assert hook("mirror", forged_ping) == (401, UNAUTHORIZED)


# --- replays and bursts -----------------------------------------------------------------------


def test_replayed_delivery_starts_no_second_pull(secret: str) -> None:
    headers = signed("github", secret, delivery="d-1")
    assert hook("mirror", headers) == (202, {"status": "queued"})
    worker_starts_pulls()  # even once the first pull has started, a replay is ignored
    assert hook("mirror", headers) == (200, {"status": "duplicate"})
    assert len(pull_jobs()) == 1
    assert not pending("mirror")
    assert hook("mirror", signed("github", secret, delivery="d-2"))[0] == 202
    assert len(pull_jobs()) == 2


def test_odd_delivery_ids_are_kept_short_and_printable(secret: str) -> None:
    for odd in ("x" * 1000, "tab\tand\u2028line", "\udcff"):
        headers = signed("github", secret, delivery=odd)
        assert hook("mirror", headers)[0] == 202
        worker_starts_pulls()
        assert hook("mirror", headers) == (200, {"status": "duplicate"})


def test_delivery_ids_are_per_repository(lambda_api: Api, secret: str) -> None:
    lambda_api.call("create_repo", repo_name="second")
    other = lambda_api.call("set_webhook_secret", repoid="second")["webhook_secret"]
    assert hook("mirror", signed("github", secret, delivery="same"))[0] == 202
    assert hook("second", signed("github", other, delivery="same"))[0] == 202
    assert len(pull_jobs()) == 2


def test_without_delivery_id_the_body_identifies_the_delivery(secret: str) -> None:
    headers = signed("github", secret)
    del headers["X-GitHub-Delivery"]
    assert hook("mirror", headers)[0] == 202
    worker_starts_pulls()
    assert hook("mirror", headers) == (200, {"status": "duplicate"})
    other_body = PUSH_BODY + b" "
    assert hook("mirror", {**headers, **signed("github", secret, other_body)}, other_body)[0] == 202


def test_ten_pushes_in_a_burst_make_at_most_two_pulls(secret: str) -> None:
    answers = [hook("mirror", signed("github", secret)) for _ in range(4)]
    worker_starts_pulls()  # the first pull starts while pushes keep coming
    answers += [hook("mirror", signed("github", secret)) for _ in range(6)]
    assert [status for status, _ in answers] == [202] * 10
    assert [body["status"] for _, body in answers] == (
        ["queued"] + ["coalesced"] * 3 + ["queued"] + ["coalesced"] * 5
    )
    assert len(pull_jobs()) == 2


def test_concurrent_pushes_queue_one_pull(secret: str) -> None:
    barrier = threading.Barrier(10)
    answers: list[tuple[int, dict[str, Any]]] = []

    def push() -> None:
        headers = signed("gitea", secret)
        barrier.wait()
        answers.append(hook("mirror", headers))

    threads = [threading.Thread(target=push) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(body["status"] for _, body in answers) == ["coalesced"] * 9 + ["queued"]
    assert len(pull_jobs()) == 1


def test_concurrent_replays_of_one_delivery_queue_one_pull(secret: str) -> None:
    barrier = threading.Barrier(6)
    answers: list[tuple[int, dict[str, Any]]] = []
    headers = signed("github", secret, delivery="burst")

    def push() -> None:
        barrier.wait()
        answers.append(hook("mirror", headers))

    threads = [threading.Thread(target=push) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(body["status"] for _, body in answers) == ["duplicate"] * 5 + ["queued"]
    assert len(pull_jobs()) == 1


def test_a_stale_pending_flag_does_not_block_the_mirror(secret: str) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import Repository

    with transaction() as session:
        session.query(Repository).update({"pull_pending": True})  # no pull is waiting
    assert hook("mirror", signed("github", secret)) == (202, {"status": "queued"})
    assert hook("mirror", signed("github", secret)) == (202, {"status": "coalesced"})
    assert len(pull_jobs()) == 1


# --- paths ------------------------------------------------------------------------------------


def test_repositories_in_groups_and_by_id(lambda_api: Api) -> None:
    lambda_api.call("create_repo_group", group_name="grp")
    lambda_api.call("create_repo_group", group_name="sub", parent="grp")
    lambda_api.call("create_repo", repo_name="grp/sub/deep")
    answer = lambda_api.call("set_webhook_secret", repoid="grp/sub/deep")
    repo_id = lambda_api.call("get_repo", repoid="grp/sub/deep")["repo_id"]
    assert answer["webhook_url"].endswith(f"/_admin/hooks/_{repo_id}")
    assert answer["webhook_url_by_name"].endswith("/_admin/hooks/grp/sub/deep")
    key = answer["webhook_secret"]
    assert hook("grp/sub/deep", signed("github", key))[1] == {"status": "queued"}
    assert hook(f"_{repo_id}", signed("gitlab", key))[1] == {"status": "coalesced"}
    assert hook("grp%2Fsub/deep", signed("gitea", key))[1] == {"status": "coalesced"}
    assert hook("grp/sub", signed("github", key))[0] == 401
    assert len(pull_jobs("grp/sub/deep")) == 1


# --- the secret methods -----------------------------------------------------------------------


def test_set_webhook_secret_shows_it_once(api: Api) -> None:
    api.call("create_repo", repo_name="r")
    answer = api.call("set_webhook_secret", repoid="r")
    secret = answer.pop("webhook_secret")
    assert len(secret) >= 32
    repo_id = api.call("get_repo", repoid="r")["repo_id"]
    assert answer.pop("webhook_url").endswith(f"/_admin/hooks/_{repo_id}")
    assert answer == {
        "msg": "Webhook secret set for repository `r`",
        "repository": "r",
        "webhook_url_by_name": answer["webhook_url_by_name"],
    }
    assert answer["webhook_url_by_name"].endswith("/_admin/hooks/r")
    shown = json.dumps([api.call("get_repo", repoid="r"), api.call("get_repos")])
    assert secret not in shown
    assert "webhook" not in shown
    assert api.call("set_webhook_secret", repoid="r")["webhook_secret"] != secret


def test_rotation_and_removal(lambda_api: Api, secret: str) -> None:
    assert hook("mirror", signed("gitlab", secret))[0] == 202
    rotated = lambda_api.call("set_webhook_secret", repoid="mirror")["webhook_secret"]
    assert hook("mirror", signed("gitlab", secret)) == (401, UNAUTHORIZED)
    assert hook("mirror", signed("gitlab", rotated))[0] == 202
    assert lambda_api.call("delete_webhook_secret", repoid="mirror") == {
        "msg": "Webhook secret removed from repository `mirror`",
        "repository": "mirror",
    }
    assert hook("mirror", signed("gitlab", rotated)) == (401, UNAUTHORIZED)


def test_secret_rules_and_access(api: Api) -> None:
    from repohost.methods.webhooks import BAD_SECRET

    bob_id, bob_key = api.new_user("bob")
    bob = api.as_user(bob_key)
    api.call("create_repo", repo_name="r")
    for bad in ("short", " leading space secret", "trailing space secret ", "tab\tinside-secret!"):
        envelope = api.envelope("set_webhook_secret", {"repoid": "r", "secret": bad})
        assert envelope["error"] == BAD_SECRET
    assert api.error("set_webhook_secret", repoid="r", secret="é" * 20) == BAD_SECRET
    assert api.error("set_webhook_secret", repoid="nope") == "repository `nope` does not exist"
    api.call("grant_user_permission", repoid="r", userid=bob_id, perm="repository.write")
    assert bob.error("set_webhook_secret", repoid="r") == "repository `r` does not exist"
    assert bob.error("delete_webhook_secret", repoid="r") == "repository `r` does not exist"
    api.call("grant_user_permission", repoid="r", userid=bob_id, perm="repository.admin")
    chosen = "a chosen secret of bob's"
    assert bob.call("set_webhook_secret", repoid="r", secret=chosen)["webhook_secret"] == chosen


def test_secrets_never_reach_the_logs(lambda_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("repohost")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        lambda_api.call("create_repo", repo_name="r")
        chosen = "chosen secret 0123456789"
        lambda_api.call("set_webhook_secret", repoid="r", secret=chosen)
        made = lambda_api.call("set_webhook_secret", repoid="r")["webhook_secret"]
        lambda_api.error("set_webhook_secret", repoid="r", secret="bad\nsecret value 123")
        for provider in ("github", "gitlab", "gitea"):
            hook("r", signed(provider, made))
            hook("r", signed(provider, chosen))
            hook("missing", signed(provider, made))
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(previous)
    lines = [r.getMessage() for r in caplog.records] + [str(r.__dict__) for r in caplog.records]
    assert any("webhook 202" in line for line in lines)  # the hook did log
    for value in (chosen, made, "bad\nsecret value 123"):
        assert not any(value in line for line in lines)


# --- over HTTP, through the local runner --------------------------------------------------------


@pytest.fixture
def hook_server(db: str) -> Iterator[str]:
    from repohost.local.server import LocalServer

    with LocalServer(FIXTURE_TEMPLATE, port=0) as server:
        yield server.url


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_webhook_over_http(hook_server: str, lambda_api: Api) -> None:
    lambda_api.call("create_repo", repo_name="mirror")
    secret = lambda_api.call("set_webhook_secret", repoid="mirror")["webhook_secret"]
    url = f"{hook_server}/_admin/hooks/mirror"
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        body = b"payload=" + PUSH_BODY if "form" in content_type else PUSH_BODY
        headers = signed("github", secret, body, **{"Content-Type": content_type})
        assert post(url, body, headers) == (202, {"status": "queued"})
        worker_starts_pulls()
    assert post(url, PUSH_BODY, {"X-GitHub-Event": "push"}) == (401, UNAUTHORIZED)
    assert post(f"{hook_server}/_admin/hooks/nope", PUSH_BODY, signed("github", secret)) == (
        401,
        UNAUTHORIZED,
    )
    assert len(pull_jobs()) == 2


# --- end to end: the in-process worker pulls from a real upstream -------------------------------


@pytest.mark.parametrize("provider", ["github", "gitlab", "gitea"])
def test_mirror_stays_current_from_webhooks(
    lambda_api: Api, upstream: GitUpstream, provider: str, tmp_path: Path
) -> None:
    path = upstream.create("proj.git")
    push_commits(path, [{"a.txt": "first"}])
    lambda_api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
    assert queue.drain(60)
    secret = lambda_api.call("set_webhook_secret", repoid="mirror")["webhook_secret"]
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(path), str(work))
    for number in range(2):
        (work / "a.txt").write_text(f"change {number}\n")
        git(work, "commit", "-q", "-am", f"change {number}", when=1_700_000_000 + number)
        git(work, "push", "-q", "origin", "master")
        tip = git(work, "rev-parse", "HEAD").strip()
        assert hook("mirror", signed(provider, secret))[0] == 202
        assert queue.drain(60)
        changeset = lambda_api.call("get_repo", repoid="mirror")["last_changeset"]
        assert changeset["raw_id"] == tip
    assert not pending("mirror")
    assert [job.state for job in pull_jobs("mirror")] == ["done", "done"]
