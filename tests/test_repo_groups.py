"""Repository groups on disk and in the database (facts §2.3, §2.5, §3.5; DECISIONS.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

GROUP_KEYS = {
    "group_id",
    "group_name",
    "group_description",
    "parent_group",
    "repositories",
    "owner",
}
DEFAULT_READ = {"name": "default", "type": "user", "permission": "group.read"}


def path(name: str) -> Path:
    return repos_root() / name


def layout() -> list[str]:
    """Every group directory and repository under the root (not the insides of repositories)."""
    found: list[str] = []

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            name = prefix + entry.name
            if (entry / "HEAD").is_file() and (entry / "objects").is_dir():
                found.append(name + " (repo)")
            else:
                found.append(name + "/")
                walk(entry, name + "/")

    walk(repos_root(), "")
    return found


def trash_is_empty() -> bool:
    trash = repos_root() / ".trash"
    return not trash.exists() or not any(trash.iterdir())


def group_names(api: Api) -> list[str]:
    return [g["group_name"] for g in api.call("get_repo_groups")]


def repo_names(api: Api) -> list[str]:
    return sorted(r["repo_name"] for r in api.call("get_repos"))


def members_of_group(api: Api, name: str) -> list[dict[str, str]]:
    return api.call("get_repo_group", repogroupid=name)["members"]


def members_of_repo(api: Api, name: str) -> list[dict[str, str]]:
    return api.call("get_repo", repoid=name)["members"]


def set_default_global(old: str, new: str) -> None:
    """Replace one of the anonymous user's global permissions (as the admin pages would)."""
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserToPerm

    with transaction() as session:
        default = queries.user_by_name(session, "default")
        assert default is not None
        rows = session.query(UserToPerm).filter_by(user_id=default.user_id)
        changed = 0
        for row in rows:
            if row.permission.permission_name == old:
                row.permission = queries.get_permission(session, new)
                changed += 1
        assert changed == 1


def tree(api: Api) -> dict[str, list[str]]:
    """g/{r1, s/{r2 (private), t/{r3}}} with one commit in each repository."""
    api.call("create_repo_group", group_name="g")
    api.call("create_repo_group", group_name="s", parent="g")
    api.call("create_repo_group", group_name="t", parent="g/s")
    commits = {}
    for name, private in (("g/r1", False), ("g/s/r2", True), ("g/s/t/r3", False)):
        api.call("create_repo", repo_name=name, private=private)
        commits[name] = push_commits(path(name), [{"f.txt": name}])
    return commits


# --- create --------------------------------------------------------------------------------


def test_create_top_level_and_nested(api: Api) -> None:
    result = api.call("create_repo_group", group_name="top", description="Top level")
    top = result["repo_group"]
    assert result == {
        "msg": "created new repo group `top`",
        "repo_group": {
            "group_id": top["group_id"],
            "group_name": "top",
            "group_description": "Top level",
            "parent_group": None,
            "repositories": [],
            "owner": "admin",
        },
    }
    assert isinstance(top["group_id"], int)
    assert path("top").is_dir()
    assert not (path("top") / "HEAD").exists()

    nested = api.call("create_repo_group", group_name="sub", parent="top")
    assert nested["msg"] == "created new repo group `sub`"
    assert nested["repo_group"] == {
        "group_id": nested["repo_group"]["group_id"],
        "group_name": "top/sub",
        "group_description": "",
        "parent_group": "top",
        "repositories": [],
        "owner": "admin",
    }
    deeper = api.call(
        "create_repo_group", group_name="deep", parent=nested["repo_group"]["group_id"]
    )
    assert deeper["repo_group"]["group_name"] == "top/sub/deep"
    assert deeper["repo_group"]["parent_group"] == "top/sub"
    assert layout() == ["top/", "top/sub/", "top/sub/deep/"]

    fetched = api.call("get_repo_group", repogroupid="top/sub")
    assert set(fetched) == GROUP_KEYS | {"members"}
    assert fetched == {**nested["repo_group"], "members": [DEFAULT_READ]}
    assert api.call("get_repo_group", repogroupid=nested["repo_group"]["group_id"]) == fetched
    assert api.call("get_repo_group", repogroupid=str(top["group_id"]))["group_name"] == "top"
    assert group_names(api) == ["top", "top/sub", "top/sub/deep"]


def test_non_admin_owner_gets_an_explicit_admin_row(api: Api) -> None:
    _uid, key = api.new_user("bob")
    result = api.call("create_repo_group", group_name="bobs", owner="bob")
    assert result["repo_group"]["owner"] == "bob"
    assert members_of_group(api, "bobs") == [
        DEFAULT_READ,
        {"name": "bob", "type": "user", "permission": "group.admin"},
    ]
    # an admin owner is admin anyway: no row
    api.call("create_repo_group", group_name="admins", owner="admin")
    assert members_of_group(api, "admins") == [DEFAULT_READ]
    # the row is what lets bob manage permissions on his group
    bob = api.as_user(key)
    assert (
        bob.call(
            "grant_user_permission_to_repo_group",
            repogroupid="bobs",
            userid="default",
            perm="group.none",
        )["success"]
        is True
    )
    assert bob.error(
        "grant_user_permission_to_repo_group",
        repogroupid="admins",
        userid="bob",
        perm="group.admin",
    ) == ("repository group `admins` does not exist")
    # but the group methods themselves are admin-only
    assert (
        bob.error("create_repo_group", group_name="mine") == "Access was denied to this resource."
    )
    assert bob.error("get_repo_group", repogroupid="bobs") == "Access was denied to this resource."
    assert bob.error("get_repo_groups") == "Access was denied to this resource."
    assert bob.error("update_repo_group", repogroupid="bobs", description="x") == (
        "Access was denied to this resource."
    )
    assert bob.error("delete_repo_group", repogroupid="bobs") == (
        "Access was denied to this resource."
    )
    assert path("bobs").is_dir()
    assert not path("mine").exists()


def test_default_user_gets_the_global_default_group_level(api: Api) -> None:
    set_default_global("group.read", "group.write")
    api.call("create_repo_group", group_name="open")
    assert members_of_group(api, "open") == [
        {"name": "default", "type": "user", "permission": "group.write"}
    ]


def test_copy_permissions_from_the_parent(api: Api) -> None:
    uid, _key = api.new_user("erin")
    api.new_user("fred")
    api.call("create_user_group", group_name="devs")
    api.call("create_repo_group", group_name="parent")
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="parent", userid=uid, perm="group.write"
    )
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="parent",
        userid="default",
        perm="group.none",
    )
    api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="parent",
        usergroupid="devs",
        perm="group.read",
    )
    parent_members = [
        {"name": "default", "type": "user", "permission": "group.none"},
        {"name": "erin", "type": "user", "permission": "group.write"},
        {"name": "devs", "type": "user_group", "permission": "group.read"},
    ]
    assert members_of_group(api, "parent") == parent_members

    api.call("create_repo_group", group_name="copied", parent="parent", copy_permissions=True)
    assert members_of_group(api, "parent/copied") == parent_members

    api.call("create_repo_group", group_name="plain", parent="parent")
    assert members_of_group(api, "parent/plain") == [DEFAULT_READ]

    api.call(
        "create_repo_group",
        group_name="freds",
        parent="parent",
        owner="fred",
        copy_permissions=True,
    )
    assert members_of_group(api, "parent/freds") == [
        *parent_members[:2],
        {"name": "fred", "type": "user", "permission": "group.admin"},
        parent_members[2],
    ]
    # copy_permissions without a parent: the defaults
    api.call("create_repo_group", group_name="lonely", copy_permissions=True)
    assert members_of_group(api, "lonely") == [DEFAULT_READ]


def test_create_errors(api: Api) -> None:
    api.call("create_repo_group", group_name="top")
    api.call("create_repo_group", group_name="sub", parent="top")
    api.call("create_repo", repo_name="repo")
    assert api.error("create_repo_group", group_name="top") == "repo group `top` already exist"
    assert (
        api.error("create_repo_group", group_name="sub", parent="top")
        == "repo group `sub` already exist"
    )
    # a repository holds that name already
    assert api.error("create_repo_group", group_name="repo") == "repo group `repo` already exist"
    # names that differ only in case would collide on case-insensitive clients and disks
    assert api.error("create_repo_group", group_name="TOP") == "repo group `TOP` already exist"
    assert api.error("create_repo_group", group_name="Repo") == "repo group `Repo` already exist"
    assert (
        api.error("create_repo_group", group_name="Sub", parent="top")
        == "repo group `Sub` already exist"
    )
    assert (
        api.error("create_repo_group", group_name="x", parent="nope")
        == "repository group `nope` does not exist"
    )
    assert (
        api.error("create_repo_group", group_name="x", parent=999)
        == "repository group `999` does not exist"
    )
    assert (
        api.error("create_repo_group", group_name="x", owner="ghost")
        == "user `ghost` does not exist"
    )
    before = layout()
    assert before == ["repo (repo)", "top/", "top/sub/"]
    for bad in ("..", ".", "", "a/b", "/x", "x/", "ünïcode", "x" * 300, "x.git", "X.GIT", "-x"):
        assert (
            api.error("create_repo_group", group_name=bad) == f"failed to create repo group `{bad}`"
        )
        assert (
            api.error("create_repo_group", group_name=bad, parent="top")
            == f"failed to create repo group `{bad}`"
        )
    for bad in ("a b", ".hidden", "_admin", "12345", "rm__20200101_000000_000000_x"):
        assert (
            api.error("create_repo_group", group_name=bad) == f"failed to create repo group `{bad}`"
        )
    # each segment is fine but the full path is longer than a name may be (255)
    api.call("create_repo_group", group_name="p" * 200)
    assert (
        api.error("create_repo_group", group_name="q" * 60, parent="p" * 200)
        == f"failed to create repo group `{'q' * 60}`"
    )
    assert layout() == sorted([*before, "p" * 200 + "/"])
    assert group_names(api) == ["p" * 200, "top", "top/sub"]
    assert not (repos_root().parent / "x").exists()


def test_losing_a_race_to_the_same_name_reports_already_exist(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name check passed, then another call committed the name: the unique index decides."""
    from repohost.methods import repo_groups

    api.call("create_repo_group", group_name="race")
    monkeypatch.setattr(repo_groups, "_name_taken", lambda *_a, **_k: False)
    assert api.error("create_repo_group", group_name="race") == "repo group `race` already exist"
    monkeypatch.undo()
    assert group_names(api) == ["race"]
    assert layout() == ["race/"]


def test_failed_directory_creation_leaves_no_row(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from repohost.git import storage
    from repohost.git.errors import StorageError

    def broken(*_a: object, **_k: object) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(storage.RepoStore, "create_group", broken)
    assert api.error("create_repo_group", group_name="g") == "failed to create repo group `g`"
    monkeypatch.undo()
    assert group_names(api) == []
    assert layout() == []
    assert api.call("create_repo_group", group_name="g")["repo_group"]["group_name"] == "g"


def test_database_failure_after_mkdir_removes_the_directory(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("create_repo_group", group_name="g") == "Internal server error"
    monkeypatch.undo()
    assert layout() == []
    assert group_names(api) == []


# --- read ----------------------------------------------------------------------------------


def test_get_repo_group_lists_members_and_direct_repositories(api: Api) -> None:
    tree(api)
    api.call("create_user_group", group_name="devs")
    api.new_user("una")
    api.call(
        "grant_user_permission_to_repo_group", repogroupid="g", userid="una", perm="group.write"
    )
    api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="devs",
        perm="group.admin",
    )
    group = api.call("get_repo_group", repogroupid="g")
    assert group == {
        "group_id": group["group_id"],
        "group_name": "g",
        "group_description": "",
        "parent_group": None,
        "repositories": ["g/r1"],
        "owner": "admin",
        "members": [
            DEFAULT_READ,
            {"name": "una", "type": "user", "permission": "group.write"},
            {"name": "devs", "type": "user_group", "permission": "group.admin"},
        ],
    }
    api.call("create_repo", repo_name="g/s/a0")
    assert api.call("get_repo_group", repogroupid="g/s")["repositories"] == ["g/s/a0", "g/s/r2"]
    assert api.call("get_repo_group", repogroupid="g/s/t")["repositories"] == ["g/s/t/r3"]
    assert api.error("get_repo_group", repogroupid="nope") == (
        "repository group `nope` does not exist"
    )
    assert api.error("get_repo_group", repogroupid=4242) == "repository group `4242` does not exist"
    assert api.error("get_repo_group", repogroupid="g/") == "repository group `g/` does not exist"


def test_get_repo_groups_lists_everything_in_path_order(api: Api) -> None:
    assert api.call("get_repo_groups") == []
    tree(api)
    api.new_user("vic")
    api.call("create_repo_group", group_name="a", owner="vic", description="first")
    groups = api.call("get_repo_groups")
    assert [g["group_name"] for g in groups] == ["a", "g", "g/s", "g/s/t"]
    for group in groups:
        assert set(group) == GROUP_KEYS
        single = api.call("get_repo_group", repogroupid=group["group_id"])
        assert {k: v for k, v in single.items() if k != "members"} == group
    assert groups[0]["owner"] == "vic"
    assert groups[0]["group_description"] == "first"
    assert [g["parent_group"] for g in groups] == [None, None, "g", "g/s"]
    assert [g["repositories"] for g in groups] == [[], ["g/r1"], ["g/s/r2"], ["g/s/t/r3"]]


def test_get_repo_groups_costs_a_constant_number_of_queries(api: Api) -> None:
    from tests.support.queries import count_queries

    def cost() -> int:
        with count_queries() as counter:
            api.call("get_repo_groups")
        return counter.count

    api.call("create_repo_group", group_name="g0")
    small = cost()
    for i in range(1, 6):
        api.new_user(f"owner{i}")
        api.call("create_repo_group", group_name=f"g{i}", owner=f"owner{i}")
        api.call("create_repo_group", group_name="sub", parent=f"g{i}", owner=f"owner{i}")
        api.call("create_repo", repo_name=f"g{i}/r{i}")
        api.call("create_repo", repo_name=f"g{i}/sub/r{i}")
    assert cost() == small
    assert len(api.call("get_repo_groups")) == 11


# --- update --------------------------------------------------------------------------------


def test_update_description_and_owner(api: Api) -> None:
    group = api.call("create_repo_group", group_name="g")["repo_group"]
    api.new_user("wes")
    result = api.call("update_repo_group", repogroupid="g", description="new words", owner="wes")
    assert result == {
        "msg": f"updated repository group ID:{group['group_id']} g",
        "repo_group": {**group, "group_description": "new words", "owner": "wes"},
    }
    assert api.call("get_repo_group", repogroupid="g")["owner"] == "wes"
    assert api.error("update_repo_group", repogroupid="g", owner="ghost") == (
        "user `ghost` does not exist"
    )
    assert api.error("update_repo_group", repogroupid="nope", description="x") == (
        "repository group `nope` does not exist"
    )
    # nothing asked: nothing changes, the answer is the same
    assert api.call("update_repo_group", repogroupid=group["group_id"]) == result


def test_rename_moves_the_whole_tree(api: Api) -> None:
    commits = tree(api)
    before = {g["group_name"]: g["group_id"] for g in api.call("get_repo_groups")}
    repo_ids = {r["repo_name"]: r["repo_id"] for r in api.call("get_repos")}
    result = api.call("update_repo_group", repogroupid="g", group_name="h")
    assert result["msg"] == f"updated repository group ID:{before['g']} h"
    assert result["repo_group"] == {
        "group_id": before["g"],
        "group_name": "h",
        "group_description": "",
        "parent_group": None,
        "repositories": ["h/r1"],
        "owner": "admin",
    }
    after = {g["group_name"]: g["group_id"] for g in api.call("get_repo_groups")}
    assert after == {"h": before["g"], "h/s": before["g/s"], "h/s/t": before["g/s/t"]}
    assert api.call("get_repo_group", repogroupid="h/s/t")["parent_group"] == "h/s"
    assert {r["repo_name"]: r["repo_id"] for r in api.call("get_repos")} == {
        name.replace("g/", "h/", 1): repo_id for name, repo_id in repo_ids.items()
    }
    assert layout() == [
        "h/",
        "h/r1 (repo)",
        "h/s/",
        "h/s/r2 (repo)",
        "h/s/t/",
        "h/s/t/r3 (repo)",
    ]
    for old, ids in commits.items():
        new = old.replace("g/", "h/", 1)
        assert git(path(new), "rev-parse", "master").strip() == ids[0]
        assert git(path(new), "show", "master:f.txt") == old
        assert api.call("get_changeset", repoid=new, raw_id=ids[0])["raw_id"] == ids[0]
        assert api.call("get_changesets", repoid=new)[0]["raw_id"] == ids[0]
        assert api.error("get_repo", repoid=old) == f"repository `{old}` does not exist"
    # permissions stay with the objects
    assert members_of_repo(api, "h/s/r2") == [
        {"name": "default", "type": "user", "permission": "repository.none"}
    ]
    # and new things land in the renamed tree
    api.call("create_repo", repo_name="h/s/t/r4")
    assert path("h/s/t/r4").is_dir()
    assert trash_is_empty()


def test_move_with_parent_and_back_to_top_level(api: Api) -> None:
    commits = tree(api)
    dest = api.call("create_repo_group", group_name="dest")["repo_group"]
    result = api.call("update_repo_group", repogroupid="g/s", parent="dest")
    assert result["repo_group"]["group_name"] == "dest/s"
    assert result["repo_group"]["parent_group"] == "dest"
    assert result["repo_group"]["repositories"] == ["dest/s/r2"]
    assert group_names(api) == ["dest", "dest/s", "dest/s/t", "g"]
    assert repo_names(api) == ["dest/s/r2", "dest/s/t/r3", "g/r1"]
    assert api.call("get_repo_group", repogroupid="dest")["repositories"] == []
    assert git(path("dest/s/t/r3"), "rev-parse", "master").strip() == commits["g/s/t/r3"][0]

    # rename and move in one call, parent given by id
    moved = api.call("update_repo_group", repogroupid="g", parent=dest["group_id"], group_name="k")
    assert moved["repo_group"]["group_name"] == "dest/k"
    assert moved["msg"].endswith(" dest/k")
    assert group_names(api) == ["dest", "dest/k", "dest/s", "dest/s/t"]

    # an empty parent moves a group to the top level
    top = api.call("update_repo_group", repogroupid="dest/s", parent="")
    assert top["repo_group"]["group_name"] == "s"
    assert top["repo_group"]["parent_group"] is None
    assert group_names(api) == ["dest", "dest/k", "s", "s/t"]
    assert repo_names(api) == ["dest/k/r1", "s/r2", "s/t/r3"]
    assert layout() == [
        "dest/",
        "dest/k/",
        "dest/k/r1 (repo)",
        "s/",
        "s/r2 (repo)",
        "s/t/",
        "s/t/r3 (repo)",
    ]
    assert git(path("s/r2"), "show", "master:f.txt") == "g/s/r2"
    # same parent again: nothing moves
    assert (
        api.call("update_repo_group", repogroupid="s", parent="")["repo_group"]
        == (top["repo_group"])
    )
    assert api.error("update_repo_group", repogroupid="s", parent="nope") == (
        "repository group `nope` does not exist"
    )


def test_update_refusals_change_nothing(api: Api) -> None:
    tree(api)
    api.call("create_repo_group", group_name="other")
    api.call("create_repo", repo_name="plain")
    g = api.call("get_repo_group", repogroupid="g")
    before_groups, before_repos, before_disk = group_names(api), repo_names(api), layout()
    failed = "failed to update repository group `g`"
    assert api.error("update_repo_group", repogroupid="g", parent="g") == failed
    assert api.error("update_repo_group", repogroupid="g", parent="g/s") == failed
    assert api.error("update_repo_group", repogroupid="g", parent="g/s/t") == failed
    assert api.error("update_repo_group", repogroupid="g", parent=g["group_id"]) == failed
    assert api.error("update_repo_group", repogroupid="g", group_name="other") == failed
    assert api.error("update_repo_group", repogroupid="g", group_name="OTHER") == failed
    assert api.error("update_repo_group", repogroupid="g", group_name="plain") == failed
    assert api.error("update_repo_group", repogroupid="g", group_name="Plain") == failed
    assert api.error("update_repo_group", repogroupid="g/s", group_name="r1", parent="g") == (
        "failed to update repository group `g/s`"
    )
    for bad in ("..", "a/b", "", "x.git", "ünï", "y" * 300, "-x", "_x"):
        assert api.error("update_repo_group", repogroupid="g", group_name=bad) == failed
    # a full path that would be too long
    api.call("create_repo_group", group_name="p" * 200)
    assert api.error(
        "update_repo_group", repogroupid="g", parent="p" * 200, group_name="q" * 60
    ) == (failed)
    # the group's own path fits, but a repository below would get too long a name
    api.call("create_repo_group", group_name="o" * 60)
    assert len("o" * 60 + "/" + "q" * 190 + "/s/t") == 255
    assert api.error(
        "update_repo_group", repogroupid="g", parent="o" * 60, group_name="q" * 190
    ) == (failed)
    assert api.error("update_repo_group", repogroupid="g", description="x", group_name="..") == (
        failed
    )
    assert group_names(api) == sorted([*before_groups, "o" * 60, "p" * 200])
    assert repo_names(api) == before_repos
    assert layout() == sorted([*before_disk, "o" * 60 + "/", "p" * 200 + "/"])
    assert api.call("get_repo_group", repogroupid="g")["group_description"] == ""


def test_rename_changing_only_the_case_is_allowed(api: Api) -> None:
    api.call("create_repo_group", group_name="team")
    api.call("create_repo", repo_name="team/app")
    result = api.call("update_repo_group", repogroupid="team", group_name="Team")
    assert result["repo_group"]["group_name"] == "Team"
    assert layout() == ["Team/", "Team/app (repo)"]
    assert repo_names(api) == ["Team/app"]


def test_disk_rename_failure_leaves_database_and_disk_unchanged(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.git import storage
    from repohost.git.errors import StorageError

    commits = tree(api)
    before = (api.call("get_repo_groups"), api.call("get_repos"), layout())

    def broken(*_a: object, **_k: object) -> None:
        raise StorageError("disk said no")

    monkeypatch.setattr(storage.RepoStore, "rename_group", broken)
    assert api.error("update_repo_group", repogroupid="g", group_name="h", description="d") == (
        "failed to update repository group `g`"
    )
    api.call("create_repo_group", group_name="dest")
    assert api.error("update_repo_group", repogroupid="g/s", parent="dest") == (
        "failed to update repository group `g/s`"
    )
    monkeypatch.undo()
    api.call("delete_repo_group", repogroupid="dest")
    assert (api.call("get_repo_groups"), api.call("get_repos"), layout()) == before
    assert git(path("g/s/t/r3"), "rev-parse", "master").strip() == commits["g/s/t/r3"][0]


def test_failure_after_the_disk_rename_moves_the_tree_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    tree(api)
    before = (api.call("get_repo_groups"), api.call("get_repos"), layout())

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("update_repo_group", repogroupid="g", group_name="h") == (
        "Internal server error"
    )
    monkeypatch.undo()
    assert (api.call("get_repo_groups"), api.call("get_repos"), layout()) == before


# --- delete --------------------------------------------------------------------------------


def test_delete_is_refused_while_repositories_are_inside(api: Api) -> None:
    tree(api)
    ids = {g["group_name"]: g["group_id"] for g in api.call("get_repo_groups")}
    before = layout()
    for name in ("g", "g/s", "g/s/t"):
        assert api.error("delete_repo_group", repogroupid=name) == (
            f"failed to delete repo group ID:{ids[name]} {name}"
        )
    assert layout() == before
    assert group_names(api) == ["g", "g/s", "g/s/t"]
    # once the deepest repository is gone its group can go
    api.call("delete_repo", repoid="g/s/t/r3")
    assert api.call("delete_repo_group", repogroupid="g/s/t") == {
        "msg": f"deleted repo group ID:{ids['g/s/t']} g/s/t",
        "repo_group": None,
    }
    assert not path("g/s/t").exists()
    assert api.error("delete_repo_group", repogroupid="g") == (
        f"failed to delete repo group ID:{ids['g']} g"
    )


def test_delete_removes_empty_subgroups_and_the_directory(api: Api) -> None:
    top = api.call("create_repo_group", group_name="top")["repo_group"]
    api.call("create_repo_group", group_name="a", parent="top")
    api.call("create_repo_group", group_name="b", parent="top")
    api.call("create_repo_group", group_name="c", parent="top/b")
    api.call("create_repo_group", group_name="topper")  # a name sharing the prefix survives
    api.new_user("xia")
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="top",
        userid="xia",
        perm="group.read",
        apply_to_children="all",
    )
    assert api.call("delete_repo_group", repogroupid=top["group_id"]) == {
        "msg": f"deleted repo group ID:{top['group_id']} top",
        "repo_group": None,
    }
    assert group_names(api) == ["topper"]
    assert layout() == ["topper/"]
    assert trash_is_empty()
    assert api.error("get_repo_group", repogroupid="top/b/c") == (
        "repository group `top/b/c` does not exist"
    )
    assert api.error("delete_repo_group", repogroupid="top") == (
        "repository group `top` does not exist"
    )
    # the name is free again
    api.call("create_repo_group", group_name="top")
    assert members_of_group(api, "top") == [DEFAULT_READ]


def test_delete_refuses_a_group_holding_an_unregistered_repository(api: Api) -> None:
    group = api.call("create_repo_group", group_name="g")["repo_group"]
    api.call("create_repo_group", group_name="s", parent="g")
    git(repos_root(), "init", "-q", "--bare", str(path("g/s/stray")))
    assert api.error("delete_repo_group", repogroupid="g") == (
        f"failed to delete repo group ID:{group['group_id']} g"
    )
    assert group_names(api) == ["g", "g/s"]
    assert (path("g/s/stray") / "HEAD").is_file()


def test_failure_after_trashing_restores_the_directory(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.rpc.context import CallContext

    api.call("create_repo_group", group_name="g")
    api.call("create_repo_group", group_name="s", parent="g")

    def broken(self: CallContext, text: str, repo: object = None) -> None:
        raise RuntimeError("journal write failed")

    monkeypatch.setattr(CallContext, "journal", broken)
    assert api.error("delete_repo_group", repogroupid="g") == "Internal server error"
    monkeypatch.undo()
    assert layout() == ["g/", "g/s/"]
    assert group_names(api) == ["g", "g/s"]
    assert trash_is_empty()


# --- permissions ---------------------------------------------------------------------------

APPLY = {
    # apply_to_children → (groups reached, repositories reached)
    "none": (["g"], []),
    "repos": (["g"], ["g/r1", "g/s/r2", "g/s/t/r3"]),
    "groups": (["g", "g/s", "g/s/t"], []),
    "all": (["g", "g/s", "g/s/t"], ["g/r1", "g/s/r2", "g/s/t/r3"]),
    "bogus": (["g"], []),  # anything else behaves like none
}
ALL_GROUPS = ["g", "g/s", "g/s/t"]
ALL_REPOS = ["g/r1", "g/s/r2", "g/s/t/r3"]


def entry(members: list[dict[str, str]], name: str) -> str | None:
    found = [m["permission"] for m in members if m["name"] == name]
    assert len(found) <= 1, members
    return found[0] if found else None


def holdings(api: Api, name: str) -> dict[str, str | None]:
    """What ``name`` (a user or user group) holds on every group and repository of ``tree``."""
    result = {g: entry(members_of_group(api, g), name) for g in ALL_GROUPS}
    result.update({r: entry(members_of_repo(api, r), name) for r in ALL_REPOS})
    return result


@pytest.mark.parametrize("apply_to_children", list(APPLY))
def test_grant_user_permission_with_apply_to_children(api: Api, apply_to_children: str) -> None:
    tree(api)
    _uid, key = api.new_user("yan")
    result = api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="g",
        userid="yan",
        perm="group.read",
        apply_to_children=apply_to_children,
    )
    assert result == {
        "msg": (
            f"Granted perm: `group.read` (recursive:{apply_to_children}) for user: `yan`"
            " in repo group: `g`"
        ),
        "success": True,
    }
    groups, repos = APPLY[apply_to_children]
    expected = {g: "group.read" if g in groups else None for g in ALL_GROUPS}
    expected.update({r: "repository.read" if r in repos else None for r in ALL_REPOS})
    assert holdings(api, "yan") == expected
    # the rows take effect: the private repository is readable only when reached
    yan = api.as_user(key)
    if "g/s/r2" in repos:
        assert yan.call("get_repo", repoid="g/s/r2")["repo_name"] == "g/s/r2"
    else:
        assert yan.error("get_repo", repoid="g/s/r2") == "repository `g/s/r2` does not exist"
    # the default row stays where it was
    assert entry(members_of_group(api, "g/s"), "default") == "group.read"


@pytest.mark.parametrize("apply_to_children", list(APPLY))
def test_revoke_user_permission_with_apply_to_children(api: Api, apply_to_children: str) -> None:
    tree(api)
    api.new_user("zoe")
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="g",
        userid="zoe",
        perm="group.admin",
        apply_to_children="all",
    )
    result = api.call(
        "revoke_user_permission_from_repo_group",
        repogroupid="g",
        userid="zoe",
        apply_to_children=apply_to_children,
    )
    assert result == {
        "msg": (f"Revoked perm (recursive:{apply_to_children}) for user: `zoe` in repo group: `g`"),
        "success": True,
    }
    groups, repos = APPLY[apply_to_children]
    expected = {g: None if g in groups else "group.admin" for g in ALL_GROUPS}
    expected.update({r: None if r in repos else "repository.admin" for r in ALL_REPOS})
    assert holdings(api, "zoe") == expected
    # revoking what is not there is fine
    assert api.call("revoke_user_permission_from_repo_group", repogroupid="g", userid="zoe")[
        "success"
    ]


@pytest.mark.parametrize("apply_to_children", ["none", "repos", "groups", "all"])
def test_user_group_permissions_with_apply_to_children(api: Api, apply_to_children: str) -> None:
    tree(api)
    api.call("create_user_group", group_name="crew")
    result = api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="crew",
        perm="group.write",
        apply_to_children=apply_to_children,
    )
    assert result == {
        "msg": (
            f"Granted perm: `group.write` (recursive:{apply_to_children}) for user group:"
            " `crew` in repo group: `g`"
        ),
        "success": True,
    }
    groups, repos = APPLY[apply_to_children]
    expected = {g: "group.write" if g in groups else None for g in ALL_GROUPS}
    expected.update({r: "repository.write" if r in repos else None for r in ALL_REPOS})
    assert holdings(api, "crew") == expected
    assert members_of_group(api, "g")[-1] == {
        "name": "crew",
        "type": "user_group",
        "permission": "group.write",
    }

    api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="crew",
        perm="group.none",
        apply_to_children="all",
    )
    revoked = api.call(
        "revoke_user_group_permission_from_repo_group",
        repogroupid="g",
        usergroupid="crew",
        apply_to_children=apply_to_children,
    )
    assert revoked == {
        "msg": (
            f"Revoked perm (recursive:{apply_to_children}) for user group: `crew`"
            " in repo group: `g`"
        ),
        "success": True,
    }
    expected = {g: None if g in groups else "group.none" for g in ALL_GROUPS}
    expected.update({r: None if r in repos else "repository.none" for r in ALL_REPOS})
    assert holdings(api, "crew") == expected


def test_grant_replaces_the_level_and_translates_every_level(api: Api) -> None:
    tree(api)
    api.new_user("abe")
    for level in ("none", "read", "write", "admin"):
        api.call(
            "grant_user_permission_to_repo_group",
            repogroupid="g",
            userid="abe",
            perm=f"group.{level}",
            apply_to_children="all",
        )
        assert holdings(api, "abe") == {
            **{g: f"group.{level}" for g in ALL_GROUPS},
            **{r: f"repository.{level}" for r in ALL_REPOS},
        }
    assert [m["name"] for m in members_of_group(api, "g/s")] == ["default", "abe"]


def test_grant_applies_to_children_of_this_group_only(api: Api) -> None:
    tree(api)
    api.call("create_repo_group", group_name="gx")  # same prefix, not a child
    api.call("create_repo", repo_name="gx/r")
    api.new_user("ben")
    api.call(
        "grant_user_permission_to_repo_group",
        repogroupid="g/s",
        userid="ben",
        perm="group.write",
        apply_to_children="all",
    )
    assert holdings(api, "ben") == {
        "g": None,
        "g/s": "group.write",
        "g/s/t": "group.write",
        "g/r1": None,
        "g/s/r2": "repository.write",
        "g/s/t/r3": "repository.write",
    }
    assert entry(members_of_group(api, "gx"), "ben") is None
    assert entry(members_of_repo(api, "gx/r"), "ben") is None


def test_permission_method_errors(api: Api) -> None:
    tree(api)
    uid, _key = api.new_user("cy")
    api.call("create_user_group", group_name="crew")
    grant_user = "grant_user_permission_to_repo_group"
    grant_group = "grant_user_group_permission_to_repo_group"
    revoke_user = "revoke_user_permission_from_repo_group"
    revoke_group = "revoke_user_group_permission_from_repo_group"
    assert api.error(grant_user, repogroupid="nope", userid=uid, perm="group.read") == (
        "repository group `nope` does not exist"
    )
    assert api.error(grant_user, repogroupid="g", userid="ghost", perm="group.read") == (
        "user `ghost` does not exist"
    )
    assert api.error(grant_user, repogroupid="g", userid=uid, perm="group.god") == (
        "permission `group.god` does not exist"
    )
    for wrong in ("repository.read", "hg.admin", "usergroup.admin"):
        assert api.error(grant_user, repogroupid="g", userid=uid, perm=wrong) == (
            f"permission `{wrong}` is invalid, should start with group."
        )
        assert api.error(grant_group, repogroupid="g", usergroupid="crew", perm=wrong) == (
            f"permission `{wrong}` is invalid, should start with group."
        )
    assert api.error(grant_group, repogroupid="g", usergroupid="crew", perm="group.god") == (
        "permission `group.god` does not exist"
    )
    assert api.error(grant_group, repogroupid="g", usergroupid="nope", perm="group.read") == (
        "user group `nope` does not exist"
    )
    assert api.error(grant_group, repogroupid=999, usergroupid="crew", perm="group.read") == (
        "repository group `999` does not exist"
    )
    assert api.error(revoke_user, repogroupid="nope", userid=uid) == (
        "repository group `nope` does not exist"
    )
    assert api.error(revoke_user, repogroupid="g", userid=999) == "user `999` does not exist"
    assert api.error(revoke_group, repogroupid="g", usergroupid="nope") == (
        "user group `nope` does not exist"
    )
    assert api.error(revoke_group, repogroupid="nope", usergroupid="crew") == (
        "repository group `nope` does not exist"
    )
    assert api.error(grant_user, repogroupid="g", userid=uid) == (
        "Missing non optional `perm` arg in JSON DATA"
    )
    assert holdings(api, "cy") == dict.fromkeys([*ALL_GROUPS, *ALL_REPOS])
    assert holdings(api, "crew") == dict.fromkeys([*ALL_GROUPS, *ALL_REPOS])


def set_user_group_default(group: str, level: str) -> None:
    """The anonymous user's row on a user group (no API method writes those)."""
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserUserGroupToPerm

    with transaction() as session:
        user_group = queries.user_group_by_name(session, group)
        default = queries.user_by_name(session, "default")
        assert user_group is not None and default is not None
        row = (
            session.query(UserUserGroupToPerm)
            .filter_by(user_group_id=user_group.users_group_id, user_id=default.user_id)
            .one()
        )
        row.permission = queries.get_permission(session, level)


def test_who_may_manage_group_permissions(api: Api) -> None:
    tree(api)
    g_id = api.call("get_repo_group", repogroupid="g")["group_id"]
    dan_id, dan_key = api.new_user("dan")
    api.new_user("eve")
    api.call("create_user_group", group_name="crew")
    dan = api.as_user(dan_key)
    calls = {
        "grant_user_permission_to_repo_group": {"userid": "eve", "perm": "group.read"},
        "revoke_user_permission_from_repo_group": {"userid": "eve"},
        "grant_user_group_permission_to_repo_group": {"usergroupid": "crew", "perm": "group.read"},
        "revoke_user_group_permission_from_repo_group": {"usergroupid": "crew"},
    }

    def refused(level: str | None) -> None:
        for method, args in calls.items():
            assert dan.error(method, repogroupid="g", **args) == (
                "repository group `g` does not exist"
            ), (level, method)
            assert dan.error(method, repogroupid=g_id, **args) == (
                f"repository group `{g_id}` does not exist"
            ), (level, method)
            assert dan.error(method, repogroupid="nope", **args) == (
                "repository group `nope` does not exist"
            )

    refused(None)  # default read only
    for level in ("group.read", "group.write"):
        api.call("grant_user_permission_to_repo_group", repogroupid="g", userid="dan", perm=level)
        refused(level)
    assert holdings(api, "eve")["g"] is None

    api.call(
        "grant_user_permission_to_repo_group", repogroupid="g", userid=dan_id, perm="group.admin"
    )
    assert dan.call(
        "grant_user_permission_to_repo_group",
        repogroupid="g",
        userid="eve",
        perm="group.write",
        apply_to_children="all",
    )["success"]
    assert holdings(api, "eve") == {
        **{g: "group.write" for g in ALL_GROUPS},
        **{r: "repository.write" for r in ALL_REPOS},
    }
    # admin on g is not admin on g/s: no inheritance
    assert dan.error("revoke_user_permission_from_repo_group", repogroupid="g/s", userid="eve") == (
        "repository group `g/s` does not exist"
    )
    assert dan.call("revoke_user_permission_from_repo_group", repogroupid="g", userid="eve")[
        "success"
    ]
    assert holdings(api, "eve")["g"] is None

    # user group grants also need read on the user group
    assert dan.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="crew",
        perm="group.read",
    )["success"]
    set_user_group_default("crew", "usergroup.none")
    assert dan.error(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="crew",
        perm="group.write",
    ) == ("user group `crew` does not exist")
    assert dan.error(
        "revoke_user_group_permission_from_repo_group", repogroupid="g", usergroupid="crew"
    ) == ("user group `crew` does not exist")
    assert holdings(api, "crew")["g"] == "group.read"


def test_group_admin_through_a_user_group(api: Api) -> None:
    tree(api)
    uid, key = api.new_user("flo")
    api.new_user("gil")
    api.call("create_user_group", group_name="admins")
    api.call("add_user_to_user_group", usergroupid="admins", userid=uid)
    api.call(
        "grant_user_group_permission_to_repo_group",
        repogroupid="g",
        usergroupid="admins",
        perm="group.admin",
    )
    flo = api.as_user(key)
    assert flo.call(
        "grant_user_permission_to_repo_group",
        repogroupid="g",
        userid="gil",
        perm="group.read",
        apply_to_children="repos",
    )["msg"] == ("Granted perm: `group.read` (recursive:repos) for user: `gil` in repo group: `g`")
    assert holdings(api, "gil") == {
        "g": "group.read",
        "g/s": None,
        "g/s/t": None,
        "g/r1": "repository.read",
        "g/s/r2": "repository.read",
        "g/s/t/r3": "repository.read",
    }
    api.call("update_user_group", usergroupid="admins", active=False)
    assert flo.error("revoke_user_permission_from_repo_group", repogroupid="g", userid="gil") == (
        "repository group `g` does not exist"
    )


# --- a creation inside a group racing a rename or delete of the group ----------------------


def waiting_for_a_row_lock() -> bool:
    from sqlalchemy import text

    from repohost.db.engine import get_engine

    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with get_engine().connect() as conn:
        return bool(conn.execute(query).scalar())


def race_with_create(
    api: Api, monkeypatch: pytest.MonkeyPatch, method: str, args: dict
) -> tuple[dict, dict]:
    """``create_repo g/x`` paused after writing its row and directory, then ``method``.

    The create is released once ``method`` has finished or waits for a row lock.
    Returns both envelopes (create's, method's).
    """
    import threading

    from repohost import repos

    created, release = threading.Event(), threading.Event()
    real = repos.refresh_changeset_cache

    def paused(ctx: Any, repo: Any) -> None:
        created.set()
        assert release.wait(60)
        real(ctx, repo)

    monkeypatch.setattr(repos, "refresh_changeset_cache", paused)
    answers: dict[str, dict] = {}
    create = threading.Thread(
        target=lambda: answers.update(create=api.envelope("create_repo", {"repo_name": "g/x"}))
    )
    other = threading.Thread(target=lambda: answers.update(other=api.envelope(method, args)))
    create.start()
    try:
        assert created.wait(60)
        other.start()
        for _ in range(6000):  # until the other call is done or blocked (at most a minute)
            if not other.is_alive() or waiting_for_a_row_lock():
                break
            other.join(0.01)
    finally:
        release.set()
        create.join(60)
        if other.ident is not None:
            other.join(60)
    monkeypatch.undo()
    return answers["create"], answers["other"]


def consistent(api: Api) -> list[str]:
    """Database and disk agree on every group and repository; returns the layout."""
    expected = sorted(
        [g + "/" for g in group_names(api)] + [r + " (repo)" for r in repo_names(api)]
    )
    assert layout() == expected
    return expected


@pytest.fixture
def postgres_api(lambda_api: Api, db: str) -> Api:
    if not db.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    return lambda_api


def test_rename_waits_for_a_repository_being_created_inside(
    postgres_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = postgres_api
    group = api.call("create_repo_group", group_name="g")["repo_group"]
    create, rename = race_with_create(
        api, monkeypatch, "update_repo_group", {"repogroupid": "g", "group_name": "h"}
    )
    assert create == {
        "id": 7,
        "result": {"msg": "Created new repository `g/x`", "success": True},
        "error": None,
    }
    assert rename["error"] is None
    assert rename["result"]["msg"] == f"updated repository group ID:{group['group_id']} h"
    assert consistent(api) == ["h/", "h/x (repo)"]
    assert git(path("h/x"), "rev-parse", "--is-bare-repository").strip() == "true"


def test_delete_waits_for_a_repository_being_created_inside(
    postgres_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = postgres_api
    group = api.call("create_repo_group", group_name="g")["repo_group"]
    create, delete = race_with_create(api, monkeypatch, "delete_repo_group", {"repogroupid": "g"})
    assert create["error"] is None
    assert delete == {
        "id": 7,
        "result": None,
        "error": f"failed to delete repo group ID:{group['group_id']} g",
    }
    assert consistent(api) == ["g/", "g/x (repo)"]
