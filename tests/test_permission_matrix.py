"""Who may call what: one table of roles × methods, each cell the exact outcome.

Read a row as "this role calling these methods gets …": ``OK`` for a result,
otherwise the exact error string. The world each call runs in is built by
``world()``: a user group ``team`` owned by ``groupadmin``, a ``target`` user,
and one user per role.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY
from tests.support.api import Api

OK = "ok"
DENIED = "Access was denied to this resource."
INVALID_KEY = "Invalid API key"
NOT_SAME = "userid is not the same as your user"
HIDDEN_TEAM = "user group `team` does not exist"
IP_REFUSED = "request from IP:192.0.2.1 not allowed"

#: Each method called once with arguments that succeed for an admin.
CALLS: dict[str, dict[str, Any]] = {
    "test": {"args": "ping"},
    "get_ip": {},
    "show_ip": {},
    "get_server_info": {},
    "get_user": {},
    "get_users": {},
    "create_user": {"username": "newbie", "email": "newbie@example.com"},
    "update_user": {"userid": "target", "firstname": "T"},
    "delete_user": {"userid": "target"},
    "get_user_group": {"usergroupid": "team"},
    "get_user_groups": {},
    "create_user_group": {"group_name": "newgroup"},
    "update_user_group": {"usergroupid": "team", "description": "changed"},
    "delete_user_group": {"usergroupid": "team"},
    "add_user_to_user_group": {"usergroupid": "team", "userid": "target"},
    "remove_user_from_user_group": {"usergroupid": "team", "userid": "target"},
    "get_api_keys": {},
    "create_api_key": {"description": "mine"},
    "get_api_keys(other)": {"userid": "target"},
    "delete_api_key(other)": {"userid": "target", "api_key_id": "TARGET_KEY_ID"},
    "rpc.discover": {},
}

ADMIN_ONLY = {
    "test",
    "get_ip",
    "show_ip",
    "get_server_info",
    "get_users",
    "create_user",
    "update_user",
    "delete_user",
}
SELF_SERVICE = {"get_user", "get_user_groups", "get_api_keys", "create_api_key", "rpc.discover"}


def _regular() -> dict[str, str]:
    outcome = dict.fromkeys(ADMIN_ONLY, DENIED) | dict.fromkeys(SELF_SERVICE, OK)
    outcome |= {
        "get_user_group": OK,  # the default user's usergroup.read
        "create_user_group": DENIED,  # hg.usergroup.create.false by default
        "update_user_group": HIDDEN_TEAM,
        "delete_user_group": HIDDEN_TEAM,
        "add_user_to_user_group": HIDDEN_TEAM,
        "remove_user_from_user_group": HIDDEN_TEAM,
        "get_api_keys(other)": NOT_SAME,
        "delete_api_key(other)": NOT_SAME,
    }
    return outcome


def _group_admin() -> dict[str, str]:
    return _regular() | dict.fromkeys(
        [
            "update_user_group",
            "delete_user_group",
            "add_user_to_user_group",
            "remove_user_from_user_group",
        ],
        OK,
    )


def _refused(error: str) -> dict[str, str]:
    return dict.fromkeys(CALLS, error)


EXPECTED: dict[str, dict[str, str]] = {
    "admin": dict.fromkeys(CALLS, OK),
    "regular": _regular(),
    "groupadmin": _group_admin(),
    "anonymous": _refused(INVALID_KEY),
    "inactive": _refused(INVALID_KEY),
    "expired_key": _refused(INVALID_KEY),
    "ip_refused": _refused(IP_REFUSED),
}


def world(api: Api) -> dict[str, str]:
    """Build the users and the group; return each role's API key."""
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey, UserIpMap

    keys = {"admin": ADMIN_KEY}
    for role in ("regular", "groupadmin", "inactive", "expired_key", "ip_refused", "target"):
        uid, keys[role] = api.new_user(role)
        if role == "inactive":
            api.call("update_user", userid=uid, active=False)
        if role == "expired_key":
            with transaction() as session:
                session.query(UserApiKey).filter_by(user_id=uid).update(
                    {"expires": time.time() - 1}
                )
        if role == "ip_refused":
            with transaction() as session:
                session.add(UserIpMap(user_id=uid, ip_addr="10.0.0.0/8"))
    keys["anonymous"] = api.call("create_api_key", userid="default")["api_key"]
    keys["TARGET_KEY_ID"] = api.call("get_api_keys", userid="target")[0]["api_key_id"]
    api.call("create_user_group", group_name="team", owner="groupadmin")
    api.call("add_user_to_user_group", usergroupid="team", userid="target")
    return keys


CASES = [(role, call) for role in EXPECTED for call in CALLS]


@pytest.mark.parametrize(("role", "call"), CASES, ids=[f"{r}-{c}" for r, c in CASES])
def test_matrix(lambda_api: Api, role: str, call: str) -> None:
    keys = world(lambda_api)
    method = call.removesuffix("(other)")
    ip = "192.0.2.1" if role == "ip_refused" else "127.0.0.1"
    placeholders = {"TARGET_KEY_ID": keys["TARGET_KEY_ID"]}
    args = {k: placeholders.get(v, v) for k, v in CALLS[call].items()}
    envelope = lambda_api.as_user(keys[role], ip=ip).envelope(method, args)
    expected = EXPECTED[role][call]
    if expected == OK:
        assert envelope["error"] is None, envelope
    else:
        assert envelope == {"id": 7, "result": None, "error": expected}


def test_table_covers_every_registered_method() -> None:
    """A new method must get a row here before it ships."""
    from repohost.methods._index import METHOD_MODULES

    areas = {"server", "users", "user_admin", "user_groups", "api_keys", "discovery"}
    covered = {m for m, module in METHOD_MODULES.items() if module in areas}
    assert covered == {c.removesuffix("(other)") for c in CALLS}
