"""User methods: result shapes, success and every error case (facts §2.1, §3.2)."""

from __future__ import annotations

from tests.support.api import Api

USER_KEYS = {"user_id", "username", "firstname", "lastname", "email", "emails", "active", "admin"}
FORBIDDEN = ("api_key", "api_keys", "password", "ip_addresses", "last_login", "extern_name")


def test_get_user_defaults_to_caller_with_permissions(api: Api) -> None:
    user = api.call("get_user")
    assert set(user) == USER_KEYS | {"permissions"}
    assert user["username"] == "admin"
    assert user["permissions"] == {
        "global": ["hg.admin"],
        "repositories": {},
        "repositories_groups": {},
        "user_groups": {},
    }


def test_regular_user_permissions_come_from_the_default_user(api: Api) -> None:
    _uid, key = api.new_user("alice")
    perms = api.as_user(key).call("get_user")["permissions"]
    assert perms["global"] == sorted(
        [
            "group.read",
            "hg.create.repository",
            "hg.extern_activate.auto",
            "hg.fork.repository",
            "hg.register.manual_activate",
            "hg.usergroup.create.false",
            "repository.read",
            "usergroup.read",
        ]
    )


def test_get_user_by_id_and_name(api: Api) -> None:
    uid, _key = api.new_user("bob", firstname="Bob", lastname="B")
    by_id = api.call("get_user", userid=uid)
    assert by_id == api.call("get_user", userid="bob") == api.call("get_user", userid=str(uid))
    assert by_id["firstname"] == "Bob"
    assert api.error("get_user", userid="nobody") == "user `nobody` does not exist"
    assert api.error("get_user", userid=999) == "user `999` does not exist"


def test_non_admin_may_only_get_themselves_by_numeric_id(api: Api) -> None:
    uid, key = api.new_user("carl")
    carl = api.as_user(key)
    assert carl.call("get_user", userid=uid)["username"] == "carl"
    assert carl.error("get_user", userid="carl") == "userid is not the same as your user"
    assert carl.error("get_user", userid=1) == "userid is not the same as your user"


def test_get_users_excludes_default_and_is_sorted(api: Api) -> None:
    api.new_user("zed")
    api.new_user("amy")
    names = [u["username"] for u in api.call("get_users")]
    assert names == ["admin", "amy", "zed"]
    for user in api.call("get_users"):
        assert set(user) == USER_KEYS


def test_create_user_result_and_first_key(api: Api) -> None:
    result = api.call(
        "create_user",
        username="dora",
        email="dora@example.com",
        password="s3cret",
        firstname="Dora",
        lastname="Explorer",
        admin=True,
    )
    assert set(result) == {"msg", "user", "api_key"}
    assert result["msg"] == "created new user `dora`"
    assert set(result["user"]) == USER_KEYS
    assert result["user"]["admin"] is True
    assert len(result["api_key"]) == 40
    assert api.as_user(result["api_key"]).call("get_user")["username"] == "dora"
    for forbidden in FORBIDDEN:
        assert forbidden not in result["user"]


def test_create_user_errors(api: Api) -> None:
    api.new_user("eve", email="eve@example.com")
    assert api.error("create_user", username="eve", email="x@example.com") == (
        "user `eve` already exist"
    )
    assert api.error("create_user", username="eve2", email="EVE@example.com") == (
        "email `EVE@example.com` already exist"
    )
    for bad in ("", "bad name", "../x", "_admin", "12345", "-x", "a" * 300):
        assert api.error("create_user", username=bad, email=f"{len(bad)}@example.com") == (
            f"failed to create user `{bad}`"
        )
    assert api.error("create_user", username="fred", email="not-an-email") == (
        "failed to create user `fred`"
    )


def test_update_user(api: Api) -> None:
    uid, _key = api.new_user("gina")
    result = api.call("update_user", userid="gina", username="gina2", lastname="G", admin=True)
    assert result["msg"] == f"updated user ID:{uid} gina2"
    assert result["user"]["username"] == "gina2"
    assert result["user"]["lastname"] == "G"
    assert result["user"]["admin"] is True
    # Omitted fields keep their values.
    assert api.call("update_user", userid=uid)["user"]["lastname"] == "G"


def test_update_user_errors(api: Api) -> None:
    uid, _key = api.new_user("hank")
    api.new_user("ivy")
    assert api.error("update_user", userid="nope") == "user `nope` does not exist"
    assert api.error("update_user", userid="default", firstname="x") == (
        "editing default user is forbidden"
    )
    assert api.error("update_user", userid=uid, username="ivy") == (
        f"failed to update user `{uid}`"
    )
    assert api.error("update_user", userid="hank", email="ivy@example.com") == (
        "failed to update user `hank`"
    )
    assert api.call("get_user", userid=uid)["username"] == "hank"


def test_update_password_changes_hash(api: Api) -> None:
    from repohost.auth.passwords import check_password
    from repohost.db.engine import transaction
    from repohost.db.models import User

    uid, _key = api.new_user("jack", password="old")
    api.call("update_user", userid=uid, password="new")
    with transaction() as session:
        stored = session.get(User, uid).password
    assert check_password("new", stored)
    assert not check_password("old", stored)


def test_delete_user(api: Api) -> None:
    uid, key = api.new_user("kim")
    assert api.call("delete_user", userid="kim") == {
        "msg": f"deleted user ID:{uid} kim",
        "user": None,
    }
    assert api.error("get_user", userid=uid) == f"user `{uid}` does not exist"
    assert api.as_user(key).error("get_user") == "Invalid API key"


def test_delete_user_errors(api: Api) -> None:
    assert api.error("delete_user", userid="nope") == "user `nope` does not exist"
    assert api.error("delete_user", userid="default") == "failed to delete user ID:1 default"
    uid, _key = api.new_user("lea")
    api.call("create_user_group", group_name="owned", owner="lea")
    assert api.error("delete_user", userid=uid) == f"failed to delete user ID:{uid} lea"


def test_user_changes_are_journaled(api: Api) -> None:
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import JournalEntry

    uid, _key = api.new_user("mia")
    api.call("update_user", userid=uid, firstname="M")
    api.call("delete_user", userid=uid)
    with transaction() as session:
        actions = session.scalars(select(JournalEntry.action).order_by(JournalEntry.user_log_id))
        assert list(actions) == [
            "admin_created_user:mia",
            "admin_updated_user:mia",
            "admin_deleted_user:mia",
        ]
