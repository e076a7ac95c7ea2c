"""Where job ids go: an SQS FIFO queue on AWS, an in-process queue for ``make run`` and tests.

SQS: the message body is the job id (nothing secret travels), the message
group is the repository id, so one repository's jobs run in order and never
at once, and the deduplication id is the caller's (a webhook delivery) or
else the job id, hashed to fit SQS's alphabet.

In-process: one worker thread per process takes ids from a ``queue.Queue`` in
order, which keeps every repository's jobs in order and one at a time. A job
that raises is retried in place (the next jobs wait), as SQS would redeliver
it; ``drain(timeout)`` waits until everything sent has run.

The backend is chosen by ``job_queue_url`` (empty: in-process).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from repohost.config import get_settings

log = logging.getLogger("repohost.jobs")

#: How often the in-process worker runs a job that keeps raising, and the pause before each retry.
ATTEMPTS = 3
RETRY_PAUSE = 0.5


class Backend(Protocol):
    def send(self, job_id: str, repo_id: int, dedup_id: str | None) -> None: ...


class SqsBackend:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, job_id: str, repo_id: int, dedup_id: str | None) -> None:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=job_id,
            MessageGroupId=str(repo_id),
            MessageDeduplicationId=hashlib.sha256((dedup_id or job_id).encode()).hexdigest(),
        )


class InProcessBackend:
    def __init__(self, run: Callable[[str], None]) -> None:
        self._run = run
        self._queue: queue.Queue[str] = queue.Queue()
        self._started = False
        self._lock = threading.Lock()

    def send(self, job_id: str, repo_id: int, dedup_id: str | None) -> None:
        with self._lock:
            if not self._started:
                threading.Thread(target=self._work, name="repohost-jobs", daemon=True).start()
                self._started = True
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            try:
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        self._run(job_id)
                        break
                    except Exception:
                        log.exception("job %s: attempt %d of %d failed", job_id, attempt, ATTEMPTS)
                        if attempt < ATTEMPTS:
                            time.sleep(RETRY_PAUSE * attempt)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float) -> bool:
        """Wait until every job sent so far has run; False if ``timeout`` came first."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._queue.all_tasks_done.wait(remaining):
                    return self._queue.unfinished_tasks == 0
        return True


_backends: dict[str, Backend] = {}
_backends_lock = threading.Lock()


def backend() -> Backend:
    """The backend for the current settings (one per queue URL, per process)."""
    url = get_settings().job_queue_url
    with _backends_lock:
        if url not in _backends:
            if url:
                _backends[url] = SqsBackend(url)
            else:
                from repohost.jobs.worker import run_job

                _backends[url] = InProcessBackend(run_job)
        return _backends[url]


def send(job_id: str, repo_id: int, dedup_id: str | None = None) -> None:
    backend().send(job_id, repo_id, dedup_id)


def drain(timeout: float = 30.0) -> bool:
    """Wait for the in-process queue to be idle (tests, benchmarks); True when it is."""
    current = backend()
    if not isinstance(current, InProcessBackend):
        raise RuntimeError("drain() is for the in-process queue; SQS has no such wait")
    return current.drain(timeout)
