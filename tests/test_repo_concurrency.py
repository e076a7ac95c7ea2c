"""Parallel writers and failures between the two steps leave rows and directories in step.

Each test runs real calls of the Lambda handler in threads against the real
PostgreSQL server (the local server runs one call at a time per function, as
one warm Lambda instance, so it cannot overlap calls). Where an interleaving
matters it is forced, not hoped for: a wrapped step waits at a barrier (all
writers have passed the existence check before any of them writes) or until
another call has finished (this call read the row before the other one
committed). Barriers and waits have timeouts only so that a broken test
cannot hang; nothing here measures time.

After every scenario ``assert_consistent`` checks both sides: every
repository row has a bare repository directory, every repository group row
a plain directory, every directory under the root (the hidden areas such as
``.trash``, ``.tmp``, ``.locks``, ``.rc_gist_store`` aside) a row, and
``.tmp``, ``.trash`` and ``.intents`` are empty.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import wraps
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api, LambdaTransport
from tests.support.gitcli import git, push_commits

#: Areas of the root that hold no repositories: ``.trash``, ``.tmp``, ``.locks``,
#: ``.rc_gist_store``, ``.intents`` (any name starting with a dot, as rescan sees it).
#: Of these, ``.tmp``, ``.trash`` and ``.intents`` must be empty once a call is over.
EMPTY_AFTER_A_CALL = (".tmp", ".trash", ".intents")
WAIT = 60  # seconds; only a guard against a hang


@pytest.fixture
def api(lambda_api: Api, db: str) -> Api:
    if not db.startswith("postgresql"):
        pytest.skip("concurrency needs PostgreSQL (row locks, advisory locks)")
    return lambda_api


# --- both sides ------------------------------------------------------------------------------


def database_names() -> tuple[set[str], set[str]]:
    """Repository names and repository group names in the database."""
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import RepoGroup, Repository

    with transaction() as session:
        repos = set(session.scalars(select(Repository.repo_name)))
        groups = set(session.scalars(select(RepoGroup.group_name)))
    return repos, groups


def disk_names() -> tuple[set[str], set[str]]:
    """Bare repositories and plain directories (groups) under the root, hidden areas aside."""
    from repohost.git.storage import is_bare_repo

    repos: set[str] = set()
    groups: set[str] = set()
    root = repos_root()
    pending = [root]
    while pending:
        for entry in pending.pop().iterdir():
            name = entry.relative_to(root).as_posix()
            if entry.parent == root and entry.name.startswith("."):
                continue
            assert entry.is_dir() and not entry.is_symlink(), f"stray file {name}"
            if is_bare_repo(entry):
                repos.add(name)
            else:
                groups.add(name)
                pending.append(entry)
    return repos, groups


def leftovers(area: str) -> list[str]:
    path = repos_root() / area
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def assert_consistent() -> tuple[set[str], set[str]]:
    """Rows and directories agree; nothing half-made is left behind. Returns the names."""
    on_disk, in_db = disk_names(), database_names()
    assert on_disk[0] == in_db[0], f"repositories: disk {on_disk[0]} vs rows {in_db[0]}"
    assert on_disk[1] == in_db[1], f"groups: disk {on_disk[1]} vs rows {in_db[1]}"
    for area in EMPTY_AFTER_A_CALL:
        assert leftovers(area) == [], f"left in {area}"
    return in_db


def head(name: str) -> str:
    """The commit ``master`` points at ("" in an empty repository)."""
    ref = "refs/heads/master"
    return git(repos_root() / name, "for-each-ref", "--format=%(objectname)", ref).strip()


# --- running calls in parallel ---------------------------------------------------------------

_current = threading.local()


def caller(key: str = ADMIN_KEY) -> Api:
    """A client of its own per thread (``Api`` remembers its last reply)."""
    return Api(LambdaTransport(), key)


def in_parallel(calls: list[tuple[str, dict[str, Any]]], **roles: int) -> list[dict[str, Any]]:
    """Run the calls at the same moment in threads; their envelopes in order.

    ``roles`` names calls (``second=1``) so a wrapped step can tell which
    call it runs in (``role()``).
    """
    start = threading.Barrier(len(calls))
    names = {index: name for name, index in roles.items()}

    def run(index: int) -> dict[str, Any]:
        _current.role = names.get(index)
        method, args = calls[index]
        start.wait(WAIT)
        try:
            return caller().envelope(method, args)
        finally:
            finished[index].set()

    finished = [threading.Event() for _ in calls]
    _current.finished = finished
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(run, i) for i in range(len(calls))]
        return [f.result(timeout=WAIT * 2) for f in futures]


def role() -> str | None:
    return getattr(_current, "role", None)


@contextmanager
def all_pass_then_go(
    monkeypatch: pytest.MonkeyPatch, target: Any, name: str, parties: int
) -> Iterator[None]:
    """Every call must have returned from ``target.name`` before any goes on."""
    barrier = threading.Barrier(parties)
    original = getattr(target, name)

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        barrier.wait(WAIT)
        return result

    monkeypatch.setattr(target, name, wrapper)
    yield
    monkeypatch.setattr(target, name, original)


def after_read_wait_for(
    monkeypatch: pytest.MonkeyPatch, first_done: threading.Event, read: threading.Event
) -> None:
    """The ``second`` call reads the repository row, then waits until the first has finished."""
    from repohost import repos

    original = repos.repo_with

    @wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        repo = original(*args, **kwargs)
        if role() == "second":
            read.set()
            assert first_done.wait(WAIT), "the first call never finished"
        return repo

    monkeypatch.setattr(repos, "repo_with", wrapper)


def sequenced(
    monkeypatch: pytest.MonkeyPatch,
    second: tuple[str, dict[str, Any]],
    *firsts: tuple[str, dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``second`` reads the row, then ``firsts`` run one after the other, then ``second`` goes on.

    Returns the second call's envelope and the first calls' envelopes.
    """
    first_done, read = threading.Event(), threading.Event()
    after_read_wait_for(monkeypatch, first_done, read)
    answers: list[dict[str, Any]] = []

    def firsts_after_read() -> None:
        try:
            assert read.wait(WAIT), "the second call never read the row"
            answers.extend(caller().envelope(m, a) for m, a in firsts)
        finally:
            first_done.set()

    with ThreadPoolExecutor(2) as pool:

        def run_second() -> dict[str, Any]:
            _current.role = "second"
            return caller().envelope(*second)

        late = pool.submit(run_second)
        early = pool.submit(firsts_after_read)
        early.result(timeout=WAIT * 2)
        return late.result(timeout=WAIT * 2), answers


def outcomes(envelopes: list[dict[str, Any]]) -> list[str]:
    return sorted("ok" if e["error"] is None else e["error"] for e in envelopes)


# --- parallel creates --------------------------------------------------------------------------

N = 6


@pytest.mark.parametrize("forced", [False, True], ids=["natural", "all-pass-the-check"])
def test_parallel_creates_of_one_name_leave_one_repository(
    api: Api, monkeypatch: pytest.MonkeyPatch, forced: bool
) -> None:
    from repohost import repos

    api.call("create_repo_group", group_name="grp")
    calls = [("create_repo", {"repo_name": "grp/same", "description": f"#{i}"}) for i in range(N)]
    if forced:
        with all_pass_then_go(monkeypatch, repos, "name_taken", N):
            answers = in_parallel(calls)
    else:
        answers = in_parallel(calls)
    assert outcomes(answers) == ["ok"] + ["repo `grp/same` already exist"] * (N - 1)
    winner = next(i for i, e in enumerate(answers) if e["error"] is None)
    assert api.call("get_repo", repoid="grp/same")["description"] == f"#{winner}"
    assert assert_consistent() == ({"grp/same"}, {"grp"})
    assert (repos_root() / "grp" / "same" / "description").read_text() == f"#{winner}"


def test_parallel_creates_of_names_differing_in_case_leave_one_repository(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Same`` and ``same`` collide (see repos.name_taken), also when created at once."""
    from repohost import repos

    names = ["same", "Same", "SAME"]
    with all_pass_then_go(monkeypatch, repos, "name_taken", len(names)):
        answers = in_parallel([("create_repo", {"repo_name": n}) for n in names])
    assert [e["error"] is None for e in answers].count(True) == 1, answers
    assert len(assert_consistent()[0]) == 1


def test_parallel_creates_of_different_names_in_one_group_all_succeed(api: Api) -> None:
    api.call("create_repo_group", group_name="grp")
    answers = in_parallel([("create_repo", {"repo_name": f"grp/r{i}"}) for i in range(N)])
    assert outcomes(answers) == ["ok"] * N
    assert assert_consistent() == ({f"grp/r{i}" for i in range(N)}, {"grp"})
    assert len(api.call("get_repo_group", repogroupid="grp")["repositories"]) == N


def test_parallel_forks_to_one_name_leave_one_fork(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost import repos

    api.call("create_repo", repo_name="origin")
    ids = push_commits(repos_root() / "origin", [{"a": "1"}])
    with all_pass_then_go(monkeypatch, repos, "name_taken", 3):
        answers = in_parallel([("fork_repo", {"repoid": "origin", "fork_name": "copy"})] * 3)
    assert outcomes(answers) == ["ok", "repo `copy` already exist", "repo `copy` already exist"]
    assert assert_consistent()[0] == {"origin", "copy"}
    assert head("copy") == ids[0]


# --- parallel renames --------------------------------------------------------------------------


@pytest.mark.parametrize("forced", [False, True], ids=["natural", "both-pass-the-check"])
def test_parallel_renames_to_one_name_leave_one_winner(
    api: Api, monkeypatch: pytest.MonkeyPatch, forced: bool
) -> None:
    from repohost import repos

    api.call("create_repo", repo_name="one")
    api.call("create_repo", repo_name="two")
    commits = {
        "one": push_commits(repos_root() / "one", [{"f": "one"}])[0],
        "two": push_commits(repos_root() / "two", [{"f": "two"}])[0],
    }
    calls = [("update_repo", {"repoid": n, "name": "target"}) for n in ("one", "two")]
    if forced:
        with all_pass_then_go(monkeypatch, repos, "name_taken", 2):
            answers = in_parallel(calls)
    else:
        answers = in_parallel(calls)
    winner, loser = ("one", "two") if answers[0]["error"] is None else ("two", "one")
    assert answers[["one", "two"].index(winner)]["result"]["repository"]["repo_name"] == "target"
    assert assert_consistent()[0] == {"target", loser}
    assert head("target") == commits[winner]
    assert head(loser) == commits[loser]
    assert answers[["one", "two"].index(loser)]["error"] is not None


def test_the_rename_that_loses_the_race_gets_the_rename_error(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost import repos

    api.call("create_repo", repo_name="one")
    api.call("create_repo", repo_name="two")
    calls = [("update_repo", {"repoid": n, "name": "target"}) for n in ("one", "two")]
    with all_pass_then_go(monkeypatch, repos, "name_taken", 2):
        answers = in_parallel(calls)
    loser = "two" if answers[0]["error"] is None else "one"
    assert outcomes(answers) == ["failed to update repo `" + loser + "`", "ok"]


def test_rename_and_create_of_one_name_at_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from repohost import repos

    api.call("create_repo", repo_name="old")
    with all_pass_then_go(monkeypatch, repos, "name_taken", 2):
        answers = in_parallel(
            [
                ("update_repo", {"repoid": "old", "name": "new"}),
                ("create_repo", {"repo_name": "new"}),
            ]
        )
    assert [e["error"] for e in answers].count(None) == 1, answers
    names = assert_consistent()[0]
    assert names == ({"old", "new"} if answers[1]["error"] is None else {"new"})


# --- delete and update of one repository -------------------------------------------------------


def test_parallel_delete_and_update_of_one_repository(api: Api) -> None:
    api.call("create_repo", repo_name="shaky")
    answers = in_parallel(
        [
            ("delete_repo", {"repoid": "shaky"}),
            ("update_repo", {"repoid": "shaky", "description": "still here?"}),
        ]
    )
    assert answers[0]["result"] == {"msg": "Deleted repository `shaky`", "success": True}
    assert answers[1]["error"] in (None, "repository `shaky` does not exist"), answers[1]
    assert assert_consistent() == (set(), set())


@pytest.mark.parametrize(
    "check",
    [
        "consistent",
        "answer",
    ],
)
def test_update_that_read_the_row_before_a_delete_committed(
    api: Api, monkeypatch: pytest.MonkeyPatch, check: str
) -> None:
    """The update waits for the repository's lock; once it has it, the repository is gone."""
    api.call("create_repo", repo_name="shaky")
    late, (early,) = sequenced(
        monkeypatch,
        ("update_repo", {"repoid": "shaky", "description": "too late"}),
        ("delete_repo", {"repoid": "shaky"}),
    )
    assert early["error"] is None
    assert assert_consistent() == (set(), set())
    assert late["error"] is not None
    if check == "answer":
        assert late == {"id": 7, "result": None, "error": "repository `shaky` does not exist"}


def test_delete_that_read_the_row_before_an_update_committed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.call("create_repo", repo_name="shaky")
    late, (early,) = sequenced(
        monkeypatch,
        ("delete_repo", {"repoid": "shaky"}),
        ("update_repo", {"repoid": "shaky", "description": "changed"}),
    )
    assert early["error"] is None
    assert late["result"] == {"msg": "Deleted repository `shaky`", "success": True}
    assert assert_consistent() == (set(), set())


def test_delete_that_read_the_row_before_a_rename_and_a_new_repository_of_its_name(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete must act on the repository it read (now ``moved``), never on the new ``a``."""
    api.call("create_repo", repo_name="a")
    old = push_commits(repos_root() / "a", [{"f": "old"}])[0]
    late, early = sequenced(
        monkeypatch,
        ("delete_repo", {"repoid": "a"}),
        ("update_repo", {"repoid": "a", "name": "moved"}),
        ("create_repo", {"repo_name": "a"}),
    )
    assert [e["error"] for e in early] == [None, None]
    names = assert_consistent()[0]
    assert "a" in names, "the new repository `a` must survive"
    if late["error"] is None:
        assert names == {"a"}
    else:
        assert names == {"a", "moved"}
        assert head("moved") == old
    assert api.call("get_repo", repoid="a")["last_changeset"]["revision"] == -1


def test_rename_that_read_the_row_before_a_rename_committed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.call("create_repo", repo_name="a")
    late, (early,) = sequenced(
        monkeypatch,
        ("update_repo", {"repoid": "a", "name": "second"}),
        ("update_repo", {"repoid": "a", "name": "first"}),
    )
    assert early["error"] is None
    names = assert_consistent()[0]
    assert names in ({"first"}, {"second"}), names
    if late["error"] is not None:
        assert names == {"first"}


# --- a failure between the database step and the disk step ------------------------------------


def world(api: Api) -> None:
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo", repo_name="grp/src")
    push_commits(repos_root() / "grp" / "src", [{"a": "1"}, {"b": "2"}])


def state(api: Api) -> dict[str, Any]:
    repos = {r["repo_name"]: r for r in api.call("get_repos")}
    return {
        "names": assert_consistent(),
        "rows": repos,
        "heads": {name: head(name) for name in repos},
    }


#: operation: (method, args, the RepoStore method that is the disk step,
#: the first step after it that can fail: "module:function").
STEPS: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "create": (
        "create_repo",
        {"repo_name": "grp/new"},
        "create_repo",
        "repohost.repos:refresh_changeset_cache",
    ),
    "fork": (
        "fork_repo",
        {"repoid": "grp/src", "fork_name": "grp/copy"},
        "clone_local",
        "repohost.repos:refresh_changeset_cache",
    ),
    "delete": (
        "delete_repo",
        {"repoid": "grp/src"},
        "trash_repo",
        "repohost.repos:remove_directory",  # fails once its own step is done
    ),
    "rename": (
        "update_repo",
        {"repoid": "grp/src", "name": "renamed"},
        "rename_repo",
        "repohost.methods.repos:_rename",  # fails once its own step is done
    ),
}
FAILURES = ("the disk step fails", "the next step fails", "the commit fails")


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("operation", STEPS)
def test_a_failure_around_the_disk_step_changes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, operation: str, failure: str
) -> None:
    import importlib

    from repohost.git import storage
    from repohost.git.errors import StorageError

    world(api)
    before = state(api)
    method, args, step, next_step = STEPS[operation]
    disk_step = getattr(storage.RepoStore, step)
    disk_step_done = threading.Event()

    def disk_fails(*_a: Any, **_k: Any) -> Any:
        raise StorageError("disk said no")

    def disk_works(*a: Any, **k: Any) -> Any:
        result = disk_step(*a, **k)
        disk_step_done.set()
        return result

    monkeypatch.setattr(
        storage.RepoStore, step, disk_fails if failure == "the disk step fails" else disk_works
    )
    if failure == "the next step fails":
        module, name = next_step.split(":")
        target = importlib.import_module(module)
        original = getattr(target, name)

        def then_fail(*a: Any, **k: Any) -> Any:
            if name in ("remove_directory", "_rename"):
                original(*a, **k)
            raise RuntimeError("broke after the disk step")

        monkeypatch.setattr(target, name, then_fail)
    if failure == "the commit fails":
        monkeypatch.setattr(
            "repohost.rpc.dispatcher.call_transaction", commit_fails_after(disk_step_done)
        )
    error = api.error(method, **args)
    monkeypatch.undo()
    if failure == "the disk step fails":
        assert error.startswith("failed to "), error
        assert not disk_step_done.is_set()
    else:
        assert disk_step_done.is_set()
    assert state(api) == before


def commit_fails_after(disk_step_done: threading.Event) -> Callable[..., Any]:
    """The dispatcher's transaction, whose COMMIT fails once the disk step has been done."""
    from sqlalchemy.exc import OperationalError

    from repohost.db.engine import call_transaction

    @contextmanager
    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with call_transaction(*args, **kwargs) as db:
            yield db
            if disk_step_done.is_set():
                raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    return failing


@pytest.mark.parametrize("operation", STEPS)
def test_the_failure_check_can_see_a_change(api: Api, operation: str) -> None:
    """Without a failure the same call does change the state compared above."""
    world(api)
    before = state(api)
    method, args, _step, _next = STEPS[operation]
    api.call(method, **args)
    assert state(api) != before
