"""Gists: git repositories under ``<root>/.rc_gist_store/<access_id>`` (facts §2.6, §3.6)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import repos_root
from tests.support.api import Api, HttpTransport
from tests.support.gitcli import git

GIST_KEYS = {"gist_id", "type", "access_id", "description", "url", "expires", "created_on"}


def store() -> Path:
    return repos_root() / ".rc_gist_store"


def stored_gists() -> list[str]:
    return sorted(p.name for p in store().iterdir()) if store().exists() else []


def leftovers() -> list[str]:
    """Anything in the staging and trash areas."""
    found = []
    for area in (".tmp", ".trash"):
        directory = repos_root() / area
        if directory.exists():
            found += [f"{area}/{p.name}" for p in directory.iterdir()]
    return found


def files(**contents: str) -> dict[str, dict[str, str]]:
    return {name: {"content": text, "lexer": "text"} for name, text in contents.items()}


def gist_ids_in_db() -> list[int]:
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import Gist

    with transaction() as session:
        return sorted(session.scalars(select(Gist.gist_id)))


def expire(gist_id: int) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import Gist

    with transaction() as session:
        gist = session.get(Gist, gist_id)
        assert gist is not None
        gist.gist_expires = time.time() - 1


def test_create_public_gist(api: Api) -> None:
    result = api.call("create_gist", files=files(a="hello\n"), description="my gist")
    gist = result["gist"]
    assert result == {"msg": "created new gist", "gist": gist}
    assert set(gist) == GIST_KEYS
    assert isinstance(gist["gist_id"], int)
    assert gist["type"] == "public"
    assert gist["access_id"] == str(gist["gist_id"])
    assert gist["description"] == "my gist"
    assert gist["url"].endswith(f"/_admin/gists/{gist['access_id']}")
    assert gist["expires"] == -1.0
    assert isinstance(gist["expires"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?", gist["created_on"])

    path = store() / gist["access_id"]
    assert stored_gists() == [gist["access_id"]]
    assert git(path, "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(path, "rev-list", "--all", "--count").strip() == "1"
    assert git(path, "log", "-1", "--format=%B", "master") == "added file: a\n\n"
    assert git(path, "ls-tree", "--name-only", "master") == "a\n"
    assert git(path, "show", "master:a") == "hello\n"
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/master"
    assert leftovers() == []


def test_create_private_gist_with_several_files_and_a_lifetime(api: Api) -> None:
    before = time.time()
    result = api.call(
        "create_gist",
        files=files(**{"a": "first\n", "b.py": "print(2)\n", "ünï cödé.txt": "ü\n"}),
        gist_type="private",
        lifetime=10,
    )
    after = time.time()
    gist = result["gist"]
    assert gist["type"] == "private"
    assert re.fullmatch(r"[0-9a-f]{20}", gist["access_id"])
    assert gist["access_id"] != str(gist["gist_id"])
    assert before + 600 <= gist["expires"] <= after + 600
    assert gist["description"] == ""
    path = store() / gist["access_id"]
    assert git(path, "rev-list", "--all", "--count").strip() == "1"
    assert git(path, "log", "-1", "--format=%s", "master") == "added files: a, b.py, ünï cödé.txt\n"
    assert git(path, "-c", "core.quotepath=false", "ls-tree", "--name-only", "master") == (
        "a\nb.py\nünï cödé.txt\n"
    )
    assert git(path, "show", "master:b.py") == "print(2)\n"
    assert git(path, "show", "master:ünï cödé.txt") == "ü\n"
    # the message names the files in the order they were sent
    reordered = api.call("create_gist", files=files(z="1", b="2", m="3"))["gist"]
    assert git(store() / reordered["access_id"], "log", "-1", "--format=%s", "master") == (
        "added files: z, b, m\n"
    )
    assert git(store() / reordered["access_id"], "ls-tree", "--name-only", "master") == (
        "b\nm\nz\n"
    )
    # two private gists never share an access id
    other = api.call("create_gist", files=files(a="x"), gist_type="private")["gist"]
    assert other["access_id"] != gist["access_id"]
    assert stored_gists() == sorted([gist["access_id"], other["access_id"], reordered["access_id"]])


def test_empty_content_is_a_file_too(api: Api) -> None:
    gist = api.call("create_gist", files=files(empty=""))["gist"]
    path = store() / gist["access_id"]
    assert git(path, "ls-tree", "--name-only", "master") == "empty\n"
    assert git(path, "show", "master:empty") == ""


def test_url_uses_the_base_url_the_client_called(api: Api) -> None:
    envelope = api.envelope(
        "create_gist", {"files": files(a="x")}, headers={"Host": "code.example.org"}
    )
    gist = envelope["result"]["gist"]
    assert gist["url"] == f"https://code.example.org/_admin/gists/{gist['access_id']}"
    if isinstance(api.transport, HttpTransport):
        plain = api.call("create_gist", files=files(a="x"), gist_type="private")["gist"]
        assert plain["url"] == f"{api.transport.base_url}/_admin/gists/{plain['access_id']}"
        assert api.call("get_gist", gistid=gist["gist_id"])["url"] == (
            f"{api.transport.base_url}/_admin/gists/{gist['access_id']}"
        )


def test_get_gist_by_id_and_access_id(api: Api) -> None:
    public = api.call("create_gist", files=files(a="1"))["gist"]
    private = api.call("create_gist", files=files(b="2"), gist_type="private")["gist"]
    for gist in (public, private):
        assert api.call("get_gist", gistid=gist["gist_id"]) == gist
        assert api.call("get_gist", gistid=str(gist["gist_id"])) == gist
        assert api.call("get_gist", gistid=gist["access_id"]) == gist
    assert api.error("get_gist", gistid=999) == "gist `999` does not exist"
    assert api.error("get_gist", gistid="nope") == "gist `nope` does not exist"
    # expired gists are still there for get_gist
    expire(public["gist_id"])
    assert api.call("get_gist", gistid=public["gist_id"])["expires"] < time.time()


def test_only_the_owner_and_admins_see_a_gist(api: Api) -> None:
    _bob_id, bob_key = api.new_user("bob")
    _cat_id, cat_key = api.new_user("cat")
    bob, cat = api.as_user(bob_key), api.as_user(cat_key)
    mine = bob.call("create_gist", files=files(a="bob's"))["gist"]
    secret = bob.call("create_gist", files=files(a="bob's"), gist_type="private")["gist"]
    admins = api.call("create_gist", files=files(a="admin's"))["gist"]
    assert bob.call("get_gist", gistid=mine["gist_id"]) == mine
    assert bob.call("get_gist", gistid=secret["access_id"]) == secret
    assert api.call("get_gist", gistid=mine["gist_id"]) == mine
    assert api.call("get_gist", gistid=secret["access_id"]) == secret
    # others are told it does not exist, public or not
    for gist in (mine, secret):
        for ident in (gist["gist_id"], gist["access_id"]):
            assert cat.error("get_gist", gistid=ident) == f"gist `{ident}` does not exist"
            assert cat.error("delete_gist", gistid=ident) == f"gist `{ident}` does not exist"
    assert bob.error("get_gist", gistid=admins["gist_id"]) == (
        f"gist `{admins['gist_id']}` does not exist"
    )
    assert bob.error("delete_gist", gistid=admins["access_id"]) == (
        f"gist `{admins['access_id']}` does not exist"
    )
    assert len(stored_gists()) == 3


def test_get_gists_newest_first_without_expired_ones(api: Api) -> None:
    bob_id, bob_key = api.new_user("bob")
    cat_id, cat_key = api.new_user("cat")
    bob = api.as_user(bob_key)
    made = [
        bob.call("create_gist", files=files(a=str(n)), description=f"g{n}")["gist"]
        for n in range(4)
    ]
    api.as_user(cat_key).call("create_gist", files=files(a="cat's"))
    api.call("create_gist", files=files(a="admin's"), owner="bob", gist_type="private")
    newest_first = api.call("get_gists", userid="bob")
    assert [g["description"] for g in newest_first] == ["", "g3", "g2", "g1", "g0"]
    assert newest_first[1:] == made[::-1]
    assert bob.call("get_gists") == newest_first
    assert bob.call("get_gists", userid=bob_id) == newest_first
    assert bob.call("get_gists", userid=str(bob_id)) == newest_first

    expire(made[2]["gist_id"])
    expire(made[0]["gist_id"])
    assert [g["description"] for g in bob.call("get_gists")] == ["", "g3", "g1"]
    # not expiring: in the future
    future = bob.call("create_gist", files=files(a="f"), lifetime=60)["gist"]
    assert bob.call("get_gists")[0] == future

    assert api.call("get_gists") == []  # the admin made one, but for bob
    assert len(api.call("get_gists", userid=cat_id)) == 1
    assert api.error("get_gists", userid="ghost") == "user `ghost` does not exist"
    assert api.error("get_gists", userid=999) == "user `999` does not exist"
    not_same = "userid is not the same as your user"
    assert bob.error("get_gists", userid=cat_id) == not_same
    assert bob.error("get_gists", userid="cat") == not_same
    assert bob.error("get_gists", userid="bob") == not_same  # only the numeric id counts
    assert bob.error("get_gists", userid=999) == not_same


def test_owner_is_for_admins_only(api: Api) -> None:
    bob_id, bob_key = api.new_user("bob")
    bob = api.as_user(bob_key)
    only_admin = "Only Kallithea admin can specify `owner` param"
    assert bob.error("create_gist", files=files(a="x"), owner="admin") == only_admin
    assert bob.error("create_gist", files=files(a="x"), owner=bob_id) == only_admin
    assert api.error("create_gist", files=files(a="x"), owner="ghost") == (
        "user `ghost` does not exist"
    )
    assert stored_gists() == []
    assert gist_ids_in_db() == []
    given = api.call("create_gist", files=files(a="x"), owner="bob")["gist"]
    assert bob.call("get_gists") == [given]
    assert bob.call("get_gist", gistid=given["gist_id"]) == given
    assert api.call("get_gists") == []


BAD_FILES = [
    {"dir/a": {"content": "x"}},
    {"../a": {"content": "x"}},
    {"a\\b": {"content": "x"}},
    {".git": {"content": "x"}},
    {".GIT": {"content": "x"}},
    {".": {"content": "x"}},
    {"..": {"content": "x"}},
    {"": {"content": "x"}},
    {"a\nb": {"content": "x"}},
    {"x" * 256: {"content": "x"}},
    {"a": {"content": 5}},
    {"a": {"content": "lone surrogate \ud800"}},
    {"\ud800": {"content": "x"}},
    {"a": {"content": None}},
    {"a": {"content": ["x"]}},
    {"a": {}},
    {"a": "just text"},
    {"good": {"content": "x"}, "bad/name": {"content": "y"}},
    {"good": {"content": "x"}, "bad": {"content": 1}},
    {},
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[repr(sorted(b))[:30] for b in BAD_FILES])
def test_bad_files_leave_nothing_behind(api: Api, bad: dict) -> None:
    assert api.error("create_gist", files=bad) == "failed to create gist"
    assert api.error("create_gist", files=bad, gist_type="private") == "failed to create gist"
    assert stored_gists() == []
    assert leftovers() == []
    assert gist_ids_in_db() == []
    assert api.call("get_gists") == []


def test_bad_type_or_lifetime(api: Api) -> None:
    for args in ({"gist_type": "secret"}, {"lifetime": 0}, {"lifetime": -5}):
        assert api.error("create_gist", files=files(a="x"), **args) == "failed to create gist"
    assert api.error("create_gist") == "Missing non optional `files` arg in JSON DATA"
    assert stored_gists() == []
    assert gist_ids_in_db() == []


def test_storage_failure_while_committing_leaves_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.git import storage

    def broken(*_a: object, **_k: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage, "_commit_files", broken)
    assert api.error("create_gist", files=files(a="x")) == "failed to create gist"
    monkeypatch.undo()
    assert stored_gists() == []
    assert leftovers() == []
    assert gist_ids_in_db() == []


def test_database_failure_after_writing_removes_the_gist(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("create_gist", files=files(a="x")) == "Internal server error"
    assert api.error("create_gist", files=files(a="x"), gist_type="private") == (
        "Internal server error"
    )
    monkeypatch.undo()
    assert stored_gists() == []
    assert leftovers() == []
    assert gist_ids_in_db() == []


def test_delete_gist(api: Api) -> None:
    _bob_id, bob_key = api.new_user("bob")
    bob = api.as_user(bob_key)
    public = bob.call("create_gist", files=files(a="1"))["gist"]
    private = bob.call("create_gist", files=files(a="2"), gist_type="private")["gist"]
    other = bob.call("create_gist", files=files(a="3"))["gist"]
    assert bob.call("delete_gist", gistid=private["access_id"]) == {
        "msg": f"deleted gist ID:{private['access_id']}",
        "gist": None,
    }
    assert api.call("delete_gist", gistid=public["gist_id"]) == {
        "msg": f"deleted gist ID:{public['access_id']}",
        "gist": None,
    }
    assert stored_gists() == [other["access_id"]]
    assert leftovers() == []
    assert bob.call("get_gists") == [other]
    for gist in (public, private):
        assert bob.error("get_gist", gistid=gist["gist_id"]) == (
            f"gist `{gist['gist_id']}` does not exist"
        )
        assert api.error("delete_gist", gistid=gist["access_id"]) == (
            f"gist `{gist['access_id']}` does not exist"
        )
    assert git(store() / other["access_id"], "show", "master:a") == "3"


def test_failure_after_trashing_restores_the_gist(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    gist = api.call("create_gist", files=files(a="keep me"))["gist"]

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("delete_gist", gistid=gist["gist_id"]) == "Internal server error"
    monkeypatch.undo()
    assert api.call("get_gist", gistid=gist["gist_id"]) == gist
    assert git(store() / gist["access_id"], "show", "master:a") == "keep me"
    assert leftovers() == []


def test_delete_fails_cleanly_when_the_directory_is_missing(api: Api) -> None:
    import shutil

    gist = api.call("create_gist", files=files(a="x"))["gist"]
    shutil.rmtree(store() / gist["access_id"])
    assert api.error("delete_gist", gistid=gist["gist_id"]) == (
        f"failed to delete gist ID:{gist['access_id']}"
    )
    assert api.call("get_gist", gistid=gist["gist_id"]) == gist
