"""``pull``, mirrors made by ``create_repo``, forks as jobs, against a real upstream on loopback.

The upstream is ``git http-backend`` on 127.0.0.1 (``tests.support.upstream``),
pushed to with ``git``. repohost refuses loopback remotes, so the tests that
fetch from it allow exactly 127.0.0.1 (``REPOHOST_ALLOW_PRIVATE_REMOTES``); the
refusal tests run without that allowance.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from repohost.db.engine import transaction
from repohost.db.models import Job, JournalEntry, Repository
from repohost.jobs import queue
from repohost.jobs.worker import run_job
from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

if TYPE_CHECKING:  # imported by pytest as a plugin, so its asserts are rewritten
    from tests.support.upstream import GitUpstream

LATER = 1_700_000_000
JOB_ID = re.compile(r"[0-9a-f]{32}")


# --- fixtures and helpers ---------------------------------------------------------------------


pytest_plugins = ("tests.support.upstream",)
pytestmark = pytest.mark.usefixtures("idle_queue")


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Job ids sent after commit, kept here instead of running (the test runs them)."""
    sent: list[str] = []
    monkeypatch.setattr(queue, "send", lambda job_id, _repo_id, _dedup=None: sent.append(job_id))
    return sent


def bare(name: str) -> Path:
    return repos_root() / name


def refs(path: Path) -> str:
    return git(path, "for-each-ref", "--format=%(refname) %(objectname)")


def fsck(path: Path) -> None:
    git(path, "fsck", "--full", "--strict")


def project(upstream: GitUpstream, name: str = "proj.git") -> tuple[Path, list[str]]:
    """An upstream with two commits on master, a tag ``v1`` and a branch ``dev``."""
    path = upstream.create(name)
    ids = push_commits(path, [{"a.txt": "one"}, {"b.txt": "two"}])
    git(path, "tag", "v1", ids[0])
    push_commits(path, [{"dev.txt": "dev"}], branch="dev", start=LATER - 1000)
    return path, ids


def mirror(api: Api, upstream: GitUpstream, name: str = "mirror") -> dict:
    result = api.call("create_repo", repo_name=name, clone_uri=upstream.url("proj.git"))
    assert queue.drain(60)
    return result


def row(name: str) -> Repository:
    with transaction() as session:
        repo = session.scalars(select(Repository).where(Repository.repo_name == name)).one()
        session.expunge(repo)
        return repo


def job(job_id: str) -> Job:
    with transaction() as session:
        found = session.get(Job, job_id)
        assert found is not None
        session.expunge(found)
        return found


def journal(name: str) -> list[str]:
    with transaction() as session:
        return list(
            session.scalars(
                select(JournalEntry.action)
                .where(JournalEntry.repository_name == name)
                .order_by(JournalEntry.user_log_id)
            )
        )


# --- mirrors and pulls --------------------------------------------------------------------------


def test_create_repo_with_clone_uri_mirrors_through_the_worker(
    api: Api, upstream: GitUpstream, loopback: None
) -> None:
    source, _ids = project(upstream)
    git(source, "symbolic-ref", "HEAD", "refs/heads/dev")
    result = mirror(api, upstream)
    assert set(result) == {"msg", "success", "task"}
    assert result["msg"] == "Created new repository `mirror`" and result["success"] is True
    assert JOB_ID.fullmatch(result["task"])
    assert refs(bare("mirror")) == refs(source)
    assert git(bare("mirror"), "symbolic-ref", "HEAD").strip() == "refs/heads/dev"
    fsck(bare("mirror"))
    repo = api.call("get_repo", repoid="mirror")
    assert repo["clone_uri"] == upstream.url("proj.git")
    assert repo["last_changeset"]["raw_id"] == git(source, "rev-parse", "dev").strip()
    assert row("mirror").repo_state == "repo_state_created"
    done = job(result["task"])
    assert (done.kind, done.state, done.error) == ("mirror", "done", "")
    assert journal("mirror") == ["user_created_repo"]


def test_pull_brings_new_commits_branches_and_tags(
    api: Api, upstream: GitUpstream, loopback: None
) -> None:
    source, ids = project(upstream)
    mirror(api, upstream)
    new = push_commits(source, [{"c.txt": "three"}], start=LATER)
    push_commits(source, [{"f.txt": "feature"}], branch="feature", start=LATER - 500)
    git(source, "tag", "-a", "-m", "release", "v2", new[0])
    git(source, "tag", "-f", "v1", ids[1])  # a tag moved upstream moves here too
    git(source, "branch", "-D", "dev")  # a branch deleted upstream stays (as Kallithea)
    assert api.call("pull", repoid="mirror") == {
        "msg": "Pulled from `mirror`",
        "repository": "mirror",
    }
    mirrored = refs(bare("mirror")).splitlines()
    assert mirrored[0].startswith("refs/heads/dev ")
    assert mirrored[1:] == refs(source).splitlines()
    fsck(bare("mirror"))
    assert api.call("get_repo", repoid="mirror")["last_changeset"]["raw_id"] == new[0]
    entries = journal("mirror")
    assert entries[0] == "user_created_repo"
    assert entries[-1].startswith("push_remote:") and new[0] in entries[-1]
    assert api.call("pull", repoid="mirror")["msg"] == "Pulled from `mirror`"
    assert journal("mirror")[-1] == "push_remote:"  # nothing new: no revisions


def test_pull_clone_uri_argument_is_used_once(
    api: Api, upstream: GitUpstream, loopback: None
) -> None:
    source, _ids = project(upstream)
    api.call("create_repo", repo_name="plain")
    result = api.call("pull", repoid="plain", clone_uri=upstream.url("proj.git"))
    assert result == {"msg": "Pulled from `plain`", "repository": "plain"}
    assert refs(bare("plain")) == refs(source)
    assert api.call("get_repo", repoid="plain")["clone_uri"] is None


def test_pull_of_a_fork_takes_its_parents_new_commits(api: Api) -> None:
    api.call("create_repo", repo_name="origin")
    push_commits(bare("origin"), [{"a": "1"}])
    api.call("fork_repo", repoid="origin", fork_name="child")
    later = push_commits(bare("origin"), [{"b": "2"}], start=LATER)
    assert api.call("pull", repoid="child") == {"msg": "Pulled from `child`", "repository": "child"}
    assert git(bare("child"), "rev-parse", "master").strip() == later[0]
    assert api.call("get_repo", repoid="child")["last_changeset"]["raw_id"] == later[0]


def test_pull_needs_a_source_and_a_repository(api: Api) -> None:
    api.call("create_repo", repo_name="lonely")
    assert api.error("pull", repoid="lonely") == "Unable to pull changes from `lonely`"
    assert api.error("pull", repoid="nowhere") == "repository `nowhere` does not exist"
    _uid, key = api.new_user("nina")
    assert api.as_user(key).error("pull", repoid="lonely") == "Access was denied to this resource."


def test_failed_pulls_change_nothing(api: Api, upstream: GitUpstream, loopback: None) -> None:
    source, _ids = project(upstream)
    mirror(api, upstream)
    before, cache = refs(bare("mirror")), api.call("get_repo", repoid="mirror")["last_changeset"]
    push_commits(source, [{"c.txt": "three"}], start=LATER)
    failed = "Unable to pull changes from `mirror`"
    assert api.error("pull", repoid="mirror", clone_uri=upstream.url("missing.git")) == failed
    api.call("update_repo", repoid="mirror", clone_uri=upstream.url("missing.git"))
    assert api.error("pull", repoid="mirror") == failed
    api.call("update_repo", repoid="mirror", clone_uri=upstream.url("proj.git"))
    upstream.stop()
    assert api.error("pull", repoid="mirror") == failed
    assert api.error("pull", repoid="mirror", clone_uri="ftp://example.com/x.git") == (
        "clone_uri refused: only https, http, ssh and git URLs are allowed"
    )
    assert refs(bare("mirror")) == before
    fsck(bare("mirror"))
    assert api.call("get_repo", repoid="mirror")["last_changeset"] == cache
    assert not any(entry.startswith("push_remote") for entry in journal("mirror"))
    upstream.start()
    api.call("pull", repoid="mirror")
    assert refs(bare("mirror")) == refs(source)


FORBIDDEN = [
    ("file:///etc", "local paths are not allowed"),
    ("/etc", "local paths are not allowed"),
    ("http://127.0.0.1:9/x.git", "the host resolves to a loopback address"),
    ("http://localhost/x.git", "the host resolves to a loopback address"),
    ("http://[::1]/x.git", "the host resolves to a loopback address"),
    ("http://0.0.0.0/x.git", "the host resolves to an unspecified address"),
    ("http://169.254.169.254/latest/meta-data/", "the host resolves to a link-local address"),
    ("http://evil.example/x.git", "the host resolves to a loopback address"),
]


def test_ssrf_attempts_are_refused_everywhere(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def lookup(host: str, *args: object, **kw: object) -> list:
        return real("127.0.0.1" if host == "evil.example" else host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    api.call("create_repo", repo_name="target")
    for uri, rule in FORBIDDEN:
        expected = f"clone_uri refused: {rule}"
        assert api.error("create_repo", repo_name="fresh", clone_uri=uri) == expected, uri
        assert api.error("update_repo", repoid="target", clone_uri=uri) == expected, uri
        assert api.error("pull", repoid="target", clone_uri=uri) == expected, uri
    assert api.error("get_repo", repoid="fresh") == "repository `fresh` does not exist"
    assert api.call("get_repo", repoid="target")["clone_uri"] is None
    assert not bare("fresh").exists()


def test_redirects_are_followed_and_every_hop_is_checked(
    api: Api, upstream: GitUpstream, loopback: None
) -> None:
    source, _ids = project(upstream)
    upstream.redirects["/moved.git"] = upstream.url("proj.git")
    upstream.redirects["/escape.git"] = f"http://127.0.0.2:{upstream.port}/proj.git"
    upstream.redirects["/metadata.git"] = "http://169.254.169.254/latest/meta-data"
    api.call("create_repo", repo_name="m")
    for path, rule in (("escape.git", "a loopback"), ("metadata.git", "a link-local")):
        assert api.error("pull", repoid="m", clone_uri=upstream.url(path)) == (
            f"clone_uri refused: the host resolves to {rule} address"
        )
    assert refs(bare("m")) == ""
    assert api.call("pull", repoid="m", clone_uri=upstream.url("moved.git"))["msg"]
    assert refs(bare("m")) == refs(source)
    assert "GET /moved.git/info/refs?service=git-upload-pack" in upstream.requests


def test_credentials_never_reach_logs_or_errors(
    api: Api, upstream: GitUpstream, loopback: None, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cret-Passw0rd-for-the-upstream"
    url = f"http://alice:{secret}@127.0.0.1:{upstream.port}/missing.git"
    logger = logging.getLogger("repohost")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="repohost")
    try:
        api.call("create_repo", repo_name="m")
        assert api.error("pull", repoid="m", clone_uri=url) == "Unable to pull changes from `m`"
        task = api.call("create_repo", repo_name="m2", clone_uri=url)["task"]
        assert queue.drain(60)
        api.call("update_repo", repoid="m", clone_uri=url.replace("missing", "gone"))
        assert api.error("pull", repoid="m") == "Unable to pull changes from `m`"
    finally:
        logger.removeHandler(caplog.handler)
    failed = job(task)
    assert failed.state == "failed" and failed.error and secret not in failed.error
    assert row("m2").repo_state == "repo_state_error"
    assert "failed" in caplog.text and "127.0.0.1" in caplog.text
    assert secret not in caplog.text
    _uid, key = api.new_user("reader")
    api.call("grant_user_permission", repoid="m", userid="reader", perm="repository.read")
    assert secret not in api.as_user(key).call("get_repo", repoid="m")["clone_uri"]


# --- handing over to the worker -------------------------------------------------------------------


def test_a_pull_that_outgrows_the_budget_goes_to_the_worker(
    api: Api, upstream: GitUpstream, settings_env: Callable[..., None]
) -> None:
    settings_env(REPOHOST_ALLOW_PRIVATE_REMOTES="127.0.0.1/32", REPOHOST_PULL_BUDGET_SECONDS="0.3")
    source, _ids = project(upstream)
    mirror(api, upstream)
    big = push_commits(source, [{"big.bin": os.urandom(200_000)}], start=LATER)
    upstream.throttle = (4096, 0.02)
    result = api.call("pull", repoid="mirror")
    assert set(result) == {"msg", "repository", "task", "queued"}
    assert (result["msg"], result["repository"], result["queued"]) == (
        "Pulled from `mirror`",
        "mirror",
        True,
    )
    assert queue.drain(120)
    assert git(bare("mirror"), "rev-parse", "master").strip() == big[0]
    assert job(result["task"]).state == "done"
    assert journal("mirror")[-1] == f"push_remote:{big[0]}"


def test_a_busy_repository_queues_the_pull_and_queued_pulls_coalesce(
    api: Api, upstream: GitUpstream, loopback: None, held: list[str]
) -> None:
    from repohost.git.locks import repo_write_lock

    source, _ids = project(upstream)
    first = api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
    run_job(first["task"])
    new = push_commits(source, [{"c.txt": "three"}], start=LATER)
    repo_id = api.call("get_repo", repoid="mirror")["repo_id"]
    with repo_write_lock(repos_root(), repo_id):
        one = api.call("pull", repoid="mirror")
        two = api.call("pull", repoid="mirror")
    assert one["queued"] is True and two["task"] == one["task"]
    assert held == [first["task"], one["task"]]
    assert row("mirror").pull_pending is True
    run_job(one["task"])
    assert row("mirror").pull_pending is False
    assert git(bare("mirror"), "rev-parse", "master").strip() == new[0]
    run_job(one["task"])  # a second delivery of the same message
    pulls = [entry for entry in journal("mirror") if entry.startswith("push_remote")]
    assert pulls == [f"push_remote:{new[0]}"]


def test_pull_of_a_repository_still_being_mirrored_reports_that_job(
    api: Api, upstream: GitUpstream, loopback: None, held: list[str]
) -> None:
    source, _ids = project(upstream)
    created = api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
    assert refs(bare("mirror")) == ""
    assert row("mirror").repo_state == "repo_state_pending"
    assert api.call("pull", repoid="mirror") == {
        "msg": "Pulled from `mirror`",
        "repository": "mirror",
        "task": created["task"],
        "queued": True,
    }
    assert held == [created["task"]]
    run_job(created["task"])
    run_job(created["task"])  # done: skipped
    assert refs(bare("mirror")) == refs(source)
    assert row("mirror").repo_state == "repo_state_created"


def test_a_failed_first_mirror_is_marked_and_pull_tries_again(
    api: Api, upstream: GitUpstream, loopback: None
) -> None:
    created = api.call("create_repo", repo_name="mirror", clone_uri=upstream.url("proj.git"))
    assert queue.drain(60)
    assert row("mirror").repo_state == "repo_state_error"
    assert job(created["task"]).state == "failed"
    source, _ids = project(upstream)
    again = api.call("pull", repoid="mirror")
    assert again["queued"] is True and again["task"] != created["task"]
    assert queue.drain(60)
    assert row("mirror").repo_state == "repo_state_created"
    assert refs(bare("mirror")) == refs(source)


def test_a_big_fork_is_filled_by_a_job(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from repohost import repos

    api.call("create_repo", repo_name="origin")
    ids = push_commits(bare("origin"), [{"a": "1"}, {"b": "2"}])
    git(bare("origin"), "tag", "-a", "-m", "tagged", "v1", ids[0])
    monkeypatch.setattr(repos, "FORK_SYNC_FILES", 0)
    result = api.call("fork_repo", repoid="origin", fork_name="big")
    assert result["msg"] == "Created fork of `origin` as `big`"
    assert JOB_ID.fullmatch(result["task"])
    assert queue.drain(60)
    assert refs(bare("big")) == refs(bare("origin"))
    fsck(bare("big"))
    fork = api.call("get_repo", repoid="big")
    assert fork["fork_of"] == "origin" and fork["last_changeset"]["raw_id"] == ids[1]
    with transaction() as session:  # a retried delivery after a crash mid-job
        session.get(Job, result["task"]).state = "running"
    run_job(result["task"])
    assert refs(bare("big")) == refs(bare("origin"))
    assert job(result["task"]).state == "done"


# --- a fetch killed halfway ---------------------------------------------------------------------

KILLED_FETCH = """
import ipaddress, sys
from pathlib import Path
from repohost.git.fetch import fetch_into
from repohost.remotes import RemotePolicy, parse
policy = RemotePolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
fetch_into(Path(sys.argv[1]), parse(sys.argv[2], policy), policy)
"""


def test_a_fetch_killed_halfway_leaves_the_repository_as_it_was(
    upstream: GitUpstream, tmp_path: Path
) -> None:
    source, _ids = project(upstream)
    target = tmp_path / "target.git"
    git(tmp_path, "clone", "-q", "--mirror", str(source), str(target))
    before = refs(target)
    files = {f"blob{i}.bin": os.urandom(32_000) for i in range(40)}
    push_commits(source, [files, {"more.txt": "x"}], start=LATER)
    upstream.throttle = (8192, 0.02)
    fetch = subprocess.Popen(
        [sys.executable, "-c", KILLED_FETCH, str(target), upstream.url("proj.git")]
    )
    try:
        deadline = time.monotonic() + 60
        while upstream.pack_bytes < 200_000 and fetch.poll() is None:
            assert time.monotonic() < deadline, "the pack never started"
            time.sleep(0.01)
    finally:
        fetch.kill()
        fetch.wait()
    assert fetch.returncode == -9, "the fetch ended before it was killed"
    assert refs(target) == before
    fsck(target)
    git(target, "log", "--oneline", "--all")  # every ref still reads
    upstream.throttle = None
    subprocess.run(
        [sys.executable, "-c", KILLED_FETCH, str(target), upstream.url("proj.git")], check=True
    )
    assert refs(target) == refs(source)
    fsck(target)
