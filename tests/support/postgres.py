"""Throwaway PostgreSQL servers for the test suite.

Why: the repository code targets PostgreSQL (SQLAlchemy + pg8000), and SQLite hides real
behaviour (locking, constraint timing, types). Each ``PostgresServer`` runs ``initdb`` into a
private temp dir, listens only on 127.0.0.1 on a random port, and is torn down on ``stop()``,
at interpreter exit, and - via a small watchdog process - even if the test process is killed.

Only the stdlib and pg8000 are used, so this works before anything else is importable.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import pg8000.native

__all__ = ["BINDIR_ENV", "PostgresServer", "find_pg_bindir", "skip_reason"]

#: Environment variable that overrides server-binary discovery (a dir holding initdb/pg_ctl).
BINDIR_ENV = "REPOHOST_TEST_PG_BINDIR"

_OS_USER_WHEN_ROOT = "postgres"
_ADMIN_USER = "postgres"
_APP_USER = "repohost"
_APP_DB = "repohost"
_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_DB_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# Servers started by this process, so the atexit hook can stop whatever teardown missed.
_LIVE: set[PostgresServer] = set()
_LIVE_LOCK = threading.Lock()

# Runs in a separate session; waits for EOF on stdin (= the test process died or called stop())
# and then makes sure the server is gone and the temp dir removed.  This is what keeps
# SIGKILLed / segfaulted test runs from leaking postgres processes.
_WATCHDOG = """# repohost test-postgres watchdog
import json, os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
cfg = json.loads(sys.argv[1])
try:
    sys.stdin.buffer.read()
except BaseException:
    pass
if os.path.exists(os.path.join(cfg["datadir"], "postmaster.pid")):
    try:
        subprocess.run(cfg["stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30, check=False, cwd=cfg["tmpdir"],
                       user=cfg["uid"], group=cfg["gid"],
                       extra_groups=[] if cfg["uid"] is not None else None)
    except Exception:
        pass
shutil.rmtree(cfg["tmpdir"], ignore_errors=True)
"""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin; "9.6" sorts below "15".
    parts = re.findall(r"\d+", path.parent.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def find_pg_bindir() -> Path | None:
    """Locate a directory with the PostgreSQL *server* binaries (initdb, pg_ctl, postgres).

    Why the dance: on Debian ``pg_config --bindir`` may point at /usr/bin, which only has the
    client wrappers; the real server binaries live under /usr/lib/postgresql/<ver>/bin.
    """
    override = os.environ.get(BINDIR_ENV)
    if override:
        path = Path(override)
        return path if _has_server_binaries(path) else None

    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and _has_server_binaries(Path(out)):
            return Path(out)

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_server_binaries(candidate):
            return candidate
    return None


def _root_problem() -> str | None:
    """Why we cannot drop privileges to the postgres OS user (initdb refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(_OS_USER_WHEN_ROOT)
    except KeyError:
        return (
            f"running as root but there is no {_OS_USER_WHEN_ROOT!r} OS user to run the server as "
            "(initdb refuses to run as root); installing the postgresql package creates it"
        )
    return None


def skip_reason() -> str | None:
    """Return why PostgreSQL-backed tests cannot run here, or None if they can.

    Why loud: a silently skipped database suite looks like a green one.
    """
    if find_pg_bindir() is None:
        return (
            "\n"
            "*** PostgreSQL server binaries (initdb, pg_ctl, postgres) NOT FOUND - "
            "the database tests are SKIPPED. ***\n"
            "Install them, e.g. on Debian/Ubuntu:   sudo apt-get install postgresql\n"
            "(they land in /usr/lib/postgresql/<version>/bin; nothing needs to be running -\n"
            f"the tests start their own throwaway server), or set {BINDIR_ENV}=/path/to/bin."
        )
    return _root_problem()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _traversable_by(path: Path, uid: int) -> bool:
    """True if every ancestor of ``path`` can be entered by ``uid`` (via owner or other bits)."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == uid:
            if not st.st_mode & stat.S_IXUSR:
                return False
        elif not st.st_mode & stat.S_IXOTH:
            return False
    return True


def _clean_env() -> dict[str, str]:
    # PGDATA/PGPORT/PGHOST etc. from the developer's shell must not leak into initdb/pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


class PostgresServerError(RuntimeError):
    """Raised when the throwaway server cannot be initialised or started."""


class PostgresServer:
    """A private PostgreSQL instance on 127.0.0.1:<random port>, for tests only.

    ``url`` points at database ``repohost`` owned by the non-superuser role ``repohost`` (what
    application code should use); ``admin_url`` is a superuser connection to ``postgres``.
    Durability is switched off (fsync etc.) because the data is thrown away anyway.
    """

    def __init__(self, bindir: Path | None = None, *, start_timeout: float = 30.0) -> None:
        self.bindir: Path | None = bindir or find_pg_bindir()
        self.start_timeout = start_timeout
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.user = _APP_USER
        self.password = secrets.token_urlsafe(24)
        self.dbname = _APP_DB
        self.admin_user = _ADMIN_USER
        self.admin_password = secrets.token_urlsafe(24)
        self.tmpdir: Path | None = None
        self._owner_pid: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._uid: int | None = None
        self._gid: int | None = None

    # -- paths ---------------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    @property
    def logfile(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "postgres.log"

    @property
    def started(self) -> bool:
        return self.port is not None and self.tmpdir is not None

    # -- URLs ----------------------------------------------------------------------------

    def url_for(self, dbname: str, *, admin: bool = False) -> str:
        """SQLAlchemy URL for ``dbname`` as the app role (or the superuser if ``admin``)."""
        if self.port is None:
            raise PostgresServerError("server is not started")
        user, password = (
            (self.admin_user, self.admin_password) if admin else (self.user, self.password)
        )
        return (
            f"postgresql+pg8000://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    @property
    def url(self) -> str:
        """App-role URL for the default ``repohost`` database."""
        return self.url_for(self.dbname)

    @property
    def admin_url(self) -> str:
        """Superuser URL for the ``postgres`` maintenance database."""
        return self.url_for("postgres", admin=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        """initdb + pg_ctl start; idempotent. Raises PostgresServerError with the log on failure."""
        if self.started:
            return self
        if self.bindir is None or not _has_server_binaries(self.bindir):
            raise PostgresServerError(skip_reason() or "PostgreSQL server binaries not found")
        problem = _root_problem()
        if problem:
            raise PostgresServerError(problem)
        try:
            self._make_tmpdir()
            self._start_watchdog()
            self._initdb()
            self._pg_ctl_start()
            self._bootstrap_roles()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server immediately (no checkpoint) and delete its data; idempotent."""
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.tmpdir is None:
            return
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            return  # forked child: the server belongs to the parent
        try:
            if (self.datadir / "postmaster.pid").exists():
                result = self._run(self._stop_cmd(), timeout=30, check=False)
                if result.returncode != 0:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
            self.port = None
            if self._watchdog is not None:
                if self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()
                try:
                    self._watchdog.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                self._watchdog = None

    def pause(self) -> None:
        """Stop the server but keep its data (fault tests: the database goes away).

        A fast (clean) shutdown: with ``synchronous_commit=off`` an immediate one
        could lose the last commits.
        """
        pg_ctl, datadir = self._bin("pg_ctl"), str(self.datadir)
        self._run([pg_ctl, "-D", datadir, "-m", "fast", "-w", "-t", "20", "stop"], timeout=30)

    def resume(self) -> None:
        """Start a paused server again on the same port (the database comes back)."""
        assert self.port is not None
        self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.datadir),
                "-l",
                str(self.logfile),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                "30",
                "start",
            ],
            timeout=40,
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------------------

    def admin_connection(self, dbname: str = "postgres") -> pg8000.native.Connection:
        """Autocommit superuser connection (CREATE/DROP DATABASE cannot run in a transaction)."""
        if self.port is None:
            raise PostgresServerError("server is not started")
        return pg8000.native.Connection(
            user=self.admin_user,
            password=self.admin_password,
            host=self.host,
            port=self.port,
            database=dbname,
            timeout=30,
        )

    def create_database(self, name: str) -> str:
        """Create a fresh database owned by the app role and return its SQLAlchemy URL."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid database name {name!r}")
        conn = self.admin_connection()
        try:
            conn.run(
                f"CREATE DATABASE {pg8000.native.identifier(name)} "
                f"OWNER {pg8000.native.identifier(self.user)} TEMPLATE template0 ENCODING 'UTF8'"
            )
        finally:
            conn.close()
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, kicking out any connections a test left open."""
        conn = self.admin_connection()
        try:
            conn.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        finally:
            conn.close()

    # -- internals -----------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _run(
        self, cmd: list[str], *, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self._uid is not None:
            # initdb/postgres refuse to run as root: drop to the postgres OS user.
            kwargs = {"user": self._uid, "group": self._gid, "extra_groups": []}
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.tmpdir,
            env=_clean_env(),
            **kwargs,
        )
        if check and result.returncode != 0:
            raise PostgresServerError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    def _stop_cmd(self) -> list[str]:
        # -m immediate: no shutdown checkpoint, the data is about to be deleted anyway.
        pg_ctl, datadir = self._bin("pg_ctl"), str(self.datadir)
        return [pg_ctl, "-D", datadir, "-m", "immediate", "-w", "-t", "20", "stop"]

    def _make_tmpdir(self) -> None:
        base = Path(tempfile.gettempdir())
        if os.geteuid() == 0:
            pw = pwd.getpwnam(_OS_USER_WHEN_ROOT)
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
            if not _traversable_by(base, pw.pw_uid):
                base = Path("/tmp")
                if not _traversable_by(base, pw.pw_uid):
                    raise PostgresServerError(
                        f"no temp dir traversable by the {_OS_USER_WHEN_ROOT!r} user; "
                        "set TMPDIR to a world-executable directory"
                    )
        self.tmpdir = Path(tempfile.mkdtemp(prefix="repohost-pg-", dir=base))
        self._owner_pid = os.getpid()
        if self._uid is not None:
            os.chown(self.tmpdir, self._uid, self._gid or -1)
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _start_watchdog(self) -> None:
        assert self.tmpdir is not None
        cfg = {
            "datadir": str(self.datadir),
            "tmpdir": str(self.tmpdir),
            "stop": self._stop_cmd(),
            "uid": self._uid,
            "gid": self._gid,
        }
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-c", _WATCHDOG, json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # survive Ctrl-C / SIGTERM aimed at the test process group
            close_fds=True,
        )

    def _initdb(self) -> None:
        assert self.tmpdir is not None
        pwfile = self.tmpdir / "pwfile"
        pwfile.write_text(self.admin_password + "\n")
        if self._uid is not None:
            os.chown(pwfile, self._uid, self._gid or -1)
        try:
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    self.admin_user,
                    f"--pwfile={pwfile}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.tmpdir}'",
            "password_encryption": "'scram-sha-256'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# repohost test harness\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl_start(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        attempts = 0
        while True:
            attempts += 1
            port = _free_port()
            remaining = max(1, int(deadline - time.monotonic()))
            result = self._run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    str(remaining),
                    "start",
                ],
                timeout=remaining + 10,
                check=False,
            )
            if result.returncode == 0:
                self.port = port
                return
            log = _tail(self.logfile)
            # Another process grabbed the port between probing and binding: try a new one.
            if "could not bind" in log and attempts < 5 and time.monotonic() < deadline:
                self.logfile.unlink(missing_ok=True)
                continue
            raise PostgresServerError(
                f"pg_ctl start failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"--- {self.logfile} ---\n{log}"
            )

    def _bootstrap_roles(self) -> None:
        conn = self.admin_connection()
        try:
            conn.run(
                f"CREATE ROLE {pg8000.native.identifier(self.user)} LOGIN "
                f"PASSWORD {pg8000.native.literal(self.password)}"
            )
        finally:
            conn.close()
        self.create_database(self.dbname)

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl stop fails: SIGKILL the postmaster (children then exit)."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


@atexit.register
def _stop_all_servers() -> None:
    """Why: a test run that errors out before fixture teardown must not leak servers."""
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        try:
            server.stop()
        except Exception as exc:  # pragma: no cover - best effort at exit
            print(f"repohost tests: failed to stop PostgreSQL: {exc}", file=sys.stderr)
