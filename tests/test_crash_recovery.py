"""kill -9 of the local server in the middle of writes, then a restart: nothing half-made.

``python -m repohost.local`` (what ``make run`` runs) is started as a process of
its own, once with SQLite under a temp folder and once with PostgreSQL. Writer
threads keep it busy with ``create_repo``, renames (``update_repo``),
``fork_repo``, ``delete_repo``, ``create_gist`` and ``delete_gist``, and the
server is killed with SIGKILL mid-stream, several rounds with different timings:

- ``random``: after a random delay;
- ``dir-appears``: a repository directory (created, forked or renamed) is
  there but its row has not committed: the worst moment;
- ``trash-appears``: a delete has moved a directory to ``.trash/`` but the
  row's removal has not committed;
- ``gist-appears``: a gist directory is there but its row has not committed.

The targeted moments are found by freezing the server (SIGSTOP) whenever a
step shows on disk before its call answered and asking the database.

After each restart the database and the repository root must agree: every
repository row has a bare repository that ``git fsck`` accepts and every
directory under the root has a row; every gist row has its repository and every
gist repository a row; anything else is only in ``.tmp/`` or ``.trash/`` (and
``RepoStore.purge_trash`` clears it); and the server answers normally, writes
included. The seed of the run is printed; ``CRASH_SEED=<seed>`` repeats its
choices (not the exact timing).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from repohost.db.models import Gist, Repository
from repohost.git.storage import GIST_STORE, TMP_DIR, TRASH_DIR, RepoStore, is_bare_repo
from tests.support.gitcli import git, push_commits
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "d" * 40
#: The root's own working folders: never repositories.
OWN_FOLDERS = {TMP_DIR, TRASH_DIR, ".locks", GIST_STORE, ".intents"}
WRITERS = 6
BANNER_WAIT = 60.0
#: The longest a round waits for its moment before killing anyway.
ROUND_LIMIT = 20.0
MODES = ("random", "dir-appears", "trash-appears", "gist-appears")


# --- the server as a process ----------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    port: int

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start(cwd: Path, env: dict[str, str], log: Path) -> Server:
    """Start ``python -m repohost.local`` on a free port; its banner gives the URL."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REPOHOST_")}
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "repohost.local", "--template", str(ROOT / "template.yaml")],
            cwd=cwd,
            env={**clean, "PORT": "0", "ADMIN_API_KEY": KEY, **env},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:  # the banner, then whatever else comes, so the pipe never fills
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    banner: list[str] = []
    deadline = time.monotonic() + BANNER_WAIT
    while not any(line.startswith("  curl") for line in banner):
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line is None:
            process.kill()
            process.wait(timeout=30)
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"the server did not start: {banner}\n{tail}")
        banner.append(line)
    match = re.search(r"serving on (http://127\.0\.0\.1:(\d+))", "\n".join(banner))
    assert match, banner
    return Server(process, match.group(1), int(match.group(2)))


class Client:
    """One keep-alive connection; any transport failure raises (the server is gone)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def envelope(self, method: str, **args: Any) -> dict[str, Any]:
        body = json.dumps({"id": 1, "api_key": KEY, "method": method, "args": args})
        self.connection.request("POST", "/_admin/api", body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        assert response.status == 200, (response.status, data[:300])
        return json.loads(data)

    def call(self, method: str, **args: Any) -> Any:
        envelope = self.envelope(method, **args)
        assert envelope["error"] is None, (method, args, envelope["error"])
        return envelope["result"]

    def close(self) -> None:
        self.connection.close()


# --- one round: writers, a kill ---------------------------------------------------------------


@dataclass
class Round:
    number: int
    seed: int
    mode: str
    settled: set[str] = field(default_factory=set)
    #: Access ids of the gists whose creation answered.
    gists: set[str] = field(default_factory=set)
    done: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _writer(port: int, state: Round, number: int) -> None:
    """Loop over writes until the server dies (or the round is over)."""
    rng = random.Random(state.seed * 100 + number)
    client = Client(port)
    gists: list[str] = []
    prefix = f"r{state.number}w{number}"
    try:
        for i in range(10_000):
            if state.stop.is_set():
                return
            name, renamed, fork = f"{prefix}-{i}", f"{prefix}-{i}-x", f"{prefix}-{i}-f"
            client.call("create_repo", repo_name=name, description=f"round {state.number}")
            with state.lock:
                state.settled.add(name)
            final = name
            if rng.random() < 0.6:
                client.call("update_repo", repoid=name, name=renamed)
                with state.lock:
                    state.settled.add(renamed)
                final = renamed
            if rng.random() < 0.4:
                client.call("fork_repo", repoid="seed", fork_name=fork)
                with state.lock:
                    state.settled.add(fork)
            if rng.random() < 0.5:
                kind = rng.choice(["public", "private"])
                files = {f"f{i}.txt": {"content": f"{prefix} {i}\n" * rng.randrange(1, 50)}}
                gist = client.call("create_gist", files=files, gist_type=kind)["gist"]
                gists.append(str(gist["gist_id"]))
                with state.lock:
                    state.gists.add(gist["access_id"])
            if rng.random() < 0.5:
                client.call("delete_repo", repoid=final)
            if gists and rng.random() < 0.2:
                client.call("delete_gist", gistid=gists.pop(0))
            with state.lock:
                state.done += 1
    except (OSError, http.client.HTTPException):
        return  # killed: expected
    except AssertionError as exc:
        with state.lock:
            state.errors.append(f"writer {number}: {exc}")
    finally:
        client.close()


class Watcher:
    """Picks the moment to kill the server.

    ``random``: after a random delay. The targeted modes watch the root; when a
    step shows there before its call has answered, the server is frozen
    (SIGSTOP) and the database asked whether that step has committed: if not,
    this is the moment (a crash now must not leave the step behind), otherwise
    the server goes on (SIGCONT) and the watch goes on.
    """

    def __init__(self, server: Server, root: Path, state: Round, database_url: str) -> None:
        rng = random.Random(state.seed)
        self.server, self.root, self.state = server, root, state
        self.due = time.monotonic() + rng.uniform(0.05, 3.0)
        # Let a few writes land first, so the kill is mid-stream and not at the start.
        self.warm = time.monotonic() + rng.uniform(0.2, 1.0)
        self.seen = set(_listdir(root / GIST_STORE)) | set(_listdir(root)) | {"seed"}
        sqlite = database_url.startswith("sqlite")
        self.engine = create_engine(database_url, connect_args={"timeout": 0.2} if sqlite else {})
        self.freezes = 0

    def close(self) -> None:
        self.engine.dispose()

    def now(self) -> bool:
        mode, state = self.state.mode, self.state
        if mode == "random":
            return time.monotonic() >= self.due
        if time.monotonic() < self.warm:
            return False
        if mode == "dir-appears":
            found = {e for e in _listdir(self.root) if not e.startswith(".")}
            with state.lock:
                new = found - state.settled - self.seen
            return bool(new) and self._uncommitted(new, Repository.repo_name, present=False)
        if mode == "gist-appears":
            found = set(_listdir(self.root / GIST_STORE))
            with state.lock:
                new = found - state.gists - self.seen
            return bool(new) and self._uncommitted(new, Gist.gist_access_id, present=False)
        entries = set(_listdir(self.root / TRASH_DIR)) - self.seen
        self.seen |= entries
        names = {entry.partition("__")[2] for entry in entries}
        return bool(names) and self._uncommitted(names, Repository.repo_name, present=True)

    def _uncommitted(self, names: set[str], column: Any, present: bool) -> bool:
        """Freeze the server; True (left frozen) when a step on ``names`` has not committed.

        A created name has committed once its row exists; a deleted one once it is gone.
        """
        self.server.process.send_signal(signal.SIGSTOP)
        self.freezes += 1
        try:
            with self.engine.connect() as connection:
                rows = set(connection.scalars(select(column).where(column.in_(names))))
        except OperationalError:  # SQLite: frozen in the middle of its commit; look again later
            self.server.process.send_signal(signal.SIGCONT)
            return False
        except BaseException:
            self.server.process.send_signal(signal.SIGCONT)
            raise
        if (rows & names) if present else (names - rows):
            return True
        self.seen |= names
        self.server.process.send_signal(signal.SIGCONT)
        return False


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def run_round(server: Server, root: Path, state: Round, database_url: str) -> str:
    """Writers against ``server`` until it is killed; returns how the kill was timed."""
    threads = [
        threading.Thread(target=_writer, args=(server.port, state, n), daemon=True)
        for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    watcher = Watcher(server, root, state, database_url)
    deadline = time.monotonic() + ROUND_LIMIT
    how = "deadline"
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)  # the watcher must not wait for the writers' turns
    try:
        while time.monotonic() < deadline:
            if watcher.now():
                how = state.mode
                break
            if server.process.poll() is not None:
                pytest.fail("the server died by itself")
            time.sleep(0.0001)
    finally:
        sys.setswitchinterval(interval)
        server.kill()
        watcher.close()
    state.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a writer did not notice the server was gone"
    assert not state.errors, state.errors
    return how


# --- checking the state -----------------------------------------------------------------------


def _fsck(path: Path) -> None:
    git(path, "--git-dir", str(path), "fsck", "--full", "--no-progress")


def check_consistent(root: Path, database_url: str) -> tuple[set[str], set[str]]:
    """The database and the root agree; returns the repository names and gist access ids."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            repos = set(connection.scalars(select(Repository.repo_name)))
            gists = set(connection.scalars(select(Gist.gist_access_id)))
    finally:
        engine.dispose()
    # Every row has its bare repository, and git finds it whole.
    for name in sorted(repos):
        path = root / name
        assert is_bare_repo(path), f"repository row {name!r} has no repository on disk"
        _fsck(path)
    for access_id in sorted(gists):
        path = root / GIST_STORE / access_id
        assert is_bare_repo(path), f"gist row {access_id!r} has no repository on disk"
        _fsck(path)
    # Every directory has its row (no groups are made here, so everything is top level).
    entries = set(os.listdir(root))
    hidden = {e for e in entries if e.startswith(".")}
    assert hidden <= OWN_FOLDERS, f"unexpected entries in the root: {hidden - OWN_FOLDERS}"
    orphans = (entries - hidden) - repos
    assert not orphans, f"directories without a repository row: {sorted(orphans)}"
    gist_orphans = set(_listdir(root / GIST_STORE)) - gists
    assert not gist_orphans, f"gist directories without a row: {sorted(gist_orphans)}"
    assert not _listdir(root / ".intents"), "unfinished intents left after the restart"
    # Leftovers only in .tmp/ and .trash/, and purge_trash clears them.
    RepoStore(root).purge_trash(stale_after=0)
    assert not _listdir(root / TMP_DIR)
    assert not _listdir(root / TRASH_DIR)
    return repos, gists


def check_answers(server: Server, repos: set[str], number: int) -> None:
    """The restarted server answers normally: reads agree with the database, writes work."""
    client = Client(server.port)
    try:
        listed = {repo["repo_name"] for repo in client.call("get_repos")}
        assert listed == repos
        name = f"after{number}"
        client.call("create_repo", repo_name=name)
        client.call("update_repo", repoid=name, name=f"{name}-x")
        client.call("fork_repo", repoid="seed", fork_name=f"{name}-f")
        for kind in ("public", "private"):
            files = {"a.txt": {"content": "after the crash\n"}}
            gist = client.call("create_gist", files=files, gist_type=kind)["gist"]
            client.call("get_gist", gistid=gist["gist_id"])
        client.call("delete_repo", repoid=f"{name}-x")
        assert client.call("get_repo", repoid=f"{name}-f")["fork_of"] == "seed"
    finally:
        client.close()


# --- the tests --------------------------------------------------------------------------------


def _run_seed() -> int:
    fixed = os.environ.get("CRASH_SEED")
    return int(fixed) if fixed else random.SystemRandom().randrange(1 << 32)


def crash_rounds(tmp_path: Path, env: dict[str, str], database_url: str) -> None:
    log = tmp_path / "server.log"
    root = tmp_path / "data" / "repos"
    server = start(tmp_path, env, log)
    try:
        client = Client(server.port)
        client.call("create_repo", repo_name="seed")
        client.close()
        files = {f"src/file{i}.txt": f"line {i}\n" * 40 for i in range(30)}
        push_commits(root / "seed", [files, {"README": "seed"}])
        kills: list[str] = []
        run_seed = _run_seed()
        print(f"CRASH_SEED={run_seed} (the timing of the kills still varies)")
        for number in range(2 * len(MODES)):
            mode = MODES[number % len(MODES)]
            state = Round(number, run_seed * 100 + number, mode)
            kills.append(run_round(server, root, state, database_url))
            print(f"round {number} ({mode}): killed ({kills[-1]}) after {state.done} sequences")
            server = start(tmp_path, env, log)
            repos, _gists = check_consistent(root, database_url)
            check_answers(server, repos, number)
            check_consistent(root, database_url)
        # The targeted moments did come (or the test would prove little).
        assert sum(how != "deadline" for how in kills) >= len(MODES), kills
    finally:
        server.stop()


def test_kill_9_during_writes_with_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'repohost.sqlite'}"
    crash_rounds(tmp_path, {}, url)


def test_kill_9_during_writes_with_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database(f"crash_{os.getpid()}_{random.randrange(1 << 30)}")
    crash_rounds(tmp_path, {"REPOHOST_DATABASE_URL": url}, url)


# --- each kind of step, settled one at a time ---------------------------------------------------
#
# The store steps below are taken as a call would take them, with no database change
# to go with them: exactly what a call killed before its commit leaves.


def _recover(root: Path, stale_after: float = 0) -> tuple[int, int]:
    from repohost.db.engine import transaction
    from repohost.recovery import reconcile

    with transaction() as session:
        outcome = reconcile(session, RepoStore(root), stale_after=stale_after)
    return outcome.settled, outcome.undone


def _notes(root: Path) -> list[str]:
    return _listdir(root / ".intents")


def test_steps_whose_call_never_committed_are_undone(lambda_api: Any) -> None:
    from tests.conftest import repos_root

    api, root = lambda_api, repos_root()
    api.call("create_repo", repo_name="renamed")
    api.call("create_repo", repo_name="deleted")
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo_group", group_name="gone")
    gist = api.call("create_gist", files={"a.txt": {"content": "a"}})["gist"]["access_id"]
    assert _notes(root) == [], "a call that ended leaves no note"
    store = RepoStore(root, intents=True)
    store.create_repo("orphan")
    store.clone_local("renamed", "orphan-fork")
    store.rename_repo("renamed", "renamed-x")
    trash = store.trash_repo("deleted")
    store.create_group("orphan-group")
    store.rename_group("grp", "grp-x")
    group_trash = store.trash_group("gone")
    store.create_gist("f" * 20, {"b.txt": "b"}, "m", "admin <admin@example.com>")
    gist_trash = store.trash_gist(gist)
    assert len(_notes(root)) == 9
    assert _recover(root, stale_after=3600) == (0, 0), "young notes may be calls in progress"
    assert _recover(root) == (9, 9)
    assert _notes(root) == []
    for gone in ("orphan", "orphan-fork", "renamed-x", "orphan-group", "grp-x"):
        assert not (root / gone).exists(), gone
    assert not (root / GIST_STORE / ("f" * 20)).exists()
    for back in ("renamed", "deleted"):
        assert is_bare_repo(root / back), back
    assert (root / "grp").is_dir() and (root / "gone").is_dir()
    assert is_bare_repo(root / GIST_STORE / gist)
    assert not trash.exists() and not group_trash.exists() and not gist_trash.exists()
    assert RepoStore(root).purge_trash(stale_after=0) >= 0
    assert _listdir(root / TRASH_DIR) == [] and _listdir(root / TMP_DIR) == []
    # The server agrees with the disk again.
    assert {r["repo_name"] for r in api.call("get_repos")} == {"renamed", "deleted"}
    api.call("create_repo", repo_name="orphan")
    api.call("create_repo_group", group_name="orphan-group")
    api.call("update_repo", repoid="renamed", name="renamed-x")
    api.call("delete_repo", repoid="deleted")


def test_committed_steps_and_other_directories_are_left_alone(lambda_api: Any) -> None:
    """A note whose call did commit changes nothing, and only the noted directory is undone."""
    from tests.conftest import repos_root

    api, root = lambda_api, repos_root()
    api.call("create_repo", repo_name="made")
    api.call("create_repo", repo_name="old")
    api.call("update_repo", repoid="old", name="new")
    api.call("create_repo", repo_name="dropped")
    api.call("delete_repo", repoid="dropped")
    store = RepoStore(root, intents=True)
    # What a call killed after its commit but before dropping its notes leaves:
    store._intend({"op": "create_repo", "name": "made", "inode": (root / "made").stat().st_ino})
    store._intend({"op": "rename_repo", "old": "old", "new": "new", "inode": 1})
    store._intend({"op": "trash_repo", "name": "dropped", "trash": "20200101_000000_000000_x"})
    # A directory put there by hand (for rescan_repos to adopt) under a noted name:
    RepoStore(root).create_repo("adopt-me")
    (root / ".intents").joinpath("0" * 20 + "-broken.json").write_text("{not json")
    store._intend({"op": "create_repo", "name": "adopt-me", "inode": 1})
    store._intend({"op": "no-such-step"})
    assert _recover(root) == (5, 0)
    assert _notes(root) == []
    assert is_bare_repo(root / "made") and is_bare_repo(root / "new")
    assert not (root / "old").exists() and not (root / "dropped").exists()
    assert is_bare_repo(root / "adopt-me")
    assert api.call("rescan_repos")["added"] == ["adopt-me"]


def test_rescan_undoes_old_steps_instead_of_adopting_them(lambda_api: Any) -> None:
    from repohost.recovery import STALE_SECONDS
    from tests.conftest import repos_root

    api, root = lambda_api, repos_root()
    store = RepoStore(root, intents=True)
    store.create_repo("half-made")
    store.create_repo("in-progress")
    old = time.time() - STALE_SECONDS - 60
    for note in sorted(_notes(root))[:1]:
        os.utime(root / ".intents" / note, (old, old))
    assert "half-made" not in api.call("rescan_repos")["added"]
    assert not (root / "half-made").exists()
    assert len(_notes(root)) == 1, "the young note stays: its call may still commit"


def test_jobs_left_unfinished_are_queued_again(
    lambda_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process queue dies with the server: at start, every unfinished job is sent again."""
    from repohost.db.engine import transaction
    from repohost.db.models import Job
    from repohost.jobs import queue
    from repohost.recovery import requeue_jobs

    lambda_api.call("create_repo", repo_name="pending")
    repo_id = lambda_api.call("get_repo", repoid="pending")["repo_id"]
    states = {"a" * 32: "queued", "b" * 32: "running", "c" * 32: "done", "d" * 32: "failed"}
    with transaction() as session:
        for job_id, state in states.items():
            session.add(
                Job(job_id=job_id, kind="pull", repository_id=repo_id, state=state, payload={})
            )
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        queue, "send", lambda job_id, repo, _dedup=None: sent.append((job_id, repo))
    )
    assert requeue_jobs() == 2
    assert sorted(sent) == [("a" * 32, repo_id), ("b" * 32, repo_id)]
