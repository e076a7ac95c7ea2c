"""Repository methods on real git repositories (facts §2.2, §3.4, §6.5, §6.6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

REPO_KEYS = {
    "repo_id",
    "repo_name",
    "repo_type",
    "clone_uri",
    "private",
    "created_on",
    "description",
    "landing_rev",
    "owner",
    "fork_of",
    "enable_statistics",
    "enable_downloads",
    "enable_locking",
    "locked_by",
    "locked_date",
    "last_changeset",
}


def bare(name: str) -> Path:
    return repos_root() / name


def make_repo(api: Api, name: str, **fields: object) -> dict:
    api.call("create_repo", repo_name=name, **fields)
    return api.call("get_repo", repoid=name)


def test_create_repo_makes_a_bare_git_repository(api: Api) -> None:
    result = api.call("create_repo", repo_name="alpha", description="First")
    assert result == {"msg": "Created new repository `alpha`", "success": True}
    path = bare("alpha")
    assert git(path, "rev-parse", "--is-bare-repository").strip() == "true"
    repo = api.call("get_repo", repoid="alpha")
    assert set(repo) == REPO_KEYS | {"members", "followers"}
    assert repo["repo_type"] == "git"
    assert repo["landing_rev"] == ["rev", "tip"]
    assert repo["owner"] == "admin"
    assert repo["fork_of"] is None
    assert repo["last_changeset"] == {
        "short_id": "0" * 12,
        "raw_id": "0" * 40,
        "revision": -1,
        "message": "",
        "date": "1970-01-01T00:00:00",
        "author": "",
    }
    assert repo["members"] == [{"name": "default", "type": "user", "permission": "repository.read"}]
    assert [f["username"] for f in repo["followers"]] == ["admin"]
    assert api.call("get_repo", repoid=repo["repo_id"]) == repo


def test_private_repo_hides_from_others(api: Api) -> None:
    _uid, key = api.new_user("bob")
    make_repo(api, "secret", private=True)
    make_repo(api, "open")
    bob = api.as_user(key)
    assert [r["repo_name"] for r in bob.call("get_repos")] == ["open"]
    assert bob.error("get_repo", repoid="secret") == "repository `secret` does not exist"
    assert api.call("get_repo", repoid="secret")["members"] == [
        {"name": "default", "type": "user", "permission": "repository.none"}
    ]


def test_create_repo_errors(api: Api) -> None:
    make_repo(api, "taken")
    assert api.error("create_repo", repo_name="taken") == "repo `taken` already exist"
    assert api.error("create_repo", repo_name="TAKEN") == "repo `TAKEN` already exist"
    assert api.error("create_repo", repo_name="nogroup/x") == "repo group `nogroup` not found"
    assert api.error("create_repo", repo_name="/") == "repo group `` not found"
    for bad in ("", ".", "..", ":", "<test>", "a b", "x.git", "-x"):
        assert api.error("create_repo", repo_name=bad) == f"failed to create repository `{bad}`"
    assert api.error("create_repo", repo_name="ok", landing_rev="tip") == (
        "failed to create repository `ok`"
    )
    assert api.error("create_repo", repo_name="ok", owner="ghost") == (
        "user `ghost` does not exist"
    )
    assert "not supported" in api.error("create_repo", repo_name="ok", repo_type="hg")
    assert not bare("ok").exists()


def test_names_with_traversal_never_touch_the_filesystem(api: Api) -> None:
    api.call("create_repo_group", group_name="grp")
    outside = repos_root().parent / "escaped"
    for bad in ("grp/../escaped", "../escaped", "grp/./x", "/abs", "grp//x", "a\\b", "x\x00y"):
        assert api.envelope("create_repo", {"repo_name": bad})["error"] is not None
    assert not outside.exists()
    assert sorted(p.name for p in repos_root().iterdir() if not p.name.startswith(".")) == ["grp"]


def test_create_in_group_needs_group_write(api: Api) -> None:
    uid, key = api.new_user("carol")
    carol = api.as_user(key)
    api.call("create_repo_group", group_name="team")
    assert (
        carol.error("create_repo", repo_name="team/app") == "no permission to create repo in team"
    )
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="team", userid=uid, perm="group.write"
    )
    assert carol.call("create_repo", repo_name="team/app")["success"] is True
    repo = api.call("get_repo", repoid="team/app")
    assert repo["owner"] == "carol"
    assert (repos_root() / "team" / "app" / "HEAD").is_file()
    assert carol.error("create_repo", repo_name="team/x", owner="admin") == (
        "Only Kallithea admin can specify `owner` param"
    )


def test_top_level_create_needs_global_permission(api: Api) -> None:
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserToPerm

    _uid, key = api.new_user("dan")
    with transaction() as session:
        row = session.query(UserToPerm).filter_by(user_id=1).join(UserToPerm.permission)
        for perm in row:
            if perm.permission.permission_name == "hg.create.repository":
                perm.permission = queries.get_permission(session, "hg.create.none")
    assert api.as_user(key).error("create_repo", repo_name="top") == (
        "no permission to create top level repo"
    )


def test_copy_permissions_from_group(api: Api) -> None:
    uid, _key = api.new_user("erin")
    api.call("create_repo_group", group_name="g")
    api.call("grant_user_permission_to_repo_group", repogroupid="g", userid=uid, perm="group.write")
    api.call("create_repo", repo_name="g/r", copy_permissions=True)
    members = api.call("get_repo", repoid="g/r")["members"]
    assert {"name": "erin", "type": "user", "permission": "repository.write"} in members


def test_last_changeset_and_nodes_on_a_real_repository(api: Api) -> None:
    make_repo(api, "code")
    ids = push_commits(
        bare("code"),
        [
            {"README": "hello\n", "src/main.py": "print(1)\n", "src/lib/util.py": "x = 1\n"},
            {"docs/guide file.md": "ünïcode\n", "README": "hello again\n"},
        ],
    )
    nodes = api.call("get_repo_nodes", repoid="code", revision="tip", root_path="/")
    assert nodes == [
        {"name": "docs", "type": "dir"},
        {"name": "src", "type": "dir"},
        {"name": "src/lib", "type": "dir"},
        {"name": "README", "type": "file"},
        {"name": "docs/guide file.md", "type": "file"},
        {"name": "src/main.py", "type": "file"},
        {"name": "src/lib/util.py", "type": "file"},
    ]
    assert api.call(
        "get_repo_nodes", repoid="code", revision=ids[0], root_path="src", ret_type="files"
    ) == [{"name": "src/main.py", "type": "file"}, {"name": "src/lib/util.py", "type": "file"}]
    assert api.call(
        "get_repo_nodes", repoid="code", revision="0", root_path="", ret_type="dirs"
    ) == [{"name": "src", "type": "dir"}, {"name": "src/lib", "type": "dir"}]
    assert api.error("get_repo_nodes", repoid="code", revision="tip", root_path="nope") == (
        "failed to get repo: `code` nodes"
    )
    assert api.error("get_repo_nodes", repoid="code", revision="f" * 40, root_path="/") == (
        "failed to get repo: `code` nodes"
    )
    assert api.error("get_repo_nodes", repoid="code", revision="tip", root_path="../..") == (
        "failed to get repo: `code` nodes"
    )
    assert api.error(
        "get_repo_nodes", repoid="code", revision="tip", root_path="/", ret_type="x"
    ) == ("ret_type must be one of all,dirs,files")
    assert api.error("get_repo_nodes", repoid="code") == (
        "Missing non optional `root_path` arg in JSON DATA"
    )
    names = api.call("get_repo", repoid="code", with_revision_names=True)
    assert names["branches"] == {"master": ids[1]}
    assert names["tags"] == {}
    assert names["bookmarks"] == {}


def test_update_repo_fields(api: Api) -> None:
    repo = make_repo(api, "upd")
    api.new_user("fay")
    result = api.call(
        "update_repo",
        repoid="upd",
        description="new text",
        owner="fay",
        private=True,
        landing_rev="branch:master",
        enable_downloads=False,
        clone_uri="https://user:hunter2@example.com/x.git",
    )
    assert result["msg"] == f"updated repo ID:{repo['repo_id']} upd"
    updated = result["repository"]
    assert updated["description"] == "new text"
    assert updated["owner"] == "fay"
    assert updated["private"] is True
    assert updated["landing_rev"] == ["branch", "master"]
    assert updated["enable_downloads"] is False
    assert updated["clone_uri"] == "https://user:hunter2@example.com/x.git"


def test_clone_uri_password_is_masked_for_readers(api: Api) -> None:
    _uid, key = api.new_user("gus")
    make_repo(api, "mirror")
    api.call("update_repo", repoid="mirror", clone_uri="https://u:pw@example.com/m.git")
    seen = api.as_user(key).call("get_repo", repoid="mirror")["clone_uri"]
    assert seen == "https://u:*****@example.com/m.git"
    listed = api.as_user(key).call("get_repos")[0]["clone_uri"]
    assert listed == "https://u:*****@example.com/m.git"


def test_rename_and_move_move_the_directory(api: Api) -> None:
    make_repo(api, "old")
    push_commits(bare("old"), [{"f": "1"}])
    api.call("create_repo_group", group_name="dest")
    result = api.call("update_repo", repoid="old", name="new", group="dest")
    assert result["repository"]["repo_name"] == "dest/new"
    assert not bare("old").exists()
    assert git(bare("dest/new"), "log", "--format=%s").strip() == "commit 0: f"
    assert api.error("get_repo", repoid="old") == "repository `old` does not exist"
    make_repo(api, "other")
    assert api.error("update_repo", repoid="other", name="new", group="dest") == (
        "failed to update repo `other`"
    )
    assert bare("other").is_dir()


def test_rename_failure_on_disk_rolls_back_the_row(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.git import storage
    from repohost.git.errors import StorageError

    make_repo(api, "stay")

    def broken(*_a: object, **_k: object) -> None:
        raise StorageError("disk said no")

    monkeypatch.setattr(storage.RepoStore, "rename_repo", broken)
    assert api.error("update_repo", repoid="stay", name="moved") == "failed to update repo `stay`"
    monkeypatch.undo()
    assert api.call("get_repo", repoid="stay")["repo_name"] == "stay"
    assert bare("stay").is_dir()


def test_database_failure_after_create_removes_the_directory(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost import repos

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(repos, "refresh_changeset_cache", broken)
    assert api.error("create_repo", repo_name="ghost") == "Internal server error"
    monkeypatch.undo()
    assert not bare("ghost").exists()
    assert api.error("get_repo", repoid="ghost") == "repository `ghost` does not exist"
    assert api.call("create_repo", repo_name="ghost")["success"] is True


def test_fork_and_delete_with_forks(api: Api) -> None:
    make_repo(api, "origin")
    ids = push_commits(bare("origin"), [{"a": "1"}, {"b": "2"}])
    assert api.call("fork_repo", repoid="origin", fork_name="fork1") == {
        "msg": "Created fork of `origin` as `fork1`",
        "success": True,
    }
    fork = api.call("get_repo", repoid="fork1")
    assert fork["fork_of"] == "origin"
    assert fork["last_changeset"]["raw_id"] == ids[1]
    assert git(bare("fork1"), "rev-parse", "master").strip() == ids[1]
    assert (
        api.error("fork_repo", repoid="origin", fork_name="fork1") == "fork `fork1` already exist"
    )
    assert (
        api.error("fork_repo", repoid="fork1", fork_name="origin") == "repo `origin` already exist"
    )
    assert api.error("delete_repo", repoid="origin") == (
        "Cannot delete `origin` it still contains attached forks"
    )
    assert api.call("delete_repo", repoid="origin", forks="detach") == {
        "msg": "Deleted repository `origin` Detached 1 forks",
        "success": True,
    }
    assert api.call("get_repo", repoid="fork1")["fork_of"] is None
    assert not bare("origin").exists()


def test_delete_forks_recursively(api: Api) -> None:
    make_repo(api, "root")
    api.call("fork_repo", repoid="root", fork_name="child")
    api.call("fork_repo", repoid="child", fork_name="grandchild")
    assert api.call("delete_repo", repoid="root", forks="delete")["msg"] == (
        "Deleted repository `root` Deleted 1 forks"
    )
    assert api.call("get_repos") == []
    assert not any(bare(n).exists() for n in ("root", "child", "grandchild"))
    trash = repos_root() / ".trash"
    assert not trash.exists() or not any(trash.iterdir())


def test_delete_failure_after_trash_restores_the_directory(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    make_repo(api, "keep")
    push_commits(bare("keep"), [{"f": "1"}])

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("delete_repo", repoid="keep") == "Internal server error"
    monkeypatch.undo()
    assert git(bare("keep"), "log", "--format=%s").strip() == "commit 0: f"
    assert api.call("get_repo", repoid="keep")["repo_name"] == "keep"


def test_permission_methods(api: Api) -> None:
    uid, key = api.new_user("hal")
    make_repo(api, "perm", private=True)
    hal = api.as_user(key)
    assert hal.error("get_repo", repoid="perm") == "repository `perm` does not exist"
    assert api.call(
        "grant_user_permission", repoid="perm", userid="hal", perm="repository.read"
    ) == {
        "msg": "Granted perm: `repository.read` for user: `hal` in repo: `perm`",
        "success": True,
    }
    assert hal.call("get_repo", repoid="perm")["repo_name"] == "perm"
    assert hal.error("update_repo", repoid="perm", description="x") == (
        "repository `perm` does not exist"
    )
    assert api.error("grant_user_permission", repoid="perm", userid=uid, perm="repository.god") == (
        "permission `repository.god` does not exist"
    )
    assert api.error("grant_user_permission", repoid="perm", userid=uid, perm="hg.admin") == (
        "permission `hg.admin` is invalid, should start with repository."
    )
    assert api.call("revoke_user_permission", repoid="perm", userid=uid) == {
        "msg": "Revoked perm for user: `hal` in repo: `perm`",
        "success": True,
    }
    assert hal.error("get_repo", repoid="perm") == "repository `perm` does not exist"
    assert hal.error(
        "grant_user_permission", repoid="perm", userid=uid, perm="repository.read"
    ) == ("Access was denied to this resource.")


def test_user_group_permissions_on_repos(api: Api) -> None:
    uid, key = api.new_user("ida")
    make_repo(api, "shared", private=True)
    api.call("create_user_group", group_name="readers")
    api.call("add_user_to_user_group", usergroupid="readers", userid=uid)
    assert api.call(
        "grant_user_group_permission",
        repoid="shared",
        usergroupid="readers",
        perm="repository.write",
    ) == {
        "msg": "Granted perm: `repository.write` for user group: `readers` in repo: `shared`",
        "success": True,
    }
    ida = api.as_user(key)
    assert ida.call("get_user")["permissions"]["repositories"]["shared"] == "repository.write"
    members = api.call("get_repo", repoid="shared")["members"]
    assert members[-1] == {
        "name": "readers",
        "type": "user_group",
        "permission": "repository.write",
    }
    assert api.error("delete_user_group", usergroupid="readers") == "User Group assigned to shared"
    assert (
        api.call("revoke_user_group_permission", repoid="shared", usergroupid="readers")["msg"]
        == "Revoked perm for user group: `readers` in repo: `shared`"
    )
    assert ida.error("get_repo", repoid="shared") == "repository `shared` does not exist"


def test_repo_owner_is_admin_and_may_update_but_not_change_owner(api: Api) -> None:
    _uid, key = api.new_user("jo")
    jo = api.as_user(key)
    jo.call("create_repo", repo_name="jos")
    assert jo.call("update_repo", repoid="jos", description="mine")["repository"][
        "description"
    ] == ("mine")
    assert jo.error("update_repo", repoid="jos", owner="admin") == (
        "Only Kallithea admin can specify `owner` param"
    )
    assert jo.call("get_repo", repoid="jos")["clone_uri"] is None
    assert jo.call("delete_repo", repoid="jos")["success"] is True


def test_get_repos_costs_a_constant_number_of_queries(api: Api) -> None:
    from tests.support.queries import count_queries

    _uid, key = api.new_user("kim")
    kim = api.as_user(key)

    def cost() -> int:
        with count_queries() as counter:
            kim.call("get_repos")
            api.call("get_repos")
        return counter.count

    make_repo(api, "r0")
    small = cost()
    for i in range(1, 12):
        api.call("create_repo", repo_name=f"r{i}", private=bool(i % 2))
    assert cost() == small
    assert len(kim.call("get_repos")) == 6
