"""User-group methods (facts §2.4, §3.3) and user-group permission levels."""

from __future__ import annotations

from sqlalchemy import delete

from tests.support.api import Api

GROUP_KEYS = {"users_group_id", "group_name", "group_description", "active", "owner", "members"}


def grant_global(uid: int, permission: str) -> None:
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserToPerm

    with transaction() as session:
        perm = queries.get_permission(session, permission)
        session.add(UserToPerm(user_id=uid, permission=perm))


def grant_on_group(uid: int, group_id: int, permission: str) -> None:
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserUserGroupToPerm

    with transaction() as session:
        session.execute(
            delete(UserUserGroupToPerm).where(
                UserUserGroupToPerm.user_id == uid, UserUserGroupToPerm.user_group_id == group_id
            )
        )
        perm = queries.get_permission(session, permission)
        session.add(UserUserGroupToPerm(user_id=uid, user_group_id=group_id, permission=perm))


def test_create_and_get(api: Api) -> None:
    result = api.call("create_user_group", group_name="devs", description="Developers")
    assert result["msg"] == "created new user group `devs`"
    group = result["user_group"]
    assert set(group) == GROUP_KEYS
    assert group == {
        "users_group_id": group["users_group_id"],
        "group_name": "devs",
        "group_description": "Developers",
        "active": True,
        "owner": "admin",
        "members": [],
    }
    assert api.call("get_user_group", usergroupid="devs") == group
    assert api.call("get_user_group", usergroupid=group["users_group_id"]) == group


def test_create_errors(api: Api) -> None:
    api.call("create_user_group", group_name="ops")
    assert api.error("create_user_group", group_name="ops") == "user group `ops` already exist"
    assert api.error("create_user_group", group_name="x", owner="ghost") == (
        "user `ghost` does not exist"
    )
    for bad in ("", "a/b", "<b>", "123"):
        assert api.error("create_user_group", group_name=bad) == f"failed to create group `{bad}`"


def test_create_needs_global_permission(api: Api) -> None:
    uid, key = api.new_user("nora")
    nora = api.as_user(key)
    assert nora.error("create_user_group", group_name="x") == "Access was denied to this resource."
    grant_global(uid, "hg.usergroup.create.true")
    group = nora.call("create_user_group", group_name="noras", owner="admin")["user_group"]
    # A non-admin may name another owner (as Kallithea allows).
    assert group["owner"] == "admin"


def test_owner_gets_admin_and_default_user_gets_read(api: Api) -> None:
    uid, key = api.new_user("olga")
    other_uid, other_key = api.new_user("pete")
    group = api.call("create_user_group", group_name="olgas", owner="olga")["user_group"]
    gid = group["users_group_id"]
    olga = api.as_user(key)
    assert olga.call("get_user")["permissions"]["user_groups"] == {"olgas": "usergroup.admin"}
    assert (
        olga.call("update_user_group", usergroupid=gid, description="mine")["user_group"][
            "group_description"
        ]
        == "mine"
    )
    pete = api.as_user(other_key)
    assert pete.call("get_user_group", usergroupid=gid)["group_name"] == "olgas"
    assert pete.error("update_user_group", usergroupid=gid, description="x") == (
        f"user group `{gid}` does not exist"
    )
    assert [g["group_name"] for g in pete.call("get_user_groups")] == ["olgas"]
    grant_on_group(1, gid, "usergroup.none")  # the default user's row: now hidden
    assert pete.call("get_user_groups") == []
    assert pete.error("get_user_group", usergroupid="olgas") == (
        "user group `olgas` does not exist"
    )
    del uid, other_uid


def test_highest_permission_wins(api: Api) -> None:
    uid, key = api.new_user("quin")
    gid = api.call("create_user_group", group_name="q")["user_group"]["users_group_id"]
    grant_on_group(1, gid, "usergroup.none")
    grant_on_group(uid, gid, "usergroup.none")
    quin = api.as_user(key)
    assert quin.call("get_user_groups") == []
    # Membership in a group that has write on "q" raises quin's level.
    holder = api.call("create_user_group", group_name="holders")["user_group"]["users_group_id"]
    api.call("add_user_to_user_group", usergroupid=holder, userid=uid)
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import UserGroupUserGroupToPerm

    with transaction() as session:
        session.add(
            UserGroupUserGroupToPerm(
                target_user_group_id=gid,
                user_group_id=holder,
                permission=queries.get_permission(session, "usergroup.admin"),
            )
        )
    assert (
        quin.call("update_user_group", usergroupid=gid, active=False)["user_group"]["active"]
        is False
    )
    # An inactive holder group gives nothing.
    api.call("update_user_group", usergroupid=holder, active=False)
    assert quin.error("get_user_group", usergroupid=gid) == f"user group `{gid}` does not exist"


def test_update(api: Api) -> None:
    gid = api.call("create_user_group", group_name="old")["user_group"]["users_group_id"]
    api.new_user("rita")
    result = api.call(
        "update_user_group", usergroupid="old", group_name="new", owner="rita", active=False
    )
    assert result["msg"] == f"updated user group ID:{gid} new"
    assert result["user_group"]["owner"] == "rita"
    assert result["user_group"]["active"] is False
    api.call("create_user_group", group_name="taken")
    assert api.error("update_user_group", usergroupid=gid, group_name="taken") == (
        f"failed to update user group `{gid}`"
    )
    assert api.error("update_user_group", usergroupid=gid, owner="ghost") == (
        "user `ghost` does not exist"
    )
    assert api.error("update_user_group", usergroupid="missing") == (
        "user group `missing` does not exist"
    )


def test_delete(api: Api) -> None:
    gid = api.call("create_user_group", group_name="gone")["user_group"]["users_group_id"]
    assert api.call("delete_user_group", usergroupid="gone") == {
        "msg": f"deleted user group ID:{gid} gone",
        "user_group": None,
    }
    assert api.error("delete_user_group", usergroupid="gone") == (
        "user group `gone` does not exist"
    )


def test_delete_refused_while_assigned_to_repositories(api: Api) -> None:
    from repohost.db import queries
    from repohost.db.engine import transaction
    from repohost.db.models import Repository, UserGroupRepoToPerm

    gid = api.call("create_user_group", group_name="assigned")["user_group"]["users_group_id"]
    with transaction() as session:
        for name in ("zeta", "alpha"):
            repo = Repository(repo_name=name, owner_id=2)
            session.add(repo)
            session.flush()
            session.add(
                UserGroupRepoToPerm(
                    users_group_id=gid,
                    repository_id=repo.repo_id,
                    permission=queries.get_permission(session, "repository.read"),
                )
            )
    assert api.error("delete_user_group", usergroupid=gid) == ("User Group assigned to alpha, zeta")


def test_members(api: Api) -> None:
    uid, _key = api.new_user("sam")
    api.call("create_user_group", group_name="team")
    assert api.call("add_user_to_user_group", usergroupid="team", userid="sam") == {
        "success": True,
        "msg": "added member `sam` to user group `team`",
    }
    assert api.call("add_user_to_user_group", usergroupid="team", userid=uid) == {
        "success": False,
        "msg": "User is already in that group",
    }
    members = api.call("get_user_group", usergroupid="team")["members"]
    assert [m["username"] for m in members] == ["sam"]
    assert api.call("remove_user_from_user_group", usergroupid="team", userid="sam") == {
        "success": True,
        "msg": "removed member `sam` from user group `team`",
    }
    assert api.call("remove_user_from_user_group", usergroupid="team", userid="sam") == {
        "success": False,
        "msg": "User wasn't in group",
    }


def test_member_errors_resolve_user_first(api: Api) -> None:
    api.call("create_user_group", group_name="crew")
    assert api.error("add_user_to_user_group", usergroupid="nope", userid="ghost") == (
        "user `ghost` does not exist"
    )
    assert api.error("add_user_to_user_group", usergroupid="nope", userid="admin") == (
        "user group `nope` does not exist"
    )
    assert api.error("remove_user_from_user_group", usergroupid="crew", userid="ghost") == (
        "user `ghost` does not exist"
    )


def test_listing_costs_a_constant_number_of_queries(api: Api) -> None:
    from tests.support.queries import count_queries

    def listing_cost() -> int:
        with count_queries() as counter:
            api.call("get_user_groups")
            api.call("get_users")
        return counter.count

    api.call("create_user_group", group_name="g0")
    api.call("add_user_to_user_group", usergroupid="g0", userid="admin")
    small = listing_cost()
    for i in range(1, 8):
        uid, _key = api.new_user(f"member{i}")
        api.call("create_user_group", group_name=f"g{i}")
        api.call("add_user_to_user_group", usergroupid=f"g{i}", userid=uid)
    assert listing_cost() == small
