"""Bad input of every kind gets a well-formed envelope, and nothing is half-written.

The cases come from the registry, so a new method is covered the day it is added.

The fuzzed calls run against a small world (a repository ``fz`` with commits, a
fork of it, a group ``fzg`` holding a private repository, a user group, gists,
a regular user with rights on all of them) and draw their values half from
arbitrary JSON and half from that world's names, ids, revisions, permission
names and clone URIs, so that they get past the lookups into the methods' own
code. Each call is made as the admin or as the regular user. After every call:
a well-formed envelope, never ``Internal server error``, ``.tmp`` empty; after
an error, every table's row count and the repository root (every path, every
size, the content of every small file such as refs) exactly as before.

No call reaches the network: ``socket.getaddrinfo`` refuses every name but
loopback ones, private and local remotes are not allowed, and jobs queued by a
successful call run (and fail) before the next call is made.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api
from tests.support.gitcli import push_commits

#: Cases per method: a quick run in ``make test``, ``make fuzz`` for the deep one.
FUZZ_EXAMPLES = int(os.environ.get("REPOHOST_FUZZ_EXAMPLES", "15"))

#: Methods that change nothing: after them the world needs no check.
READ_ONLY = frozenset({"test", "rpc.discover", "show_ip"})


def methods() -> list[Any]:
    from repohost.rpc.registry import all_methods

    return list(all_methods().values())


def row_counts() -> dict[str, int]:
    """Every table's row count, in one query."""
    from repohost.db.engine import transaction
    from repohost.db.models import Base

    tables = Base.metadata.sorted_tables
    query = select(
        *(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables)
    )
    with transaction() as session:
        row = session.execute(query).one()
    return dict(zip((t.name for t in tables), row, strict=True))


WORKING_FOLDERS = frozenset({".tmp", ".trash", ".intents", ".rc_gist_store"})


def root_listing(root: Path | None = None) -> dict[str, str]:
    """Every path under the repository root but ``.locks``: ``dir`` or ``<size>:<hash>``.

    The working folders themselves are left out (what is in them is not).
    Files outside ``objects/`` (refs, HEAD, config, description) are hashed, so a
    moved ref shows; objects are named by their content, their size is enough.
    """
    top = os.fspath(root or repos_root())
    found: dict[str, str] = {}
    for folder, dirs, files in os.walk(top):
        relative = os.path.relpath(folder, top)
        prefix = "" if relative == "." else relative + "/"
        if not prefix:
            dirs[:] = [d for d in dirs if d != ".locks"]
        for name in dirs:
            if prefix or name not in WORKING_FOLDERS:  # made when first needed, kept empty
                found[prefix + name + "/"] = "dir"
        hashed = "/objects/" not in "/" + prefix
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            digest = ""
            if hashed and info.st_size <= 65536 and not os.path.islink(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha1(handle.read(), usedforsecurity=False).hexdigest()
            found[prefix + name] = f"{info.st_size}:{digest}"
    return found


def staging_leftovers() -> list[str]:
    """What a finished call left in the staging folder or as undo notes (nothing, always)."""
    found = []
    for area in (".tmp", ".intents"):
        folder = repos_root() / area
        if folder.exists():
            found += [f"{area}/{p.name}" for p in folder.iterdir()]
    return sorted(found)


# --- wrong types ------------------------------------------------------------------------------

WRONG_VALUES = ([["list"]], {"an": "object"}, 1.5, True)


def _accepted(annotation: Any) -> set[type] | None:
    """The JSON types ``annotation`` accepts in any form (None: anything)."""
    if annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        kinds: set[type] = set()
        for option in typing.get_args(annotation):
            inner = _accepted(option)
            if inner is None:
                return None
            kinds |= inner
        return kinds
    if origin is typing.Literal:
        return {type(v) for v in typing.get_args(annotation)}
    base = origin or annotation
    if base is int:  # a whole float is an integer too
        return {int, float}
    if base is bool:  # 0 and 1 are booleans too
        return {bool, int}
    return {base}


def _wrong_for(annotation: Any) -> Any:
    """A JSON value no parameter of this type accepts (None when it accepts everything)."""
    kinds = _accepted(annotation)
    if kinds is None:
        return None
    for value in WRONG_VALUES:
        kind = type(value)
        if kind not in kinds and not (kind is bool and {int, str} & kinds):
            return value
    return None


WRONG_TYPE_CASES = [
    (m.name, p.name) for m in methods() for p in m.params if _wrong_for(p.annotation) is not None
]


def test_every_method_has_wrong_type_cases() -> None:
    """Every argument of every method but ``test``'s ``args`` (Any) gets a wrong-type case."""
    covered = {(m, p) for m, p in WRONG_TYPE_CASES}
    expected = {(m.name, p.name) for m in methods() for p in m.params if m.name != "test"}
    assert expected - covered == set()


@pytest.mark.parametrize(("method", "param"), WRONG_TYPE_CASES)
def test_wrong_type_for_every_argument(lambda_api: Api, method: str, param: str) -> None:
    from repohost.rpc.registry import find_method

    spec = find_method(method)
    assert spec is not None
    args = {
        p.name: next(v for v in ("1", {"f": {"content": "x"}}) if _fits(v, p.annotation))
        for p in spec.params
        if p.required
    }
    args[param] = _wrong_for(spec.param(param).annotation)
    before = row_counts(), root_listing()
    error = lambda_api.error(method, **args)
    assert error.startswith(f"Incorrect type of `{param}` arg in JSON DATA: expected ")
    assert (row_counts(), root_listing()) == before


def test_nul_in_a_string_argument_is_refused_before_the_database(lambda_api: Api) -> None:
    """PostgreSQL cannot store NUL, so no name or id holds one (a fuzz finding: such a
    lookup was ``Internal server error``); ``test`` echoes anything (its type is Any)."""
    before = row_counts(), root_listing()
    for method, args, name in (
        ("get_repo", {"repoid": "a\x00b"}, "repoid"),
        ("delete_gist", {"gistid": "\x00"}, "gistid"),
        ("delete_repo_group", {"repogroupid": "\x00"}, "repogroupid"),
        ("create_user", {"username": "x\x00", "email": "x@example.com"}, "username"),
        ("create_repo", {"repo_name": "ok", "description": "a\x00"}, "description"),
        ("pull", {"repoid": "1", "clone_uri": "https://example.com/\x00"}, "clone_uri"),
    ):
        assert lambda_api.error(method, **args) == (
            f"Incorrect value of `{name}` arg in JSON DATA: NUL characters are not allowed"
        ), method
    assert lambda_api.call("test", args="a\x00b") == "a\x00b"
    assert (row_counts(), root_listing()) == before


def test_values_longer_than_their_column_are_refused_cleanly(lambda_api: Api) -> None:
    """A fuzz finding: ``update_user(extern_name=<300 characters>)`` overflowed a 255-character
    column (``Internal server error`` on PostgreSQL). Each such value is the method's own error."""
    api = lambda_api
    api.call("create_repo", repo_name="long")
    uid, _key = api.new_user("longer")
    before = row_counts(), root_listing()
    long = "x" * 256
    for name in ("firstname", "lastname", "extern_type", "extern_name"):
        assert api.error("create_user", username="u1", email="u1@example.com", **{name: long}) == (
            "failed to create user `u1`"
        ), name
        assert api.error("update_user", userid=uid, **{name: long}) == (
            f"failed to update user `{uid}`"
        ), name
    landing = "rev:" + "x" * 252
    assert api.error("create_repo", repo_name="r2", landing_rev=landing) == (
        "failed to create repository `r2`"
    )
    assert api.error("update_repo", repoid="long", landing_rev=landing) == (
        "failed to update repo `long`"
    )
    assert (row_counts(), root_listing()) == before
    assert (
        api.call("update_user", userid=uid, extern_name="x" * 255)["user"]["username"] == "longer"
    )


def test_enormous_lifetimes_mean_a_very_long_time(lambda_api: Api) -> None:
    """A fuzz finding: ``lifetime`` of 10**400 minutes overflowed the float expiry time
    (``Internal server error``); anything beyond 10**9 minutes (about 1,900 years) counts
    as 10**9 minutes."""
    import time

    limit = time.time() + 10**9 * 60
    key = lambda_api.call("create_api_key", lifetime=10**400)
    assert limit - 60 < key["expires"] <= limit + 60
    gist = lambda_api.call("create_gist", files={"a": {"content": "x"}}, lifetime=10**400)
    assert limit - 60 < gist["gist"]["expires"] <= limit + 60
    assert lambda_api.call("get_gist", gistid=gist["gist"]["gist_id"])["gist_id"]


# --- the fuzzed world -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

#: Values that mean something to some method, whatever the world holds.
COMMON_VALUES: list[Any] = [
    *(f"repository.{p}" for p in ("none", "read", "write", "admin")),
    *(f"group.{p}" for p in ("none", "read", "write", "admin")),
    *(f"usergroup.{p}" for p in ("none", "read", "write", "admin")),
    "hg.admin",
    "hg.create.repository",
    *("none", "repos", "groups", "all"),  # apply_to_children
    *("all", "dirs", "files"),  # ret_type
    *("detach", "delete"),  # forks
    *("public", "private"),  # gist types
    *("rev:tip", "branch:master", "tag:v1", "book:x", "rev:"),  # landing revisions
    *("", "/", "docs", "docs/", "/docs/deep", "README", "..", "../..", "docs/../..", "a\\b"),
    *("tip", "master", "v1", "0", "-1", "1", "HEAD", "refs/heads/master", "..."),
    *("2020-01-01T00:00:00", "2030-12-31T23:59:59", "2020-13-45T99:99:99"),
    *("fz2", "fzg/fz3", "fzg/sub", "new-repo", "raw", "x.git", "../escape", "a/../b", "/abs"),
    *("fz/../fzg", "fzg//x", ".hidden", "rm__20200101_000000_000000_x", "é", "ＦＺ", "x" * 300),
    "https://example.com/r.git",
    "https://user:hunter2hunter2@example.com/r.git",
    "http://127.0.0.1:9/r.git",
    "http://169.254.169.254/latest",
    "git://localhost/r",
    "ssh://git@example.com/r",
    "ssh://-oProxyCommand=touch/r",
    "file:///etc",
    "/etc",
    "../fz",
    "default",
    "admin",
    "nobody@example.com",
    "0123456789abcdef0123456789",  # an acceptable webhook secret
    -1,
    0,
    1,
    2,
    3,
    10,
    2**31,
    2**63,
    10**400,
    -(10**400),
    1e300,
    "rev:" + "x" * 300,
    "y" * 256,
    True,
    False,
    None,
    {"a.txt": {"content": "x"}},
    {"a.txt": {"content": "x"}, "b.txt": {"content": "y", "lexer": "text"}},
    {"../x": {"content": "x"}},
    {"": {"content": "x"}},
    {"a.txt": {"content": 1}},
    {"a.txt": "x"},
]


@dataclass
class World:
    """What the fuzzed calls can name; rebuilt (from nothing) when a call destroyed part of it."""

    api: Api
    database_url: str
    user_key: str = ""
    ids: dict[str, int] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    pool: list[Any] = field(default_factory=list)
    dirty: bool = False
    rebuilt: int = 0
    #: Row counts and root listing as they are now, when known (after a refused call).
    snapshot: tuple[dict[str, int], dict[str, str]] | None = None

    def seed(self) -> None:
        api = self.api
        user_id, self.user_key = api.new_user("fzuser", password="fuzz-password")
        other_id, _other = api.new_user("fzother")
        group = api.call("create_repo_group", group_name="fzg", description="fuzz group")
        api.call("create_repo", repo_name="fz", description="fuzzed")
        self.commits = push_commits(
            repos_root() / "fz",
            [{"README": "hello\n", "docs/a.txt": "a\n"}, {"docs/deep/b.txt": "b\n"}],
        )
        api.call("invalidate_cache", repoid="fz")
        api.call("fork_repo", repoid="fz", fork_name="fz-fork")
        api.call("create_repo", repo_name="fzg/inner", private=True, owner="fzuser")
        api.call("grant_user_permission", repoid="fz", userid=user_id, perm="repository.write")
        api.call(
            "grant_user_permission_to_repo_group",
            repogroupid="fzg",
            userid=user_id,
            perm="group.admin",
        )
        api.call("set_webhook_secret", repoid="fz")
        ug = api.call("create_user_group", group_name="fzug", owner="fzuser")
        ug_id = ug["user_group"]["users_group_id"]
        api.call("add_user_to_user_group", usergroupid=ug_id, userid=user_id)
        api.call(
            "grant_user_group_permission", repoid="fz", usergroupid=ug_id, perm="repository.read"
        )
        user = api.as_user(self.user_key)
        public = user.call("create_gist", files={"f.txt": {"content": "gist"}})["gist"]
        private = user.call(
            "create_gist", files={"p.txt": {"content": "secret gist"}}, gist_type="private"
        )["gist"]
        user.call("lock", repoid="fz", locked=True, userid=user_id)
        key_id = user.call("create_api_key", description="spare")["api_key_id"]
        repos = {r["repo_name"]: r["repo_id"] for r in api.call("get_repos")}
        self.ids = {
            "user": user_id,
            "other": other_id,
            "group": group["repo_group"]["group_id"],
            "user_group": ug_id,
            "repo": repos["fz"],
            "fork": repos["fz-fork"],
            "inner": repos["fzg/inner"],
            "gist": public["gist_id"],
            "private_gist": private["gist_id"],
            "key": key_id,
        }
        self.pool = [
            *COMMON_VALUES,
            *self.ids.values(),
            *(str(v) for v in self.ids.values()),
            "fz",
            "fz-fork",
            "fzg",
            "fzg/inner",
            "fzuser",
            "fzother",
            "fzug",
            private["access_id"],
            *self.commits,
            self.commits[0][:12],
            self.commits[0].upper(),
            f"{self.commits[0]}...{self.commits[1]}",
        ]

    def intact(self) -> bool:
        """Whether everything the calls are meant to reach is still as seeded."""
        from repohost.auth.keys import holder_of_key
        from repohost.db.engine import transaction
        from repohost.db.models import Gist, RepoGroup, Repository, UserGroup

        expected = (
            (Repository, "repo", "repo_name", "fz"),
            (Repository, "fork", "repo_name", "fz-fork"),
            (Repository, "inner", "repo_name", "fzg/inner"),
            (RepoGroup, "group", "group_name", "fzg"),
            (UserGroup, "user_group", "users_group_name", "fzug"),
            (Gist, "gist", "gist_id", self.ids["gist"]),
            (Gist, "private_gist", "gist_id", self.ids["private_gist"]),
        )
        with transaction() as session:
            admin = holder_of_key(session, ADMIN_KEY)
            user = holder_of_key(session, self.user_key)
            if admin is None or not admin.user.admin or user is None or user.user.admin:
                return False
            if user.user.username != "fzuser":
                return False
            for model, key, column, value in expected:
                row = session.get(model, self.ids[key])
                if row is None or getattr(row, column) != value:
                    return False
        root = repos_root()
        return all((root / name / "objects").is_dir() for name in ("fz", "fz-fork", "fzg/inner"))

    def rebuild(self) -> None:
        from repohost.db import bootstrap
        from tests.conftest import _empty, _wipe

        settle_jobs()
        _wipe(self.database_url)
        _empty(repos_root())
        bootstrap.ensure_defaults()
        bootstrap.ensure_first_admin(ADMIN_KEY)
        self.seed()
        self.rebuilt += 1
        self.snapshot = None

    def ready(self) -> None:
        """Before a call: the world as seeded (checked only after a call that changed things)."""
        if self.dirty:
            settle_jobs()
            if not self.intact():
                self.rebuild()
            self.dirty = False


def settle_jobs() -> None:
    from repohost.jobs import queue

    assert queue.drain(60), "a job queued by a fuzzed call did not finish"


_real_getaddrinfo = socket.getaddrinfo
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def resolves_offline(host: Any) -> bool:
    """Whether resolving ``host`` needs no network and leads nowhere but this machine or a
    private network: ``localhost``, or an address literal (in any form the C library reads,
    ``0x7f000001`` included) that is not a public address."""
    import ipaddress

    name = (host.decode() if isinstance(host, bytes) else str(host)).strip("[]")
    if name.lower() in LOOPBACK_NAMES:
        return True
    try:
        address: Any = ipaddress.ip_address(socket.inet_aton(name))
    except (OSError, ValueError):
        try:
            address = ipaddress.ip_address(name.partition("%")[0])
        except ValueError:
            return False
    return not address.is_global


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not resolves_offline(host):
        raise socket.gaierror(socket.EAI_NONAME, "the fuzz tests resolve no public names")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No remote but loopback resolves, and loopback, private and local remotes are refused."""
    from repohost.config import get_settings

    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only)
    monkeypatch.setenv("REPOHOST_ALLOW_PRIVATE_REMOTES", "")
    monkeypatch.setenv("REPOHOST_ALLOW_LOCAL_REMOTES", "false")
    monkeypatch.setenv("REPOHOST_PULL_BUDGET_SECONDS", "10")
    get_settings.cache_clear()
    yield
    settle_jobs()
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def world(lambda_api: Api, db: str, offline: None) -> World:
    built = World(lambda_api, db)
    built.seed()
    return built


def test_the_fuzz_world_is_reachable(world: World) -> None:
    """The world the fuzzed calls aim at: both callers work, everything named is there."""
    assert world.intact()
    assert world.api.as_user(world.user_key).call("get_repo", repoid="fz")["repo_name"] == "fz"
    world.rebuild()
    assert world.intact()


def test_the_fuzz_world_notices_what_a_call_destroyed(world: World) -> None:
    world.api.call("delete_repo", repoid="fz", forks="detach")
    assert not world.intact()
    world.dirty = True
    world.ready()
    assert world.intact() and world.rebuilt == 1


def test_no_name_but_loopback_resolves(offline: None) -> None:
    for public in ("example.com", "8.8.8.8", "2001:4860:4860::8888", "0x08080808"):
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo(public, 443)
    for local in ("127.0.0.1", "localhost", "0x7f000001", "2130706433", "10.0.0.1", "::1"):
        assert socket.getaddrinfo(local, 80), local


def _fits(value: Any, annotation: Any) -> bool:
    from repohost.rpc.registry import _coerce

    try:
        _coerce(value, annotation)
    except ValueError:
        return False
    return True


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight (``one_of`` merges repeats)."""
    options = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(options).flatmap(lambda strategy: strategy)


def _typed(annotation: Any) -> st.SearchStrategy[Any]:
    """Arbitrary values of the parameter's own type."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return json_values
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return st.one_of([_typed(a) for a in options])
    base = origin or annotation
    if base is str:
        return st.text(max_size=30)
    if base is bool:
        return st.booleans()
    if base is int:
        return st.integers()
    if base is dict:
        return st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    if base is list:
        return st.lists(json_values, max_size=3)
    return json_values


#: Arguments whose values the log-hygiene check remembers as secrets (``loghygiene``).
SECRET_PARAMS = frozenset({"password", "secret"})


def _as_secret(value: Any) -> Any:
    """A generated secret that no other generated value can equal.

    Otherwise a string drawn as a password and, in another call, as a repository
    name would make the log line naming that repository look like a leaked secret.
    """
    return f"fz-secret-{value}" if isinstance(value, str) and value else value


def _values(param: Any, pool: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly the world's values that fit the type, then any of that type, then any JSON."""
    fitting = [v for v in pool if _fits(v, param.annotation)]
    typed = _typed(param.annotation)
    known = st.sampled_from(fitting) if fitting else typed
    values = _weighted((6, known), (2, typed), (1, json_values))
    return values.map(_as_secret) if param.name in SECRET_PARAMS else values


def _arguments(spec: Any, pool: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Usually every required argument and some optional ones; sometimes anything at all."""
    required = {p.name: _values(p, pool) for p in spec.params if p.required}
    optional = {p.name: _values(p, pool) for p in spec.params if not p.required}
    anything = st.one_of(json_values, st.sampled_from(pool))
    names = [p.name for p in spec.params if p.name not in SECRET_PARAMS] + ["unexpected"]
    return _weighted(
        (8, st.fixed_dictionaries(required, optional=optional)),
        (1, st.dictionaries(st.sampled_from(names), anything, max_size=len(names))),
    )


def check_call(world: World, method: str, args: Any, key: str) -> dict[str, Any]:
    """Make one call; assert the invariants; return the envelope."""
    before = world.snapshot or (row_counts(), root_listing())
    world.snapshot = None
    envelope = world.api.envelope(method, args, key=key)
    assert envelope["error"] != "Internal server error", (method, args)
    json.dumps(envelope)
    if envelope["error"] is not None:
        assert isinstance(envelope["error"], str), envelope
        assert envelope["result"] is None, envelope
        after = row_counts(), root_listing()
        assert after[0] == before[0], (method, args, envelope["error"])
        assert after[1] == before[1], (method, args, envelope["error"], _diff(before[1], after[1]))
        world.snapshot = after  # nothing changed: the next call's "before"
    else:
        world.dirty = world.dirty or (method not in READ_ONLY and not method.startswith("get_"))
        settle_jobs()
    assert staging_leftovers() == [], (method, args)
    return envelope


def _diff(before: dict[str, str], after: dict[str, str]) -> dict[str, Any]:
    return {
        "gone": sorted(before.keys() - after.keys()),
        "new": sorted(after.keys() - before.keys()),
        "changed": sorted(k for k in before.keys() & after.keys() if before[k] != after[k]),
    }


@pytest.mark.parametrize("method", [m.name for m in methods()])
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzzed_arguments_never_break_the_envelope(
    world: World, method: str, data: st.DataObject
) -> None:
    from repohost.rpc.registry import find_method

    spec = find_method(method)
    assert spec is not None
    world.ready()
    args = data.draw(_arguments(spec, world.pool), label="args")
    key = data.draw(st.sampled_from([ADMIN_KEY, world.user_key]), label="caller")
    check_call(world, method, args, key)


# --- the envelope itself ----------------------------------------------------------------------

envelope_keys = st.sampled_from(["id", "api_key", "method", "args", "extra"])


@settings(
    max_examples=FUZZ_EXAMPLES * 20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.dictionaries(envelope_keys, json_values, max_size=5),
        st.builds(
            dict,
            id=json_values,
            api_key=st.sampled_from([ADMIN_KEY, "", "0" * 40, ADMIN_KEY.upper()]),
            method=st.one_of(st.sampled_from([m.name for m in methods()] + ["_x"]), json_values),
            args=json_values,
        ),
        json_values,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_fuzzed_envelopes_always_get_an_envelope(
    lambda_api: Api, offline: None, body: Any, raw: bytes | None
) -> None:
    """Whatever the body (any JSON, any bytes), one well-formed answer, nothing written."""
    before = row_counts(), root_listing()
    payload = raw if raw is not None else json.dumps(body).encode()
    reply = lambda_api.transport.post(payload, {"Content-Type": "application/json"})
    assert reply.status == 200
    envelope = reply.envelope
    assert envelope["error"] != "Internal server error", body
    if envelope["error"] is not None:
        assert envelope["result"] is None
        assert (row_counts(), root_listing()) == before
    else:
        settle_jobs()
    assert staging_leftovers() == []
