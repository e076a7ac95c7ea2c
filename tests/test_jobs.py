"""The job queue: sent after commit, deduplicated, in order; SQS and the worker Lambda (moto)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repohost import jobs
from repohost.db.engine import transaction
from repohost.db.models import Job
from repohost.jobs import queue
from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

if TYPE_CHECKING:  # imported by pytest as a plugin, so its asserts are rewritten
    from tests.support.upstream import GitUpstream

pytest_plugins = ("tests.support.upstream",)
pytestmark = pytest.mark.usefixtures("idle_queue")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str | None]]:
    calls: list[tuple[str, int, str | None]] = []
    monkeypatch.setattr(queue, "send", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def repo_id(api: Api) -> int:
    api.call("create_repo", repo_name="r")
    return api.call("get_repo", repoid="r")["repo_id"]


def test_a_job_is_sent_only_once_its_transaction_commits(
    repo_id: int, sent: list[tuple[str, int, str | None]]
) -> None:
    with transaction() as session:
        job = jobs.enqueue(session, "pull", repo_id, {"trigger": "test"})
        assert job is not None and job.state == "queued"
        assert sent == []
    assert sent == [(job.job_id, repo_id, None)]

    with pytest.raises(RuntimeError), transaction() as session:
        lost = jobs.enqueue(session, "pull", repo_id)
        raise RuntimeError
    assert lost is not None and len(sent) == 1
    with transaction() as session:
        assert session.get(Job, lost.job_id) is None

    with transaction() as session:
        with session.begin_nested():
            inner = jobs.enqueue(session, "mirror", repo_id)
        assert len(sent) == 1  # a savepoint is not the commit
    assert inner is not None and sent[-1] == (inner.job_id, repo_id, None)


def test_a_repeated_deduplication_id_queues_nothing(
    api: Api, repo_id: int, sent: list[tuple[str, int, str | None]]
) -> None:
    with transaction() as session:
        first = jobs.enqueue(session, "pull", repo_id, dedup_id="delivery-1")
    with transaction() as session:
        assert jobs.enqueue(session, "pull", repo_id, dedup_id="delivery-1") is None
        other = jobs.enqueue(session, "pull", repo_id, dedup_id="delivery-2")
    assert first is not None and other is not None
    assert sent == [(first.job_id, repo_id, "delivery-1"), (other.job_id, repo_id, "delivery-2")]
    with pytest.raises(ValueError, match="unknown job kind"), transaction() as session:
        jobs.enqueue(session, "bogus", repo_id)


def test_the_in_process_queue_keeps_order_retries_in_place_and_drains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queue, "RETRY_PAUSE", 0.0)
    ran: list[str] = []
    release = threading.Event()

    def run(job_id: str) -> None:
        ran.append(job_id)
        if job_id == "wait":
            release.wait(30)
        if job_id == "flaky" and ran.count("flaky") == 1:
            raise RuntimeError("first attempt fails")
        if job_id == "broken":
            raise RuntimeError("always fails")

    backend = queue.InProcessBackend(run)
    for job_id in ("wait", "flaky", "broken", "last"):
        backend.send(job_id, 1, None)
    assert backend.drain(0.05) is False
    release.set()
    assert backend.drain(30) is True
    assert ran == ["wait", "flaky", "flaky", "broken", "broken", "broken", "last"]


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch, settings_env: Callable[..., None]) -> Iterator[Any]:
    """A moto SQS FIFO queue, configured as the job queue."""
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("sqs")
        url = client.create_queue(
            QueueName=f"jobs-{id(client)}.fifo",
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"},
        )["QueueUrl"]
        settings_env(REPOHOST_JOB_QUEUE_URL=url, REPOHOST_ALLOW_PRIVATE_REMOTES="127.0.0.1/32")
        client.queue_url = url
        yield client


def worker_function() -> Any:
    """``functions/worker/app.py`` as Lambda loads it (a file, not a package module)."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "functions" / "worker" / "app.py"
    spec = importlib.util.spec_from_file_location("fn_worker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(client: Any, messages: list[dict]) -> dict[str, Any]:
    arn = client.get_queue_attributes(QueueUrl=client.queue_url, AttributeNames=["QueueArn"])
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn["Attributes"]["QueueArn"],
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def _receive_all(client: Any, expected: int) -> list[dict]:
    messages: list[dict] = []
    for _ in range(10):
        messages += client.receive_message(
            QueueUrl=client.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if len(messages) >= expected:
            break
    return messages


def test_the_worker_lambda_runs_sqs_records_and_reports_the_failed_one(
    api: Api, upstream: GitUpstream, sqs: Any
) -> None:
    source = upstream.create("proj.git")
    ids = push_commits(source, [{"a": "1"}])
    mirror = api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
    api.call("create_repo", repo_name="other")
    other_id = api.call("get_repo", repoid="other")["repo_id"]
    with transaction() as session:
        session.add(Job(job_id="bad-job", kind="bogus", repository_id=other_id, payload={}))
    queue.send("bad-job", other_id)
    with transaction() as session:
        after_bad = jobs.enqueue(session, "pull", other_id)
    assert after_bad is not None

    messages = _receive_all(sqs, 3)
    bodies = [m["Body"] for m in messages]
    assert sorted(bodies) == sorted([mirror["task"], "bad-job", after_bad.job_id])
    mirror_id = api.call("get_repo", repoid="mirror")["repo_id"]
    for m in messages:
        group = str(mirror_id) if m["Body"] == mirror["task"] else str(other_id)
        assert m["Attributes"]["MessageGroupId"] == group
        assert m["Attributes"]["MessageDeduplicationId"] == (
            hashlib.sha256(m["Body"].encode()).hexdigest()
        )

    answer = worker_function().handler(_event(sqs, messages), None)
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    by_body = {m["Body"]: m["MessageId"] for m in messages}
    # The bad job fails; the job queued behind it in the same repository is held back.
    assert failed == {by_body["bad-job"], by_body[after_bad.job_id]}
    with transaction() as session:
        assert session.get(Job, mirror["task"]).state == "done"
        assert session.get(Job, after_bad.job_id).state == "queued"
    assert git(repos_root() / "mirror", "rev-parse", "master").strip() == ids[0]
