"""Regressions from Kallithea's security history (issue 7; facts §9).

- CVE-2015-0260: API results carried key material (the ``api_key`` of users,
  followers included). Every method is called on a rich world, as admin, as a
  repository owner and as a plain user, and every answer is searched for keys,
  key hashes, password hashes, passwords, webhook secrets and clone URI
  passwords, and for the keys ``api_key``, ``api_keys``, ``password``,
  ``ip_addresses``. Only ``create_user`` and ``create_api_key`` show the new
  key, and ``set_webhook_secret`` the new secret, once, by design.
- CVE-2016-3114: acting on another user's objects by id. A plain user tries to
  change, delete or grant on others' repositories, groups, gists, user groups
  and API keys by numeric id: each answer is the error for a missing object
  (the same text as for an id nothing has), and nothing changes.
- The 0.3.5 fixes (June 2018): local clone URIs (create_repo, update_repo,
  pull), ``../`` in create_repo names (and groups made from the name), and the
  checks on permission management.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import ADMIN_KEY, repos_root
from tests.support import loghygiene
from tests.support.api import Api
from tests.support.gitcli import push_commits
from tests.test_bad_input import (
    methods,
    resolves_offline,
    root_listing,
    row_counts,
    staging_leftovers,
)

FORBIDDEN_KEYS = frozenset({"api_key", "api_keys", "password", "ip_addresses"})
#: Fields that show a new secret once, by design: ``(method, key at the top of the result)``.
SHOWN_ONCE = {("create_user", "api_key"), ("create_api_key", "api_key")}
SHOWN_ONCE_SECRET = {("set_webhook_secret", "webhook_secret")}
HEX = re.compile(r"[0-9a-fA-F]{40,}")
CLONE_PASSWORD = "clone-token-7b1d9e"

_real_getaddrinfo = socket.getaddrinfo


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only loopback names resolve; no private or local remote is allowed."""
    from repohost.config import get_settings

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not resolves_offline(host):
            raise socket.gaierror(socket.EAI_NONAME, "the regression tests resolve no names")
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    monkeypatch.setenv("REPOHOST_ALLOW_PRIVATE_REMOTES", "")
    monkeypatch.setenv("REPOHOST_ALLOW_LOCAL_REMOTES", "false")
    get_settings.cache_clear()
    yield
    from repohost.jobs import queue

    assert queue.drain(60)
    monkeypatch.undo()
    get_settings.cache_clear()


def _db() -> Any:
    from repohost.db.engine import transaction

    return transaction()


# --- CVE-2015-0260: no key material in any result ----------------------------------------------


@dataclass
class Rich:
    api: Api
    ids: dict[str, int] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    passwords: list[str] = field(default_factory=list)
    commit: str = ""

    def secrets(self) -> set[str]:
        """Every secret the world holds, and every hash of one the database keeps."""
        from repohost.db.models import Repository, User, UserApiKey

        found = {*self.keys.values(), *self.passwords, ADMIN_KEY, CLONE_PASSWORD}
        found |= {hashlib.sha256(k.encode()).hexdigest() for k in found if len(k) == 40}
        with _db() as session:
            found |= set(session.scalars(select(UserApiKey.key_hash)))
            found |= {p for p in session.scalars(select(User.password)) if p}
            found |= {s for s in session.scalars(select(Repository.webhook_secret)) if s}
        return found


@pytest.fixture
def rich(lambda_api: Api, offline: None) -> Rich:
    """Users with passwords, extra e-mails, IP lists and spare keys, who follow a repository,
    belong to user groups, hold grants; a private repository with a credentialed clone URI;
    webhook secrets; gists; a lock."""
    from repohost.db.models import UserEmail, UserFollowing, UserIpMap

    api = lambda_api
    world = Rich(api)
    for name in ("alice", "bob", "carol", "dave"):
        password = f"{name}-password-{name[::-1]}"
        world.passwords.append(password)
        uid, key = api.new_user(name, password=password, firstname=name.title())
        world.ids[name] = uid
        world.keys[name] = key
        spare = api.call("create_api_key", userid=uid, description="spare")
        world.keys[f"{name}-spare"] = spare["api_key"]
    api.call("update_user", userid="dave", active=False)
    api.call("create_repo_group", group_name="team", owner="alice")
    api.call("create_repo", repo_name="team/app", owner="alice")
    api.call("create_repo", repo_name="priv", owner="alice", private=True)
    world.commit = push_commits(repos_root() / "team" / "app", [{"README": "app\n"}])[0]
    api.call("invalidate_cache", repoid="team/app")
    api.call("fork_repo", repoid="team/app", fork_name="app-fork", owner="bob")
    api.call(
        "update_repo",
        repoid="priv",
        clone_uri=f"https://mirror:{CLONE_PASSWORD}@example.com/priv.git",
    )
    loghygiene.remember(CLONE_PASSWORD)
    api.call("set_webhook_secret", repoid="team/app")
    api.call("set_webhook_secret", repoid="priv", secret="priv-webhook-secret-0123456789")
    devs = api.call("create_user_group", group_name="devs", owner="carol")["user_group"]
    world.ids["devs"] = devs["users_group_id"]
    for name in ("alice", "bob", "carol", "dave"):
        api.call("add_user_to_user_group", usergroupid="devs", userid=name)
    api.call(
        "grant_user_group_permission", repoid="priv", usergroupid="devs", perm="repository.read"
    )
    api.call("grant_user_permission", repoid="team/app", userid="carol", perm="repository.admin")
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="team", userid="bob", perm="group.read"
    )
    alice = api.as_user(world.keys["alice"])
    gist = alice.call("create_gist", files={"a.txt": {"content": "a"}}, gist_type="private")
    world.ids["gist"] = gist["gist"]["gist_id"]
    alice.call("lock", repoid="team/app", locked=True, userid=world.ids["alice"])
    with _db() as session:
        repo_id = api.call("get_repo", repoid="team/app")["repo_id"]
        world.ids["app"] = repo_id
        for name in ("alice", "bob", "carol", "dave"):
            uid = world.ids[name]
            session.add(UserEmail(user_id=uid, email=f"{name}.extra@example.com"))
            session.add(UserIpMap(user_id=uid, ip_addr="127.0.0.0/8"))
            if name != "alice":  # the owner follows already
                session.add(UserFollowing(user_id=uid, follows_repository_id=repo_id))
    world.ids["carol-spare-key"] = next(
        k["api_key_id"]
        for k in api.call("get_api_keys", userid="carol")
        if k["description"] == "spare"
    )
    return world


def every_call(world: Rich) -> list[tuple[str, dict[str, Any]]]:
    """A call of every method on the rich world, reads first, deletions last."""
    ids = world.ids
    files = {"b.txt": {"content": "b"}}
    return [
        ("rpc.discover", {}),
        ("test", {"args": {"a": [1, "two"]}}),
        ("get_server_info", {}),
        ("get_ip", {"userid": "carol"}),
        ("show_ip", {}),
        ("get_user", {}),
        ("get_user", {"userid": "carol"}),
        ("get_user", {"userid": ids["bob"]}),
        ("get_users", {}),
        ("get_user_group", {"usergroupid": "devs"}),
        ("get_user_groups", {}),
        ("get_api_keys", {}),
        ("get_api_keys", {"userid": "carol"}),
        ("get_repo", {"repoid": "team/app", "with_revision_names": True}),
        ("get_repo", {"repoid": "priv"}),
        ("get_repo", {"repoid": ids["app"]}),
        ("get_repos", {}),
        ("get_repo_group", {"repogroupid": "team"}),
        ("get_repo_groups", {}),
        ("get_repo_nodes", {"repoid": "team/app", "revision": "tip", "root_path": ""}),
        ("get_changesets", {"repoid": "team/app", "with_file_list": True}),
        ("get_changeset", {"repoid": "team/app", "raw_id": world.commit}),
        ("get_gist", {"gistid": ids["gist"]}),
        ("get_gists", {"userid": "alice"}),
        ("get_gists", {}),
        ("get_locks", {}),
        ("get_locks", {"userid": "alice"}),
        ("lock", {"repoid": "team/app"}),
        ("lock", {"repoid": "app-fork", "locked": True}),
        ("invalidate_cache", {"repoid": "team/app"}),
        ("pull", {"repoid": "app-fork"}),
        ("rescan_repos", {}),
        ("create_user", {"username": "erin", "email": "erin@example.com", "password": "erin-pw-1"}),
        ("update_user", {"userid": "carol", "firstname": "C", "password": "carol-new-pw-1"}),
        ("create_api_key", {"userid": "carol", "description": "another"}),
        ("create_api_key", {}),
        ("delete_api_key", {"api_key_id": ids["carol-spare-key"], "userid": "carol"}),
        ("create_user_group", {"group_name": "ops", "owner": "bob"}),
        ("update_user_group", {"usergroupid": "devs", "description": "the developers"}),
        ("add_user_to_user_group", {"usergroupid": "ops", "userid": "carol"}),
        ("remove_user_from_user_group", {"usergroupid": "ops", "userid": "carol"}),
        ("create_repo_group", {"group_name": "g2", "owner": "bob"}),
        ("update_repo_group", {"repogroupid": "team", "description": "the team"}),
        ("create_repo", {"repo_name": "team/new", "owner": "bob", "private": True}),
        ("update_repo", {"repoid": "team/app", "description": "the app"}),
        ("update_repo", {"repoid": "priv", "private": True}),
        ("fork_repo", {"repoid": "team/app", "fork_name": "fork2", "owner": "carol"}),
        ("create_gist", {"files": files, "owner": "bob"}),
        ("create_gist", {"files": files}),
        ("set_webhook_secret", {"repoid": "team/new"}),
        ("delete_webhook_secret", {"repoid": "team/new"}),
        (
            "grant_user_permission",
            {"repoid": "team/new", "userid": "dave", "perm": "repository.read"},
        ),
        ("revoke_user_permission", {"repoid": "team/new", "userid": "dave"}),
        (
            "grant_user_group_permission",
            {"repoid": "team/new", "usergroupid": "devs", "perm": "repository.write"},
        ),
        ("revoke_user_group_permission", {"repoid": "team/new", "usergroupid": "devs"}),
        (
            "grant_user_permission_to_repo_group",
            {
                "repogroupid": "team",
                "userid": "dave",
                "perm": "group.write",
                "apply_to_children": "all",
            },
        ),
        (
            "revoke_user_permission_from_repo_group",
            {"repogroupid": "team", "userid": "dave", "apply_to_children": "all"},
        ),
        (
            "grant_user_group_permission_to_repo_group",
            {"repogroupid": "team", "usergroupid": "devs", "perm": "group.read"},
        ),
        (
            "revoke_user_group_permission_from_repo_group",
            {"repogroupid": "team", "usergroupid": "devs"},
        ),
        ("delete_gist", {"gistid": ids["gist"]}),
        ("delete_repo", {"repoid": "fork2"}),
        ("delete_repo", {"repoid": "team/new"}),
        ("delete_repo_group", {"repogroupid": "g2"}),
        ("delete_user_group", {"usergroupid": "ops"}),
        ("delete_user", {"userid": "erin"}),
    ]


def leaks_in(method: str, value: Any, secrets: set[str], where: str = "") -> list[str]:
    """Where ``value`` holds a forbidden key, a known secret, or a hash equal to one."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}"
            top = where == ""
            if top and ((method, key) in SHOWN_ONCE or (method, key) in SHOWN_ONCE_SECRET):
                continue
            if key in FORBIDDEN_KEYS:
                found.append(f"{method}: key {here}")
            found += leaks_in(method, item, secrets, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += leaks_in(method, item, secrets, f"{where}[{index}]")
    elif isinstance(value, str):
        for secret in secrets:
            if secret in value:
                found.append(f"{method}: {where} holds {secret[:4]}…")
        for match in HEX.findall(value):
            if match.lower() in secrets or match in secrets:
                found.append(f"{method}: {where} holds the hash {match[:6]}…")
    return found


@pytest.mark.parametrize("caller", ["admin", "owner", "member", "outsider"])
def test_no_result_carries_key_material(rich: Rich, caller: str) -> None:
    """CVE-2015-0260, for every method, as each kind of caller."""
    api = rich.api
    if caller == "outsider":
        _uid, key = api.new_user("outsider")
    else:
        key = {"admin": ADMIN_KEY, "owner": rich.keys["alice"], "member": rich.keys["bob"]}[caller]
    who = api.as_user(key)
    secrets = rich.secrets()
    if caller in ("admin", "owner"):  # by design they see a clone URI's password (DECISIONS.md)
        secrets.discard(CLONE_PASSWORD)
    answers = []
    for method, args in every_call(rich):
        envelope = who.envelope(method, args)
        assert envelope["error"] != "Internal server error", (method, args)
        answers.append((method, envelope))
        result = envelope["result"]
        for shown in ("api_key", "webhook_secret"):
            if envelope["error"] is None and isinstance(result, dict) and shown in result:
                assert result[shown] not in secrets, (method, shown)  # a new one, no one else's
                secrets.add(result[shown])
    secrets |= {
        s for s in rich.secrets() if s != CLONE_PASSWORD or caller not in ("admin", "owner")
    }
    leaks = []
    for method, envelope in answers:
        leaks += leaks_in(method, envelope["result"], secrets)
        leaks += leaks_in(method, envelope["error"], secrets)
    assert leaks == []
    answered = {method for method, _envelope in answers}
    assert answered == {m.name for m in methods()}, "every_call must call every method"


def test_followers_members_and_created_users_are_plain_user_objects(rich: Rich) -> None:
    """The shapes CVE-2015-0260 leaked through, exactly (facts §2.1)."""
    user_keys = {
        "user_id",
        "username",
        "firstname",
        "lastname",
        "email",
        "emails",
        "active",
        "admin",
    }
    api = rich.api
    repo = api.call("get_repo", repoid="team/app")
    assert len(repo["followers"]) == 4
    for follower in repo["followers"]:
        assert set(follower) == user_keys
        assert len(follower["emails"]) == 2
    group = api.call("get_user_group", usergroupid="devs")
    assert len(group["members"]) == 4 and all(set(m) == user_keys for m in group["members"])
    assert all(set(u) == user_keys for u in api.call("get_users"))
    created = api.call("create_user", username="frank", email="frank@example.com")
    assert set(created) == {"msg", "user", "api_key"} and set(created["user"]) == user_keys
    assert set(api.call("get_user", userid="frank")) == user_keys | {"permissions"}
    key = api.call("create_api_key", userid="frank")
    assert set(key) == {"api_key_id", "api_key", "description", "expires"}
    listed = api.call("get_api_keys", userid="frank")
    assert all(
        set(k) == {"api_key_id", "description", "expires", "created_on", "hint"} for k in listed
    )
    assert {k["hint"] for k in listed} == {created["api_key"][-4:], key["api_key"][-4:]}


# --- CVE-2016-3114: acting on another user's objects by id ---------------------------------------

MISSING = 987654


@dataclass
class Victim:
    api: Api
    mallory: Api
    ids: dict[str, int]


@pytest.fixture
def victim(lambda_api: Api) -> Victim:
    """alice's repositories, group, gists, user group and keys; mallory, a plain user."""
    api = lambda_api
    alice_id, alice_key = api.new_user("alice")
    mallory_id, mallory_key = api.new_user("mallory")
    alice = api.as_user(alice_key)
    mallory = api.as_user(mallory_key)
    api.call("create_repo_group", group_name="alicegrp", owner="alice")
    api.call("create_repo", repo_name="alicegrp/secret", owner="alice", private=True)
    api.call("create_repo", repo_name="alice-public", owner="alice")
    push_commits(repos_root() / "alicegrp" / "secret", [{"f": "secret\n"}])
    push_commits(repos_root() / "alice-public", [{"f": "public\n"}])
    api.call("invalidate_cache", repoid="alicegrp/secret")
    api.call("invalidate_cache", repoid="alice-public")
    api.call("set_webhook_secret", repoid="alice-public")
    ug = api.call("create_user_group", group_name="alices", owner="alice")["user_group"]
    api.call("add_user_to_user_group", usergroupid=ug["users_group_id"], userid=alice_id)
    public = alice.call("create_gist", files={"p.txt": {"content": "p"}})["gist"]
    private = alice.call("create_gist", files={"s.txt": {"content": "s"}}, gist_type="private")
    key = alice.call("create_api_key", description="second")
    mallory.call("create_repo", repo_name="mallorys")
    mallory_group = api.call("create_user_group", group_name="mallorys", owner="mallory")
    repos = {r["repo_name"]: r["repo_id"] for r in api.call("get_repos")}
    groups = {g["group_name"]: g["group_id"] for g in api.call("get_repo_groups")}
    return Victim(
        api,
        mallory,
        {
            "alice": alice_id,
            "mallory": mallory_id,
            "secret": repos["alicegrp/secret"],
            "public": repos["alice-public"],
            "mine": repos["mallorys"],
            "group": groups["alicegrp"],
            "user_group": ug["users_group_id"],
            "mallory_group": mallory_group["user_group"]["users_group_id"],
            "gist": public["gist_id"],
            "private_gist": private["gist"]["gist_id"],
            "key": key["api_key_id"],
        },
    )


NOT_SAME_USER = "userid is not the same as your user"
ACCESS_DENIED = "Access was denied to this resource."

#: ``(method, arguments with {placeholders} for ids, the argument naming the target, error)``:
#: ``{target}`` in the error is the id given; the same call with an id nothing has must
#: answer the same text.
ATTEMPTS: list[tuple[str, dict[str, Any], str, str]] = [
    # repositories: the private one, and the public one mallory may read but not administer
    *[
        (method, {"repoid": target, **extra}, "repoid", "repository `{target}` does not exist")
        for target in ("secret", "public")
        for method, extra in (
            ("update_repo", {"description": "pwned"}),
            ("update_repo", {"name": "stolen"}),
            ("update_repo", {"private": False}),
            ("update_repo", {"clone_uri": ""}),
            ("delete_repo", {}),
            ("delete_repo", {"forks": "delete"}),
            (
                "grant_user_group_permission",
                {"usergroupid": "mallory_group", "perm": "repository.admin"},
            ),
            ("revoke_user_group_permission", {"usergroupid": "mallory_group"}),
            ("set_webhook_secret", {}),
            ("set_webhook_secret", {"secret": "mallory-knows-this-secret"}),
            ("delete_webhook_secret", {}),
            ("invalidate_cache", {}),
            ("lock", {"locked": True}),
            ("lock", {"locked": False}),
        )
    ],
    *[
        (method, {"repoid": "secret", **extra}, "repoid", "repository `{target}` does not exist")
        for method, extra in (
            ("get_repo", {}),
            ("get_repo_nodes", {"revision": "tip", "root_path": ""}),
            ("get_changesets", {}),
            ("get_changeset", {"raw_id": "tip"}),
            ("fork_repo", {"fork_name": "stolen-fork"}),
            ("lock", {}),
        )
    ],
    (
        "grant_user_permission",
        {"repoid": "public", "userid": "mallory", "perm": "repository.admin"},
        "repoid",
        ACCESS_DENIED,
    ),
    ("revoke_user_permission", {"repoid": "public", "userid": "alice"}, "repoid", ACCESS_DENIED),
    ("pull", {"repoid": "public"}, "repoid", ACCESS_DENIED),
    # repository groups
    *[
        (
            method,
            {"repogroupid": "group", **extra},
            "repogroupid",
            "repository group `{target}` does not exist",
        )
        for method, extra in (
            ("grant_user_permission_to_repo_group", {"userid": "mallory", "perm": "group.admin"}),
            (
                "grant_user_permission_to_repo_group",
                {"userid": "mallory", "perm": "group.admin", "apply_to_children": "all"},
            ),
            ("revoke_user_permission_from_repo_group", {"userid": "alice"}),
            (
                "grant_user_group_permission_to_repo_group",
                {"usergroupid": "mallory_group", "perm": "group.admin"},
            ),
            ("revoke_user_group_permission_from_repo_group", {"usergroupid": "mallory_group"}),
        )
    ],
    (
        "update_repo_group",
        {"repogroupid": "group", "group_name": "x"},
        "repogroupid",
        ACCESS_DENIED,
    ),
    ("delete_repo_group", {"repogroupid": "group"}, "repogroupid", ACCESS_DENIED),
    (
        "update_repo",
        {"repoid": "mine", "group": "group"},
        "group",
        "no permission to create (or move) repo in alicegrp",
    ),
    # gists, by id (the private one's access id is tried separately)
    *[
        (method, {"gistid": target}, "gistid", "gist `{target}` does not exist")
        for target in ("gist", "private_gist")
        for method in ("get_gist", "delete_gist")
    ],
    # user groups
    *[
        (
            method,
            {"usergroupid": "user_group", **extra},
            "usergroupid",
            "user group `{target}` does not exist",
        )
        for method, extra in (
            ("update_user_group", {"description": "pwned"}),
            ("update_user_group", {"owner": "mallory"}),
            ("delete_user_group", {}),
            ("add_user_to_user_group", {"userid": "mallory"}),
            ("remove_user_from_user_group", {"userid": "alice"}),
        )
    ],
    # API keys and users
    ("delete_api_key", {"api_key_id": "key"}, "api_key_id", "API key `{target}` does not exist"),
    ("delete_api_key", {"api_key_id": "key", "userid": "alice"}, "userid", NOT_SAME_USER),
    ("get_api_keys", {"userid": "alice"}, "userid", NOT_SAME_USER),
    ("create_api_key", {"userid": "alice"}, "userid", NOT_SAME_USER),
    ("get_user", {"userid": "alice"}, "userid", NOT_SAME_USER),
    ("get_gists", {"userid": "alice"}, "userid", NOT_SAME_USER),
    ("get_locks", {"userid": "alice"}, "userid", NOT_SAME_USER),
    ("lock", {"repoid": "mine", "locked": True, "userid": "alice"}, "userid", NOT_SAME_USER),
    ("update_user", {"userid": "alice", "admin": True}, "userid", ACCESS_DENIED),
    ("delete_user", {"userid": "alice"}, "userid", ACCESS_DENIED),
    (
        "create_gist",
        {"files": {"x": {"content": "x"}}, "owner": "alice"},
        "owner",
        "Only Kallithea admin can specify `owner` param",
    ),
    (
        "create_repo",
        {"repo_name": "x", "owner": "alice"},
        "owner",
        "Only Kallithea admin can specify `owner` param",
    ),
]


def _with_ids(args: dict[str, Any], ids: dict[str, int], target: str, value: Any) -> dict[str, Any]:
    filled = {
        k: ids.get(v, v) if isinstance(v, str) and k != "perm" else v for k, v in args.items()
    }
    filled[target] = value
    return filled


def test_acting_on_another_users_objects_by_id_is_refused(victim: Victim) -> None:
    """CVE-2016-3114: every attempt answers as for a missing object; nothing changes."""
    ids = victim.ids
    before = row_counts(), root_listing()
    for method, args, target, expected in ATTEMPTS:
        real = ids.get(args[target], args[target])
        call = _with_ids(args, ids, target, real)
        error = victim.mallory.error(method, **call)
        assert error == expected.format(target=real), (method, call)
        if "{target}" in expected:
            missing = victim.mallory.error(method, **_with_ids(args, ids, target, MISSING))
            assert missing == expected.format(target=MISSING), (method, call)
    assert (row_counts(), root_listing()) == before
    # alice's objects are as they were
    api = victim.api
    secret = api.call("get_repo", repoid=ids["secret"])
    assert (secret["repo_name"], secret["private"], secret["owner"]) == (
        "alicegrp/secret",
        True,
        "alice",
    )
    assert api.call("get_user", userid="alice")["admin"] is False
    assert [k["api_key_id"] for k in api.call("get_api_keys", userid="alice")][-1] == ids["key"]


def test_a_private_gists_access_id_is_no_key_to_it(victim: Victim) -> None:
    api = victim.api
    access_id = api.call("get_gist", gistid=victim.ids["private_gist"])["access_id"]
    for method in ("get_gist", "delete_gist"):
        assert (
            victim.mallory.error(method, gistid=access_id) == f"gist `{access_id}` does not exist"
        )
    assert api.call("get_gist", gistid=access_id)["gist_id"] == victim.ids["private_gist"]


def test_ids_that_are_names_or_numbers_in_strings_are_refused_alike(victim: Victim) -> None:
    """``"5"``, ``5`` and the name address the same object and get the same refusal."""
    ids, mallory = victim.ids, victim.mallory
    for value in (ids["secret"], str(ids["secret"]), "alicegrp/secret"):
        assert mallory.error("delete_repo", repoid=value) == f"repository `{value}` does not exist"
    for value in (ids["user_group"], str(ids["user_group"]), "alices"):
        assert mallory.error("delete_user_group", usergroupid=value) == (
            f"user group `{value}` does not exist"
        )
    for value in (ids["group"], str(ids["group"]), "alicegrp"):
        error = mallory.error(
            "grant_user_permission_to_repo_group",
            repogroupid=value,
            userid="mallory",
            perm="group.admin",
        )
        assert error == f"repository group `{value}` does not exist"


# --- the 0.3.5 fixes -------------------------------------------------------------------------

LOCAL_URIS = [
    "/etc",
    "/srv/repos/private",
    "file:///etc/passwd",
    "file://localhost/srv/repos/private",
    "FILE:///etc",
    "../alicegrp/secret",
    "./x",
    "relative/path",
    "~/repos/x",
    "C:\\repos\\x",
    "\\\\server\\share\\x",
]
OTHER_BAD_URIS = [
    "ext::sh -c touch% /tmp/pwned",
    "fd::17",
    "host:path/x.git",
    "git@example.com:x.git",
    "ssh://-oProxyCommand=touch%20/tmp/pwned/x",
    "ssh://git@-oProxyCommand=x/y",
    "http://127.0.0.1/x.git",
    "http://localhost/x.git",
    "http://[::1]/x.git",
    "http://169.254.169.254/latest/meta-data",
    "http://0x7f000001/x.git",
    "http://2130706433/x.git",
    "https://user:pass@127.0.0.1/x.git",
    "javascript:alert(1)",
    "",
]


def test_local_clone_uris_are_refused(victim: Victim, offline: None) -> None:
    """0.3.5: a clone URI naming a local path (or any non-remote scheme) could copy any
    repository on the server past its permissions. Refused in create_repo, update_repo, pull."""
    api, ids = victim.api, victim.ids
    local_secret = str(repos_root() / "alicegrp" / "secret")
    mallory = victim.mallory
    before = row_counts(), root_listing()
    for uri in [*LOCAL_URIS, local_secret, f"file://{local_secret}", *OTHER_BAD_URIS[:-1]]:
        for who in (api, mallory):
            error = who.error("create_repo", repo_name="copy", clone_uri=uri)
            assert error.startswith("clone_uri refused: "), (uri, error)
            error = who.error("update_repo", repoid=ids["mine"], clone_uri=uri)
            assert error.startswith("clone_uri refused: "), (uri, error)
        assert api.error("pull", repoid=ids["mine"], clone_uri=uri).startswith(
            "clone_uri refused: "
        ), uri
        if uri.startswith(("/", "file:", "FILE:")):
            assert api.error("create_repo", repo_name="copy", clone_uri=uri) == (
                "clone_uri refused: local paths are not allowed"
            ), uri
    assert (row_counts(), root_listing()) == before
    assert api.call("get_repo", repoid="mallorys")["clone_uri"] is None
    assert staging_leftovers() == []


def test_a_stored_local_clone_uri_is_refused_by_pull(victim: Victim, offline: None) -> None:
    """A local path already stored (an adopted database, say) is checked again at pull."""
    from repohost.db.models import Repository

    api = victim.api
    local_secret = str(repos_root() / "alicegrp" / "secret")
    with _db() as session:
        session.get(Repository, victim.ids["mine"]).clone_uri = local_secret
    before = row_counts(), root_listing()
    assert api.error("pull", repoid="mallorys") == "clone_uri refused: local paths are not allowed"
    assert (row_counts(), root_listing()) == before
    assert api.error("get_changesets", repoid="mallorys") == "Repository is empty"


DOT_DOT_NAMES = [
    "../evil",
    "../../evil",
    "..",
    "alicegrp/../../evil",
    "alicegrp/../evil",
    "alicegrp/..",
    "newgroup/../evil",
    "./evil",
    "alicegrp/./evil",
    "/evil",
    "//evil",
    "evil/",
    "alicegrp\\..\\..\\evil",
    "..%2fevil",
    "%2e%2e/evil",
]


def test_dot_dot_in_create_repo_names_is_refused(victim: Victim) -> None:
    """0.3.5: ``../`` in a create_repo name reached outside the root (groups were made from
    the name); names are checked before anything is created, and groups are never made."""
    api = victim.api
    beside = sorted(p.name for p in repos_root().parent.iterdir())
    before = row_counts(), root_listing()
    for name in DOT_DOT_NAMES:
        for who in (api, victim.mallory):
            error = who.error("create_repo", repo_name=name)
            assert error in (
                f"failed to create repository `{name}`",
                f"repo group `{name.rpartition('/')[0]}` not found",
                f"no permission to create repo in {name.rpartition('/')[0]}",
            ), (name, error)
        assert api.error("fork_repo", repoid="alice-public", fork_name=name)
        assert api.error("update_repo", repoid="alice-public", name=name)
    assert (row_counts(), root_listing()) == before
    assert sorted(p.name for p in repos_root().parent.iterdir()) == beside


def test_create_repo_never_makes_groups_from_the_name(victim: Victim) -> None:
    api = victim.api
    before = row_counts(), root_listing()
    assert api.error("create_repo", repo_name="newgroup/x") == "repo group `newgroup` not found"
    assert api.error("create_repo", repo_name="alicegrp/sub/x") == (
        "repo group `alicegrp/sub` not found"
    )
    assert (row_counts(), root_listing()) == before


def test_permission_management_is_checked(victim: Victim) -> None:
    """0.3.5: non-admins cannot grant user permissions on repositories; group admins grant
    only within their own group (and its children); levels must be of the right kind."""
    api, ids = victim.api, victim.ids
    # alice owns and administers her repositories, still no user grants: admin only
    alice_key = api.call("create_api_key", userid="alice")["api_key"]
    alice = api.as_user(alice_key)
    for method, args in (
        (
            "grant_user_permission",
            {"repoid": "alice-public", "userid": "mallory", "perm": "repository.admin"},
        ),
        ("revoke_user_permission", {"repoid": "alice-public", "userid": "mallory"}),
    ):
        assert alice.error(method, **args) == ACCESS_DENIED
    # a group admin: within the group, yes; another group or a name sharing the prefix, no
    api.call("create_repo_group", group_name="alicegrp-two")
    api.call("create_repo", repo_name="alicegrp-two/other")
    api.call("create_repo_group", group_name="sub", parent="alicegrp")
    api.call("create_repo", repo_name="alicegrp/sub/deep")
    alice.call(
        "grant_user_permission_to_repo_group",
        repogroupid="alicegrp",
        userid="mallory",
        perm="group.read",
        apply_to_children="all",
    )
    mallory = victim.mallory
    names = {r["repo_name"] for r in mallory.call("get_repos")}
    assert {"alicegrp/secret", "alicegrp/sub/deep"} <= names
    assert "alicegrp-two/other" in names  # public anyway: check the rows instead
    from repohost.db.models import Repository, UserRepoToPerm

    with _db() as session:
        granted = set(
            session.scalars(
                select(Repository.repo_name)
                .join(UserRepoToPerm, UserRepoToPerm.repository_id == Repository.repo_id)
                .where(UserRepoToPerm.user_id == ids["mallory"])
            )
        )
    assert granted == {"alicegrp/secret", "alicegrp/sub/deep"}
    assert (
        alice.error(
            "grant_user_permission_to_repo_group",
            repogroupid="alicegrp-two",
            userid="mallory",
            perm="group.admin",
        )
        == "repository group `alicegrp-two` does not exist"
    )
    # levels of the wrong kind are refused, by everyone
    for who in (api, alice):
        assert (
            who.error(
                "grant_user_permission_to_repo_group",
                repogroupid="alicegrp",
                userid="mallory",
                perm="repository.admin",
            )
            == "permission `repository.admin` is invalid, should start with group."
        )
        assert (
            who.error(
                "grant_user_permission_to_repo_group",
                repogroupid="alicegrp",
                userid="mallory",
                perm="hg.admin",
            )
            == "permission `hg.admin` is invalid, should start with group."
        )
    for perm in ("hg.admin", "group.admin", "usergroup.admin"):
        assert (
            api.error("grant_user_permission", repoid="alice-public", userid="mallory", perm=perm)
            == f"permission `{perm}` is invalid, should start with repository."
        )
        assert (
            alice.error(
                "grant_user_group_permission",
                repoid="alice-public",
                usergroupid="alices",
                perm=perm,
            )
            == f"permission `{perm}` is invalid, should start with repository."
        )
    # what mallory received from alice gives her no admin rights anywhere
    assert (
        mallory.error(
            "grant_user_permission_to_repo_group",
            repogroupid="alicegrp",
            userid="mallory",
            perm="group.admin",
        )
        == "repository group `alicegrp` does not exist"
    )
    user = api.call("get_user", userid="mallory")
    assert "hg.admin" not in user["permissions"]["global"]
    assert user["admin"] is False
