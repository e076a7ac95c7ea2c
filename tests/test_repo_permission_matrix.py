"""Who may do what to a repository: roles × methods, each cell the exact outcome.

Every cell runs in a fresh copy of the world built by ``world()``: a repository
group ``grp`` holding the repository ``grp/repo`` (public or private, owned by
``owner``, two commits), a spare empty group ``spare``, the user groups
``ug_read``/``ug_write``/``ug_admin`` (one member each, with that level on the
repository), an inactive user group holding ``repository.admin`` on it, a
user group ``team`` and a user ``target`` that the permission methods act on,
and one user per role. For the upkeep methods the repository also has a
``clone_uri`` (a git server on 127.0.0.1 holding one commit more), a lock held
by ``regular``, a webhook secret and a stale changeset cache, and ``grp/stray``
is a bare repository on disk that ``rescan_repos`` would adopt. Read a row as
"this role calling these methods gets …". A refused call must leave every row
of every table and every file under the repository root as built
(``assert_untouched``); a read must answer what the admin's same call answers
(a listing: the admin's entry for ``grp/repo``, or none); a write's answer and
effect are checked by ``check_effect``.

The rules the tables encode (facts §4.5, 0.7 "highest wins"): the owner and
``repository.admin`` grantees administer the repository; repository groups
never pass permissions to their repositories at check time (``group_only``
administers ``grp`` but only reads ``grp/repo`` through the default user),
only a grant with ``apply_to_children=repos`` writes rows onto them
(``group_admin``); an explicit ``repository.none`` does not take away the read
the default user gives on a public repository; inactive user groups give
nothing; granting or revoking *user* permissions on a repository and every
repository-group method but the four permission methods are admin-only, and
so are ``pull`` and ``rescan_repos`` (facts §3.1); ``lock`` and
``invalidate_cache`` need ``repository.write``, the webhook secrets
``repository.admin``; ``get_locks`` shows a non-admin only their own locks on
repositories they may still read.

The last four roles are refused whatever they hold: ``anonymous`` is the
default user's key, ``inactive_user`` a deactivated user holding
``repository.admin``, ``expired_key`` a reader whose key has expired, and
``ip_refused`` a ``repository.admin`` grantee calling from outside their IP
whitelist (``test_the_refused_roles_hold_what_their_rows_refuse`` is the
control: the same users with a good key or address get in).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api, LambdaTransport
from tests.support.gitcli import git, push_commits
from tests.support.matrix import parse_table

if TYPE_CHECKING:
    from tests.support.upstream import GitUpstream

REPO = "grp/repo"
STRAY = "grp/stray"
#: Where ``ip_refused`` calls from: outside its whitelist, 10.0.0.0/8.
REFUSED_IP = "192.0.2.1"
WORLD_SECRET = "world-secret-0123456789"
NEW_SECRET = "new-secret-0123456789"

#: Cell codes → the exact outcome.
OK = "ok"  # the call succeeds; what it answered and did is checked by ``check_effect``
SEEN = "seen"  # get_repos / get_locks succeeds and lists the repository
UNSEEN = "unseen"  # get_repos / get_locks succeeds and does not list it
ERRORS = {
    "hidden": f"repository `{REPO}` does not exist",
    "denied": "Access was denied to this resource.",
    "nokey": "Invalid API key",
    "noip": f"request from IP:{REFUSED_IP} not allowed",
    "nosame": "userid is not the same as your user",
    "nogrp": "repository group `grp` does not exist",
    "nowrt": "no permission to create repo in grp",
}

REPO_METHODS = (
    "get_repo",
    "get_repos",
    "get_repo_nodes",
    "update_repo",
    "fork_repo",
    "delete_repo",
    "grant_user_permission",
    "revoke_user_permission",
    "grant_user_group_permission",
    "revoke_user_group_permission",
    "get_changesets",
    "get_changeset",
)

# fmt: off
#               get_   get_   nodes  upd-   fork   delete grant  revoke grant  revoke csets  cset
#               repo   repos         ate                  user   user   group  group
PUBLIC = """
admin           ok     seen   ok     ok     ok     ok     ok     ok     ok     ok     ok     ok
owner           ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
reader          ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
writer          ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
repo_admin      ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
ug_reader       ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
ug_writer       ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
ug_admin        ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
group_admin     ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
group_only      ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
explicit_none   ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
inactive_ug     ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
regular         ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
anonymous       nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
inactive_user   nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
expired_key     nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
ip_refused      noip   noip   noip   noip   noip   noip   noip   noip   noip   noip   noip   noip
"""

PRIVATE = """
admin           ok     seen   ok     ok     ok     ok     ok     ok     ok     ok     ok     ok
owner           ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
reader          ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
writer          ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
repo_admin      ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
ug_reader       ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
ug_writer       ok     seen   ok     hidden ok     hidden denied denied hidden hidden ok     ok
ug_admin        ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
group_admin     ok     seen   ok     ok     ok     ok     denied denied ok     ok     ok     ok
group_only      hidden unseen hidden hidden hidden hidden denied denied hidden hidden hidden hidden
explicit_none   hidden unseen hidden hidden hidden hidden denied denied hidden hidden hidden hidden
inactive_ug     hidden unseen hidden hidden hidden hidden denied denied hidden hidden hidden hidden
regular         hidden unseen hidden hidden hidden hidden denied denied hidden hidden hidden hidden
anonymous       nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
inactive_user   nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
expired_key     nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
ip_refused      noip   noip   noip   noip   noip   noip   noip   noip   noip   noip   noip   noip
"""
# fmt: on

#: Mirrors, maintenance and webhooks on the same repository (columns named ``method(variant)``
#: call ``method``): ``lock`` locks it for the caller, ``lock(regular)`` for ``regular``
#: (by numeric id), ``lock(show)`` asks who holds it; ``get_locks`` lists the caller's
#: locks (all of them for an admin), ``get_locks(regular)`` those of ``regular``.
UPKEEP_METHODS = (
    "pull",
    "lock",
    "lock(regular)",
    "lock(show)",
    "get_locks",
    "get_locks(regular)",
    "invalidate_cache",
    "set_webhook_secret",
    "delete_webhook_secret",
)

# fmt: off
#               pull   lock   lock   lock   get_   get_   inval- set    delete
#                             (reg-  (show) locks  locks  idate  hook   hook
#                             ular)                (reg.) cache  secret secret
PUBLIC_UPKEEP = """
admin           ok     ok     ok     ok     seen   seen   ok     ok     ok
owner           denied ok     nosame ok     unseen nosame ok     ok     ok
reader          denied hidden hidden hidden unseen nosame hidden hidden hidden
writer          denied ok     nosame ok     unseen nosame ok     hidden hidden
repo_admin      denied ok     nosame ok     unseen nosame ok     ok     ok
ug_reader       denied hidden hidden hidden unseen nosame hidden hidden hidden
ug_writer       denied ok     nosame ok     unseen nosame ok     hidden hidden
ug_admin        denied ok     nosame ok     unseen nosame ok     ok     ok
group_admin     denied ok     nosame ok     unseen nosame ok     ok     ok
group_only      denied hidden hidden hidden unseen nosame hidden hidden hidden
explicit_none   denied hidden hidden hidden unseen nosame hidden hidden hidden
inactive_ug     denied hidden hidden hidden unseen nosame hidden hidden hidden
regular         denied hidden hidden hidden seen   seen   hidden hidden hidden
anonymous       nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
inactive_user   nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
expired_key     nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
ip_refused      noip   noip   noip   noip   noip   noip   noip   noip   noip
"""

# ``regular`` holds the lock but may not read the private repository: get_locks leaves it out.
PRIVATE_UPKEEP = PUBLIC_UPKEEP.replace(
    "regular         denied hidden hidden hidden seen   seen   hidden hidden hidden",
    "regular         denied hidden hidden hidden unseen unseen hidden hidden hidden",
)
assert PRIVATE_UPKEEP != PUBLIC_UPKEEP
# fmt: on

GROUP_METHODS = (
    "create_repo",
    "get_repo_group",
    "get_repo_groups",
    "create_repo_group",
    "update_repo_group",
    "delete_repo_group",
    "grant_user_permission_to_repo_group",
    "revoke_user_permission_from_repo_group",
    "grant_user_group_permission_to_repo_group",
    "revoke_user_group_permission_from_repo_group",
    "rescan_repos",
)

# The same whether grp/repo is public or private (run with the public one).
# fmt: off
#               create get    get    create update delete grant  revoke grant  revoke rescan
#               repo   group  groups group  group  group  user   user   ugroup ugroup repos
GROUPS = """
admin           ok     ok     ok     ok     ok     ok     ok     ok     ok     ok     ok
owner           nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
reader          nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
writer          nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
repo_admin      nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
ug_reader       nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
ug_writer       nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
ug_admin        nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
group_admin     ok     denied denied denied denied denied ok     ok     ok     ok     denied
group_only      ok     denied denied denied denied denied ok     ok     ok     ok     denied
explicit_none   nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
inactive_ug     nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
regular         nowrt  denied denied denied denied denied nogrp  nogrp  nogrp  nogrp  denied
anonymous       nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
inactive_user   nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
expired_key     nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey  nokey
ip_refused      noip   noip   noip   noip   noip   noip   noip   noip   noip   noip   noip
"""
# fmt: on


#: Table → (its columns, its text, whether ``grp/repo`` is private in its world).
TABLES: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "public": (REPO_METHODS, PUBLIC, False),
    "private": (REPO_METHODS, PRIVATE, True),
    "public_upkeep": (UPKEEP_METHODS, PUBLIC_UPKEEP, False),
    "private_upkeep": (UPKEEP_METHODS, PRIVATE_UPKEEP, True),
    "groups": (GROUP_METHODS, GROUPS, False),
}
CODES = (OK, SEEN, UNSEEN, *ERRORS)
EXPECTED = {
    name: parse_table(text, columns, CODES) for name, (columns, text, _private) in TABLES.items()
}
ROLES = tuple(EXPECTED["public"])
#: Roles whose key is refused before any permission is looked at.
REFUSED_ROLES = ("anonymous", "inactive_user", "expired_key", "ip_refused")


def method_of(column: str) -> str:
    """``lock(show)`` → ``lock``."""
    return column.partition("(")[0]


#: Each column called with arguments that succeed for an admin.
ARGS: dict[str, dict[str, Any]] = {
    "get_repo": {"repoid": REPO},
    "get_repos": {},
    "get_repo_nodes": {"repoid": REPO, "revision": "tip", "root_path": "/"},
    "update_repo": {"repoid": REPO, "description": "changed"},
    "fork_repo": {"repoid": REPO, "fork_name": "forked"},
    "delete_repo": {"repoid": REPO},
    "grant_user_permission": {"repoid": REPO, "userid": "target", "perm": "repository.write"},
    "revoke_user_permission": {"repoid": REPO, "userid": "target"},
    "grant_user_group_permission": {
        "repoid": REPO,
        "usergroupid": "team",
        "perm": "repository.write",
    },
    "revoke_user_group_permission": {"repoid": REPO, "usergroupid": "team"},
    "get_changesets": {"repoid": REPO},
    "get_changeset": {"repoid": REPO, "raw_id": "LAST_COMMIT"},
    "pull": {"repoid": REPO},
    "lock": {"repoid": REPO, "locked": True},
    "lock(regular)": {"repoid": REPO, "locked": True, "userid": "REGULAR_ID"},
    "lock(show)": {"repoid": REPO},
    "get_locks": {},
    "get_locks(regular)": {"userid": "REGULAR_ID"},
    "invalidate_cache": {"repoid": REPO},
    "set_webhook_secret": {"repoid": REPO, "secret": NEW_SECRET},
    "delete_webhook_secret": {"repoid": REPO},
    "create_repo": {"repo_name": "grp/new"},
    "get_repo_group": {"repogroupid": "grp"},
    "get_repo_groups": {},
    "create_repo_group": {"group_name": "newgroup"},
    "update_repo_group": {"repogroupid": "grp", "description": "changed"},
    "delete_repo_group": {"repogroupid": "spare"},
    "grant_user_permission_to_repo_group": {
        "repogroupid": "grp",
        "userid": "target",
        "perm": "group.write",
    },
    "revoke_user_permission_from_repo_group": {"repogroupid": "grp", "userid": "target"},
    "grant_user_group_permission_to_repo_group": {
        "repogroupid": "grp",
        "usergroupid": "team",
        "perm": "group.write",
    },
    "revoke_user_group_permission_from_repo_group": {"repogroupid": "grp", "usergroupid": "team"},
    "rescan_repos": {},
}


# --- the upstream ``pull`` fetches from ------------------------------------------------------

_UPSTREAM: list[GitUpstream] = []


def upstream() -> GitUpstream:
    """A git server on 127.0.0.1 for the whole run: the worlds, built once, keep its URL."""
    if not _UPSTREAM:
        import atexit
        import shutil
        import tempfile

        from tests.support.upstream import GitUpstream

        server = GitUpstream(Path(tempfile.mkdtemp(prefix="matrix-upstream-"))).start()
        atexit.register(shutil.rmtree, server.root, ignore_errors=True)
        atexit.register(server.stop)
        _UPSTREAM.append(server)
    return _UPSTREAM[0]


@contextmanager
def loopback_remotes() -> Iterator[None]:
    """Let a ``clone_uri`` reach 127.0.0.1 (and nothing else that is not public)."""
    from repohost.config import get_settings

    name = "REPOHOST_ALLOW_PRIVATE_REMOTES"
    before = os.environ.get(name)
    os.environ[name] = "127.0.0.1/32"
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before
        get_settings.cache_clear()


# --- the world ----------------------------------------------------------------------------


@dataclass
class World:
    keys: dict[str, str]
    repo_id: int
    commits: list[str]
    #: The upstream's newest commit, one after ``commits[-1]``.
    upstream_head: str = ""
    #: Each user's id, by name (= role).
    ids: dict[str, int] = field(default_factory=dict)


def world(api: Api, *, private: bool) -> World:
    """Build the users, groups and the repository; return each role's key."""
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey, UserIpMap

    keys = {"admin": ADMIN_KEY}
    users = [r for r in ROLES if r not in ("admin", "anonymous")]
    ids = {}
    for name in (*users, "target"):
        ids[name], keys[name] = api.new_user(name)
    keys["anonymous"] = api.call("create_api_key", userid="default")["api_key"]
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo_group", group_name="spare")
    api.call("create_repo", repo_name=REPO, owner="owner", private=private)
    commits = push_commits(
        repos_root() / REPO,
        [{"README": "hello\n", "src/main.py": "print(1)\n"}, {"README": "hello again\n"}],
    )
    for member, level in (("ug_reader", "read"), ("ug_writer", "write"), ("ug_admin", "admin")):
        api.call("create_user_group", group_name=f"ug_{level}")
        api.call("add_user_to_user_group", usergroupid=f"ug_{level}", userid=member)
        api.call(
            "grant_user_group_permission",
            repoid=REPO,
            usergroupid=f"ug_{level}",
            perm=f"repository.{level}",
        )
    for user, level in (
        ("reader", "read"),
        ("writer", "write"),
        ("repo_admin", "admin"),
        ("inactive_user", "admin"),
        ("expired_key", "read"),
        ("ip_refused", "admin"),
    ):
        api.call("grant_user_permission", repoid=REPO, userid=user, perm=f"repository.{level}")
    api.call("grant_user_permission", repoid=REPO, userid="explicit_none", perm="repository.none")
    api.call("create_user_group", group_name="sleepers", active=False)
    api.call("add_user_to_user_group", usergroupid="sleepers", userid="inactive_ug")
    api.call(
        "grant_user_group_permission", repoid=REPO, usergroupid="sleepers", perm="repository.admin"
    )
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="grp",
        userid="group_admin",
        perm="group.admin",
        apply_to_children="repos",
    )
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="grp",
        userid="group_only",
        perm="group.admin",
    )
    # Rows the revoke methods take away, so that a refused revoke is visible.
    api.call("create_user_group", group_name="team")
    api.call("grant_user_permission", repoid=REPO, userid="target", perm="repository.read")
    api.call("grant_user_group_permission", repoid=REPO, usergroupid="team", perm="repository.read")
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="grp", userid="target", perm="group.read"
    )
    api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="grp",
        usergroupid="team",
        perm="group.read",
    )
    # The refused roles (facts §1.4, §4.8).
    api.call("update_user", userid="inactive_user", active=False)
    with transaction() as session:
        session.query(UserApiKey).filter_by(user_id=ids["expired_key"]).update(
            {"expires": time.time() - 1}
        )
        session.add(UserIpMap(user_id=ids["ip_refused"], ip_addr="10.0.0.0/8"))
    # What the upkeep methods change: an upstream one commit ahead, a lock, a webhook
    # secret, the changeset cache (stale: the commits were pushed past the API) and a
    # repository on disk that no row names yet.
    server = upstream()
    mirror = f"up{len(list(server.root.iterdir()))}.git"
    git(server.root, "clone", "-q", "--bare", str(repos_root() / REPO), mirror)
    ahead = push_commits(server.root / mirror, [{"README": "pulled\n"}], start=1_600_001_000)
    with loopback_remotes():
        api.call("update_repo", repoid=REPO, clone_uri=server.url(mirror))
    api.call("lock", repoid=REPO, locked=True, userid="regular")
    api.call("set_webhook_secret", repoid=REPO, secret=WORLD_SECRET)
    assert api.call("get_repo", repoid=REPO)["last_changeset"]["raw_id"] != commits[-1]
    git(repos_root(), "init", "-q", "--bare", STRAY)
    repo_id = api.call("get_repo", repoid=REPO)["repo_id"]
    return World(keys, repo_id, commits, ahead[-1], ids)


@dataclass
class Saved:
    """A world as built: its rows, a copy of its repository root, what ``build`` returned."""

    rows: dict[str, list[dict[str, Any]]]
    folder: Path
    built: Any
    #: PostgreSQL: one script emptying the tables and putting the rows back.
    script: str | None


#: Each world is built through the API once per test run, then copied back for every cell.
_BUILT: dict[tuple[str, str], Saved] = {}


def restored[T](api: Api, database_url: str, name: str, build: Callable[[Api], T]) -> T:
    """``build(api)``'s world in a clean database and repository root, and its result.

    The first time, ``build`` runs through the API and the rows and directories
    are saved; afterwards they are copied back. Rows are removed with DELETE,
    not the ``db`` fixture's TRUNCATE: on tables this small DELETE is ten
    times faster, and the matrices have some 1,300 cells. On PostgreSQL the
    whole restore is one script sent at once (``restore_script``).
    """
    import atexit
    import shutil
    import tempfile

    from repohost.db import bootstrap
    from repohost.db.engine import get_engine
    from tests.conftest import _empty

    key = (database_url, name)
    _empty(repos_root())
    if key not in _BUILT:
        with get_engine().begin() as conn:
            for table in reversed(_tables()):
                conn.execute(table.delete())
        bootstrap.ensure_defaults()
        bootstrap.ensure_first_admin(ADMIN_KEY)
        built = build(api)
        folder = Path(tempfile.mkdtemp(prefix=f"matrix-{name}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        shutil.copytree(repos_root(), folder, symlinks=True, dirs_exist_ok=True)
        rows = database_rows()
        postgres = get_engine().dialect.name == "postgresql"
        _BUILT[key] = Saved(rows, folder, built, restore_script(rows) if postgres else None)
        return built
    saved = _BUILT[key]
    shutil.copytree(saved.folder, repos_root(), symlinks=True, dirs_exist_ok=True)
    with get_engine().begin() as conn:
        if saved.script is not None:
            conn.exec_driver_sql(saved.script)
            return saved.built
        for table in reversed(_tables()):
            conn.execute(table.delete())
        for table in _tables():
            if saved.rows[table.name]:
                conn.execute(table.insert().values(saved.rows[table.name]))
    return saved.built


def restore_script(rows: dict[str, list[dict[str, Any]]]) -> str:
    """PostgreSQL statements that empty every table, put ``rows`` back and set the sequences.

    Sent as one simple query: pg8000 would send an ``executemany`` row by row,
    and compiling a multi-row INSERT costs SQLAlchemy more than running it.
    Every id sequence is set to the world's highest id, or the next row could
    take an id the world uses: the ``db`` fixture's ``TRUNCATE … RESTART
    IDENTITY`` (other tests in the run) sends the sequences back to 1.
    """
    from datetime import datetime

    from sqlalchemy import Integer

    def plain(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot restore {value!r}")

    # Our own table names; the data is dollar-quoted.
    script = [f'DELETE FROM "{table.name}";' for table in reversed(_tables())]  # noqa: S608
    sequences = []
    for table in _tables():
        found = rows[table.name]
        if found:
            data = json.dumps(found, default=plain)
            assert "$rows$" not in data
            rows_of = f'json_populate_recordset(NULL::"{table.name}", $rows${data}$rows$)'
            script.append(f'INSERT INTO "{table.name}" SELECT * FROM {rows_of};')  # noqa: S608
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, Integer):
            sequence = f"pg_get_serial_sequence('{table.name}', '{key[0].name}')"
            ids = [row[key[0].name] for row in found]
            sequences.append(
                f"setval({sequence}, {max(ids)})" if ids else f"setval({sequence}, 1, false)"
            )
    script.append(f"SELECT {', '.join(sequences)};")
    return "\n".join(script)


def _tables() -> list[Any]:
    from repohost.db.models import Base

    return Base.metadata.sorted_tables


def database_rows() -> dict[str, list[dict[str, Any]]]:
    from repohost.db.engine import get_engine

    with get_engine().begin() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(t.select())] for t in _tables()}


def _files(root: Path) -> list[tuple[str, int, int]]:
    """Every file under ``root``: its path, size and modification time (``copytree`` keeps it)."""
    found = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            stat = os.lstat(os.path.join(folder, name))
            relative = os.path.relpath(os.path.join(folder, name), root)
            found.append((relative, stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _canonical(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    return {
        table: sorted(json.dumps(row, sort_keys=True, default=str) for row in found)
        for table, found in rows.items()
    }


def assert_untouched(database_url: str, name: str) -> None:
    """Not a row in the database nor a file under the root differs from world ``name``'s."""
    saved = _BUILT[(database_url, name)]
    now = _canonical(database_rows())
    changed = [table for table, found in _canonical(saved.rows).items() if now[table] != found]
    assert not changed, f"a refused call changed the tables {changed}"
    assert _files(repos_root()) == _files(saved.folder), "a refused call changed the root"


def world_name(private: bool) -> str:
    return "private" if private else "public"


def repo_world(api: Api, database_url: str, *, private: bool) -> World:
    """The public or private world of the repository tables, restored."""
    return restored(api, database_url, world_name(private), lambda api: world(api, private=private))


def caller(admin: Api, w: World, role: str) -> Api:
    """``role``'s client: its key, from ``REFUSED_IP`` for ``ip_refused``."""
    return admin.as_user(w.keys[role], ip=REFUSED_IP if role == "ip_refused" else None)


@pytest.fixture
def admin(migrated: str) -> Api:
    return Api(LambdaTransport(), ADMIN_KEY)


def layout() -> list[str]:
    """Groups (ending in ``/``) and repositories on disk, hidden areas left out."""
    from repohost.git.storage import is_bare_repo

    found = []
    pending = [repos_root()]
    while pending:
        for entry in sorted(pending.pop().iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            name = entry.relative_to(repos_root()).as_posix()
            if is_bare_repo(entry):
                found.append(name)
            else:
                found.append(name + "/")
                pending.append(entry)
    return sorted(found)


def repo_row() -> dict[str, Any]:
    """What the API does not show of ``grp/repo``: secret, lock, cache, state; its refs; jobs."""
    from sqlalchemy import func, select

    from repohost.db.engine import transaction
    from repohost.db.models import Job, Repository

    with transaction() as session:
        row = session.execute(
            select(
                Repository.webhook_secret,
                Repository.locked,
                Repository.changeset_cache,
                Repository.clone_uri,
                Repository.repo_state,
            ).where(Repository.repo_name == REPO)
        ).one_or_none()
        jobs = session.scalar(select(func.count()).select_from(Job))
    path = repos_root() / REPO
    refs = git(path, "for-each-ref") if path.exists() else None
    return {"row": None if row is None else dict(row._mapping), "refs": refs, "jobs": jobs}


def members_of(admin: Api, method: str, ident: str, key: str) -> dict[str, str]:
    answer = admin.call(method, **{key: ident})["members"]
    return {f"{m['type']}:{m['name']}": m["permission"] for m in answer}


def check_effect(admin: Api, column: str, result: Any, w: World, role: str) -> None:
    """What a successful write by ``role`` (also its user name) must have answered and done."""
    method = method_of(column)
    repo_members = lambda: members_of(admin, "get_repo", REPO, "repoid")  # noqa: E731
    grp_members = lambda: members_of(admin, "get_repo_group", "grp", "repogroupid")  # noqa: E731
    if method == "create_repo":
        assert result == {"msg": "Created new repository `grp/new`", "success": True}
        assert "grp/new" in layout()
    elif method == "update_repo":
        assert result["msg"] == f"updated repo ID:{w.repo_id} {REPO}"
        assert result["repository"]["description"] == "changed"
        assert admin.call("get_repo", repoid=REPO)["description"] == "changed"
    elif method == "fork_repo":
        assert result == {"msg": f"Created fork of `{REPO}` as `forked`", "success": True}
        assert admin.call("get_repo", repoid="forked")["fork_of"] == REPO
        assert "forked" in layout()
    elif method == "delete_repo":
        assert result == {"msg": f"Deleted repository `{REPO}`", "success": True}
        assert admin.error("get_repo", repoid=REPO) == ERRORS["hidden"]
        assert REPO not in layout()
    elif method == "grant_user_permission":
        assert result == {
            "msg": f"Granted perm: `repository.write` for user: `target` in repo: `{REPO}`",
            "success": True,
        }
        assert repo_members()["user:target"] == "repository.write"
    elif method == "revoke_user_permission":
        assert result == {
            "msg": f"Revoked perm for user: `target` in repo: `{REPO}`",
            "success": True,
        }
        assert "user:target" not in repo_members()
    elif method == "grant_user_group_permission":
        assert result == {
            "msg": f"Granted perm: `repository.write` for user group: `team` in repo: `{REPO}`",
            "success": True,
        }
        assert repo_members()["user_group:team"] == "repository.write"
    elif method == "revoke_user_group_permission":
        assert result == {
            "msg": f"Revoked perm for user group: `team` in repo: `{REPO}`",
            "success": True,
        }
        assert "user_group:team" not in repo_members()
    elif method == "pull":
        assert result == {"msg": f"Pulled from `{REPO}`", "repository": REPO}  # not queued
        assert admin.call("get_repo", repoid=REPO)["last_changeset"]["raw_id"] == w.upstream_head
        assert f"{w.upstream_head} commit\trefs/heads/master" in repo_row()["refs"]
    elif method == "lock":
        holder = "regular" if column == "lock(regular)" else role
        since = result["locked_since"]
        assert isinstance(since, float) and abs(since - time.time()) < 60
        assert result == {
            "repo": REPO,
            "locked": True,
            "locked_since": since,
            "locked_by": holder,
            "lock_state_changed": True,
            "msg": f"User `{holder}` set lock state for repo `{REPO}` to `True`",
        }
        holder_id = w.ids.get(holder) or admin.call("get_user")["user_id"]
        assert repo_row()["row"]["locked"] == f"{holder_id}:{since}"
    elif method == "invalidate_cache":
        assert result == {
            "msg": f"Cache for repository `{REPO}` was invalidated",
            "repository": REPO,
        }
        assert admin.call("get_repo", repoid=REPO)["last_changeset"]["raw_id"] == w.commits[-1]
    elif method == "set_webhook_secret":
        assert result == {
            "msg": f"Webhook secret set for repository `{REPO}`",
            "repository": REPO,
            "webhook_secret": NEW_SECRET,
            "webhook_url": result["webhook_url"],
            "webhook_url_by_name": result["webhook_url_by_name"],
        }
        assert result["webhook_url"].endswith(f"/_admin/hooks/_{w.repo_id}")
        assert result["webhook_url_by_name"].endswith(f"/_admin/hooks/{REPO}")
        assert repo_row()["row"]["webhook_secret"] == NEW_SECRET
    elif method == "delete_webhook_secret":
        assert result == {
            "msg": f"Webhook secret removed from repository `{REPO}`",
            "repository": REPO,
        }
        assert repo_row()["row"]["webhook_secret"] is None
    elif method == "create_repo_group":
        assert result["msg"] == "created new repo group `newgroup`"
        assert "newgroup/" in layout()
    elif method == "update_repo_group":
        assert result["repo_group"]["group_description"] == "changed"
        assert admin.call("get_repo_group", repogroupid="grp")["group_description"] == "changed"
    elif method == "delete_repo_group":
        assert result["msg"].startswith("deleted repo group ID:") and result["msg"].endswith(
            " spare"
        )
        assert "spare/" not in layout()
    elif method == "grant_user_permission_to_repo_group":
        assert result == {
            "msg": "Granted perm: `group.write` (recursive:none) for user: `target`"
            " in repo group: `grp`",
            "success": True,
        }
        assert grp_members()["user:target"] == "group.write"
    elif method == "revoke_user_permission_from_repo_group":
        assert result == {
            "msg": "Revoked perm (recursive:none) for user: `target` in repo group: `grp`",
            "success": True,
        }
        assert "user:target" not in grp_members()
    elif method == "grant_user_group_permission_to_repo_group":
        assert result == {
            "msg": "Granted perm: `group.write` (recursive:none) for user group: `team`"
            " in repo group: `grp`",
            "success": True,
        }
        assert grp_members()["user_group:team"] == "group.write"
    elif method == "revoke_user_group_permission_from_repo_group":
        assert result == {
            "msg": "Revoked perm (recursive:none) for user group: `team` in repo group: `grp`",
            "success": True,
        }
        assert "user_group:team" not in grp_members()
    elif method == "rescan_repos":
        assert result == {"added": [STRAY], "removed": []}
        assert admin.call("get_repo", repoid=STRAY)["repo_name"] == STRAY
    else:
        raise AssertionError(f"no check for {method}")


#: Columns that change nothing: their answer must be the admin's (or, listing, its part).
READS = {
    "get_repo",
    "get_repos",
    "get_repo_nodes",
    "get_changesets",
    "get_changeset",
    "lock(show)",
    "get_locks",
    "get_locks(regular)",
    "get_repo_group",
    "get_repo_groups",
}

CASES = [
    (table, role, column)
    for table, (columns, _text, _private) in TABLES.items()
    for role in ROLES
    for column in columns
]


@pytest.mark.parametrize(
    ("table", "role", "column"), CASES, ids=[f"{t}-{r}-{c}" for t, r, c in CASES]
)
def test_matrix(admin: Api, migrated: str, table: str, role: str, column: str) -> None:
    private = TABLES[table][2]
    w = repo_world(admin, migrated, private=private)
    method = method_of(column)
    values = {"LAST_COMMIT": w.commits[-1], "REGULAR_ID": w.ids["regular"]}
    args = {k: values.get(v, v) if isinstance(v, str) else v for k, v in ARGS[column].items()}
    reference = admin.envelope(method, args) if column in READS else None
    with loopback_remotes() if method == "pull" else nullcontext():
        envelope = caller(admin, w, role).envelope(method, args)
    expected = EXPECTED[table][role][column]
    if expected in ERRORS:
        assert envelope == {"id": 7, "result": None, "error": ERRORS[expected]}
        if column not in READS:  # reads change nothing anyway
            assert_untouched(migrated, world_name(private))
        return
    assert envelope["error"] is None, envelope
    result = envelope["result"]
    if expected in (SEEN, UNSEEN):
        listed = {r["repo_name"]: r for r in result}
        assert listed.get(REPO) == (admin_repo(reference) if expected == SEEN else None)
    elif column in READS:
        assert expected == OK
        assert envelope == reference
    else:
        assert expected == OK
        check_effect(admin, column, result, w, role)


def admin_repo(reference: Any) -> dict[str, Any]:
    return next(r for r in reference["result"] if r["repo_name"] == REPO)


def test_a_restored_world_is_the_world_as_built(admin: Api, migrated: str) -> None:
    """The check behind every refused cell starts from equality, and sees a change."""
    for private in (False, True):
        repo_world(admin, migrated, private=private)
        assert_untouched(migrated, world_name(private))
    admin.call("update_repo", repoid=REPO, description="moved on")
    with pytest.raises(AssertionError, match=r"changed the tables \['repositories'"):
        assert_untouched(migrated, world_name(True))


def test_the_refused_roles_hold_what_their_rows_refuse(admin: Api, migrated: str) -> None:
    """The control for the last four rows: with a good key or address each gets in."""
    w = repo_world(admin, migrated, private=True)
    assert caller(admin, w, "ip_refused").error("get_repo", repoid=REPO) == ERRORS["noip"]
    inside = admin.as_user(w.keys["ip_refused"], ip="10.1.2.3")
    assert inside.call("set_webhook_secret", repoid=REPO)["repository"] == REPO
    fresh = admin.call("create_api_key", userid="expired_key")["api_key"]
    assert admin.as_user(fresh).call("get_repo", repoid=REPO)["repo_name"] == REPO
    admin.call("update_user", userid="inactive_user", active=True)
    woken = admin.as_user(w.keys["inactive_user"])
    assert woken.call("delete_webhook_secret", repoid=REPO)["repository"] == REPO
    assert admin.as_user(w.keys["anonymous"]).error("get_repos") == ERRORS["nokey"]


def test_tables_cover_every_repository_and_group_method() -> None:
    """A new method in these areas must get a column here before it ships."""
    from repohost.methods._index import METHOD_MODULES

    areas = ("repos", "repo_groups", "changesets", "mirrors", "maintenance", "webhooks")
    covered = {m for m, module in METHOD_MODULES.items() if module in areas}
    columns = {method_of(c) for columns, _t, _p in TABLES.values() for c in columns}
    assert covered == columns
    assert all(set(rows) == set(ROLES) for rows in EXPECTED.values())


# --- the 0.7 rules, one by one --------------------------------------------------------------


def levels(api: Api, key: str) -> dict[str, str]:
    """What ``get_user`` says the caller has on each repository."""
    return api.as_user(key).call("get_user")["permissions"]["repositories"]


def test_explicit_none_does_not_take_away_the_default_read(lambda_api: Api) -> None:
    api = lambda_api
    uid, key = api.new_user("nobody")
    api.call("create_repo", repo_name="open")
    api.call("create_repo", repo_name="closed", private=True)
    for repo in ("open", "closed"):
        api.call("grant_user_permission", repoid=repo, userid=uid, perm="repository.none")
    nobody = api.as_user(key)
    assert levels(api, key)["open"] == "repository.read"
    assert nobody.call("get_repo", repoid="open")["repo_name"] == "open"
    assert [r["repo_name"] for r in nobody.call("get_repos")] == ["open"]
    assert nobody.error("get_repo", repoid="closed") == "repository `closed` does not exist"


def test_a_private_repository_stays_closed_whatever_the_default_row_says(
    lambda_api: Api,
) -> None:
    """Private starts from ``none`` for non-owners even if the default user's row says more."""
    api = lambda_api
    _uid, key = api.new_user("outsider")
    api.call("create_repo", repo_name="closed", private=True)
    api.call("grant_user_permission", repoid="closed", userid="default", perm="repository.write")
    outsider = api.as_user(key)
    assert outsider.error("get_repo", repoid="closed") == "repository `closed` does not exist"
    assert outsider.call("get_repos") == []
    assert "closed" not in levels(api, key)  # no access: not listed at all
    api.call("update_repo", repoid="closed", private=False)  # the control: now the row counts
    assert levels(api, key)["closed"] == "repository.write"
    assert outsider.call("get_repo", repoid="closed")["repo_name"] == "closed"


def test_highest_level_wins_between_user_and_user_group_rows(lambda_api: Api) -> None:
    api = lambda_api
    uid, key = api.new_user("mixed")
    api.call("create_user_group", group_name="crew")
    api.call("add_user_to_user_group", usergroupid="crew", userid=uid)
    cases = {  # repo: (user row, user group row, expected level)
        "a": ("repository.none", "repository.write", "repository.write"),
        "b": ("repository.write", "repository.read", "repository.write"),
        "c": ("repository.read", "repository.admin", "repository.admin"),
        "d": ("repository.admin", "repository.none", "repository.admin"),
    }
    for repo, (mine, crews, _level) in cases.items():
        api.call("create_repo", repo_name=repo, private=True)
        api.call("grant_user_permission", repoid=repo, userid=uid, perm=mine)
        api.call("grant_user_group_permission", repoid=repo, usergroupid="crew", perm=crews)
    got = levels(api, key)
    assert {repo: got[repo] for repo in cases} == {r: c[2] for r, c in cases.items()}
    mixed = api.as_user(key)
    assert (
        mixed.call("update_repo", repoid="c", description="x")["repository"]["description"] == "x"
    )
    assert mixed.error("update_repo", repoid="b", description="x") == (
        "repository `b` does not exist"
    )


def test_inactive_user_groups_give_nothing(lambda_api: Api) -> None:
    api = lambda_api
    uid, key = api.new_user("dozer")
    api.call("create_user_group", group_name="asleep", active=False)
    api.call("add_user_to_user_group", usergroupid="asleep", userid=uid)
    api.call("create_repo", repo_name="vault", private=True)
    api.call("create_repo", repo_name="lobby")
    for repo in ("vault", "lobby"):
        api.call(
            "grant_user_group_permission",
            repoid=repo,
            usergroupid="asleep",
            perm="repository.admin",
        )
    dozer = api.as_user(key)
    assert levels(api, key)["lobby"] == "repository.read"
    assert [r["repo_name"] for r in dozer.call("get_repos")] == ["lobby"]
    assert dozer.error("get_repo", repoid="vault") == "repository `vault` does not exist"
    assert dozer.error("update_repo", repoid="lobby", description="x") == (
        "repository `lobby` does not exist"
    )
    api.call("update_user_group", usergroupid="asleep", active=True)  # the control
    assert levels(api, key)["vault"] == "repository.admin"
    assert dozer.call("get_repo", repoid="vault")["repo_name"] == "vault"


def test_group_permissions_reach_repositories_only_through_apply_to_children(
    lambda_api: Api,
) -> None:
    api = lambda_api
    uid, key = api.new_user("lead")
    api.call("create_repo_group", group_name="team")
    api.call("create_repo", repo_name="team/inner", private=True)
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="team", userid=uid, perm="group.write"
    )
    lead = api.as_user(key)
    assert lead.error("get_repo", repoid="team/inner") == "repository `team/inner` does not exist"
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="team",
        userid=uid,
        perm="group.write",
        apply_to_children="repos",
    )
    assert levels(api, key)["team/inner"] == "repository.write"
    api.call("create_repo", repo_name="team/later", private=True)  # made after the grant
    assert lead.error("get_repo", repoid="team/later") == "repository `team/later` does not exist"


# --- no leaks: a private repository's name never reaches someone who cannot read it ---------

SECRET = "grp/hush-hush"

#: Calls that name the private repository only by its id (``SECRET_ID``), so its
#: name can only appear in an answer if the answer leaks it.
LEAK_CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "get_repos": ("get_repos", {}),
    "get_repo": ("get_repo", {"repoid": "SECRET_ID"}),
    "get_repo(revision names)": (
        "get_repo",
        {"repoid": "SECRET_ID", "with_revision_names": True},
    ),
    "get_repo_nodes": (
        "get_repo_nodes",
        {"repoid": "SECRET_ID", "revision": "tip", "root_path": "/"},
    ),
    "get_changesets": ("get_changesets", {"repoid": "SECRET_ID"}),
    "get_changeset": ("get_changeset", {"repoid": "SECRET_ID", "raw_id": "SECRET_COMMIT"}),
    "update_repo": ("update_repo", {"repoid": "SECRET_ID", "description": "x"}),
    "update_repo(rename)": ("update_repo", {"repoid": "SECRET_ID", "name": "renamed"}),
    "delete_repo": ("delete_repo", {"repoid": "SECRET_ID"}),
    "fork_repo": ("fork_repo", {"repoid": "SECRET_ID", "fork_name": "copy"}),
    "grant_user_permission": (
        "grant_user_permission",
        {"repoid": "SECRET_ID", "userid": "snoop", "perm": "repository.read"},
    ),
    "revoke_user_permission": (
        "revoke_user_permission",
        {"repoid": "SECRET_ID", "userid": "snoop"},
    ),
    "grant_user_group_permission": (
        "grant_user_group_permission",
        {"repoid": "SECRET_ID", "usergroupid": "snoops", "perm": "repository.read"},
    ),
    "revoke_user_group_permission": (
        "revoke_user_group_permission",
        {"repoid": "SECRET_ID", "usergroupid": "snoops"},
    ),
    "update_repo(other into the name)": ("update_repo", {"repoid": "grp/open", "name": "x"}),
    "get_repo_group": ("get_repo_group", {"repogroupid": "grp"}),
    "get_repo_groups": ("get_repo_groups", {}),
    "grant_user_permission_to_repo_group(all)": (
        "grant_user_permission_to_repo_group",
        {"repogroupid": "grp", "userid": "snoop", "perm": "group.read", "apply_to_children": "all"},
    ),
    "get_user": ("get_user", {}),
    "get_user(other)": ("get_user", {"userid": "owner"}),
    "get_user_groups": ("get_user_groups", {}),
    "get_user_group": ("get_user_group", {"usergroupid": "snoops"}),
    "get_server_info": ("get_server_info", {}),
    "get_gists": ("get_gists", {}),
}

#: Who cannot read the private repository (each also reads the public ``grp/open``).
SNOOPS = ("snoop", "explicit_none", "inactive_ug", "group_only")


def leak_world(api: Api) -> dict[str, Any]:
    keys = {}
    for name in (*SNOOPS, "owner"):
        _uid, keys[name] = api.new_user(name)
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo", repo_name=SECRET, private=True, owner="owner")
    api.call("create_repo", repo_name="grp/open", owner="owner")
    commits = push_commits(repos_root() / SECRET, [{"hush-hush.txt": "quiet\n"}])
    api.call("create_user_group", group_name="snoops")
    api.call("add_user_to_user_group", usergroupid="snoops", userid="snoop")
    api.call("grant_user_permission", repoid=SECRET, userid="explicit_none", perm="repository.none")
    api.call("create_user_group", group_name="asleep", active=False)
    api.call("add_user_to_user_group", usergroupid="asleep", userid="inactive_ug")
    api.call(
        "grant_user_group_permission", repoid=SECRET, usergroupid="asleep", perm="repository.admin"
    )
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="grp",
        userid="group_only",
        perm="group.admin",
    )
    secret_id = api.call("get_repo", repoid=SECRET)["repo_id"]
    return {"keys": keys, "SECRET_ID": secret_id, "SECRET_COMMIT": commits[-1]}


LEAK_CASES = [pytest.param(who, call, id=f"{who}-{call}") for who in SNOOPS for call in LEAK_CALLS]


@pytest.mark.parametrize(("who", "call"), LEAK_CASES)
def test_private_names_never_leak(admin: Api, migrated: str, who: str, call: str) -> None:
    found = restored(admin, migrated, "leaks", leak_world)
    method, args = LEAK_CALLS[call]
    args = {k: found.get(v, v) if isinstance(v, str) else v for k, v in args.items()}
    snoop = admin.as_user(found["keys"][who])
    snoop.envelope(method, args)
    assert snoop.last is not None
    body = snoop.last.body.decode()
    assert "hush-hush" not in body, body
    assert admin.call("get_repo", repoid=SECRET)["description"] == SECRET, "it changed"


def test_the_leak_check_can_see_a_leak(admin: Api, migrated: str) -> None:
    """The owner reading the repository does get its name: the check above is not blind."""
    found = restored(admin, migrated, "leaks", leak_world)
    owner = admin.as_user(found["keys"]["owner"])
    owner.envelope("get_repo", {"repoid": found["SECRET_ID"]})
    assert owner.last is not None and "hush-hush" in owner.last.body.decode()


# --- get_repos builds the very objects get_repo does ------------------------------------------


def odd_repositories(api: Api) -> dict[str, str]:
    """Repositories exercising every field ``get_repos`` builds without ORM objects."""
    from datetime import datetime

    from repohost.db.engine import transaction
    from repohost.db.models import Repository, UserEmail, UserFollowing

    keys = {"admin": ADMIN_KEY}
    for name in ("owner", "reader", "stranger"):
        _uid, keys[name] = api.new_user(name)
    api.call("create_repo_group", group_name="grp")
    api.call("create_repo", repo_name="plain", owner="owner")
    push_commits(repos_root() / "plain", [{"a": "1"}])
    api.call("fork_repo", repoid="plain", fork_name="grp/fork")  # a real last_changeset
    api.call("create_repo", repo_name="secret", owner="owner", private=True)
    api.call(
        "update_repo",
        repoid="secret",
        description='tab\tnew line\n\x1f unicode é 𝄞 "quoted" \\ back',
        clone_uri="https://bot:hunter2@example.com/secret.git",
        landing_rev="branch:feature:x",
    )
    api.call("grant_user_permission", repoid="secret", userid="reader", perm="repository.read")
    api.call("create_repo", repo_name="Zeta_9", private=True)
    api.call("create_user_group", group_name="crew")
    api.call("add_user_to_user_group", usergroupid="crew", userid="reader")
    api.call(
        "grant_user_group_permission",
        repoid="Zeta_9",
        usergroupid="crew",
        perm="repository.admin",
    )
    api.call("create_repo", repo_name="mirror", clone_uri=None)
    api.call("update_repo", repoid="mirror", clone_uri="https://nopassword@example.com/m.git")
    for name in ("locked", "zoned", "decoy", "fraction", "tiny", "empty-cache", "null-cache"):
        api.call("create_repo", repo_name=name)
    owner_id = api.call("get_user", userid="owner")["user_id"]
    changes: dict[str, dict[str, object]] = {
        "locked": {"locked": f"{owner_id}:1700000000.5", "enable_locking": True},
        "zoned": {
            "created_on": datetime(2024, 1, 2, 3, 4, 5, 123456),
            "changeset_cache": {**EMPTY_CACHE, "date": "2024-04-30T10:11:12+02:00"},
        },
        # A message that spells a plain date key, before a date that is not plain.
        "decoy": {
            "changeset_cache": {
                **EMPTY_CACHE,
                "message": 'x", "date": "2020-01-01T00:00:00", "y": "',
                "date": "2024-04-30T10:11:12+02:00",
            }
        },
        "fraction": {
            "created_on": datetime(2024, 1, 2, 3, 4, 5, 120000),
            "changeset_cache": {**EMPTY_CACHE, "date": "2024-04-30T10:11:12.250000"},
        },
        "tiny": {"created_on": datetime(2024, 1, 2, 3, 4, 5, 500)},
        "empty-cache": {"changeset_cache": {}},
        "null-cache": {"changeset_cache": None},
    }
    reader_id = api.call("get_user", userid="reader")["user_id"]
    secret_id = api.call("get_repo", repoid="secret")["repo_id"]
    with transaction() as session:
        for name, values in changes.items():
            session.query(Repository).filter_by(repo_name=name).update(values)
        session.add_all(UserEmail(user_id=owner_id, email=f"o{i}@example.com") for i in (2, 1))
        session.add(UserFollowing(user_id=reader_id, follows_repository_id=secret_id))
    return keys


EMPTY_CACHE = {
    "short_id": "abcdef012345",
    "raw_id": "abcdef0123456789abcdef0123456789abcdef01",
    "revision": 3,
    "message": "message ü\n",
    "author": "Ann <ann@example.com>",
}


def orm_answers(username: str) -> dict[int, dict[str, Any]]:
    """``get_repo``'s answer for every repository ``username`` may read, the plain ORM way.

    This is how the answers were built before ``get_repo`` and ``get_repos``
    stopped loading ORM objects (``_objects.repo_object``, ``_objects.members``,
    ``AuthUser.repo_permissions``): the reference they must still match.
    """
    from sqlalchemy import select

    from repohost.auth.permissions import AuthUser, at_least
    from repohost.db import grants, queries
    from repohost.db.engine import transaction
    from repohost.db.models import Repository, User, UserFollowing
    from repohost.methods._objects import members, repo_object, user_object
    from repohost.rpc.encoding import dumps

    answers = {}
    with transaction() as session:
        caller = AuthUser(session, queries.get_user(session, username))
        for repo_id, level in caller.repo_permissions().items():
            if not at_least(level, "read"):
                continue
            repo = session.get(Repository, repo_id)
            followers = session.scalars(
                select(User)
                .join(UserFollowing, UserFollowing.user_id == User.user_id)
                .where(UserFollowing.follows_repository_id == repo_id)
                .order_by(UserFollowing.user_following_id)
            )
            answer = {
                **repo_object(repo, show_credentials=level == "repository.admin"),
                "members": members(
                    grants.rows_on(session, grants.USER_ON_REPO, repo_id),
                    grants.rows_on(session, grants.USER_GROUP_ON_REPO, repo_id),
                ),
                "followers": [user_object(u) for u in followers],
            }
            answers[repo_id] = json.loads(dumps(answer))
    return answers


@pytest.mark.parametrize("who", ["admin", "owner", "reader", "stranger"])
def test_get_repo_and_get_repos_answer_what_the_orm_objects_say(lambda_api: Api, who: str) -> None:
    keys = odd_repositories(lambda_api)
    caller = lambda_api.as_user(keys[who])
    expected = orm_answers(who)
    listed = caller.call("get_repos")
    assert [r["repo_id"] for r in listed] == [
        r["repo_id"] for r in sorted(expected.values(), key=lambda r: r["repo_name"])
    ]
    for obj in listed:
        reference = expected[obj["repo_id"]]
        assert caller.call("get_repo", repoid=obj["repo_id"]) == reference
        assert caller.call("get_repo", repoid=obj["repo_name"]) == reference
        del reference["members"], reference["followers"]
        assert obj == reference
    counts = {"admin": 12, "owner": 11, "reader": 12, "stranger": 10}  # see odd_repositories
    assert len(listed) == counts[who]


@pytest.mark.parametrize("who", ["admin", "reader", "stranger"])
def test_both_ways_of_building_get_repos_agree(lambda_api: Api, db: str, who: str) -> None:
    """PostgreSQL's JSON way and the plain-rows way (SQLite's) give the same objects.

    ``_encoded_repos`` places most objects as the database wrote them (no spaces,
    no ``\\u`` escapes): the same JSON, not the same bytes.
    """
    if not db.startswith("postgresql"):
        pytest.skip("the JSON way is PostgreSQL's")
    from repohost.auth.permissions import AuthUser
    from repohost.config import get_settings
    from repohost.db import queries
    from repohost.db.engine import Database, transaction
    from repohost.methods import repos as methods
    from repohost.rpc.context import CallContext
    from repohost.rpc.encoding import dumps

    odd_repositories(lambda_api)
    with transaction() as session:
        user = queries.get_user(session, who)
        db = Database(session.connection(), session)
        ctx = CallContext(db, AuthUser(session, user), "127.0.0.1", get_settings(), "test")
        encoded = methods._encoded_repos(ctx)  # what get_repos answers on PostgreSQL
        by_rows = methods._repos_from_rows(ctx)
    by_json = json.loads(encoded)
    assert by_json and dumps(by_json) == dumps(by_rows)
    assert json.loads(encoded) == json.loads(dumps(by_rows))


@pytest.mark.parametrize("who", ["admin", "reader"])
def test_get_repo_and_get_repos_cost_a_fixed_number_of_queries(lambda_api: Api, who: str) -> None:
    """More members, followers, e-mail addresses or repositories: no more queries."""
    from repohost.db.engine import transaction
    from repohost.db.models import Repository, UserEmail, UserFollowing
    from tests.support.queries import count_queries

    api = lambda_api
    reader_id, reader_key = api.new_user("reader")
    caller = api if who == "admin" else api.as_user(reader_key)
    api.call("create_repo", repo_name="busy")
    api.call("grant_user_permission", repoid="busy", userid=reader_id, perm="repository.read")

    def cost() -> tuple[int, int]:
        with count_queries() as one:
            caller.call("get_repo", repoid="busy")
        with count_queries() as many:
            caller.call("get_repos")
        return one.count, many.count

    small = cost()
    busy_id = api.call("get_repo", repoid="busy")["repo_id"]
    for n in range(4):
        uid, _key = api.new_user(f"fan{n}")
        api.call("create_user_group", group_name=f"team{n}")
        api.call("add_user_to_user_group", usergroupid=f"team{n}", userid=reader_id)
        api.call("grant_user_permission", repoid="busy", userid=uid, perm="repository.write")
        api.call(
            "grant_user_group_permission",
            repoid="busy",
            usergroupid=f"team{n}",
            perm="repository.read",
        )
        api.call("create_repo", repo_name=f"more{n}", private=bool(n % 2))
        with transaction() as session:
            session.add(UserFollowing(user_id=uid, follows_repository_id=busy_id))
            session.add_all(
                UserEmail(user_id=uid, email=f"fan{n}.{i}@example.com") for i in range(2)
            )
    assert cost() == small
    with transaction() as session:  # a lock costs one query (its holder), however many
        session.query(Repository).filter_by(repo_name="busy").update(
            {"locked": f"{reader_id}:1700000000"}
        )
    one_lock = cost()
    with transaction() as session:
        session.query(Repository).update({"locked": f"{reader_id}:1700000000"})
    assert cost() == one_lock == (small[0] + 1, small[1] + 1)
    answer = caller.call("get_repo", repoid="busy")
    assert len(answer["followers"]) == 5 and len(answer["members"]) == 10
    assert answer["followers"][-1]["emails"] == [
        "fan3@example.com",
        "fan3.0@example.com",
        "fan3.1@example.com",
    ]
    assert answer["locked_by"]["username"] == "reader"
