"""API-key management (DECISIONS.md): hashes only, hints, expiry, shown once."""

from __future__ import annotations

import time

from tests.conftest import ADMIN_KEY
from tests.support.api import Api


def test_keys_are_listed_without_the_key(api: Api) -> None:
    keys = api.call("get_api_keys")
    assert len(keys) == 1
    assert set(keys[0]) == {"api_key_id", "description", "expires", "created_on", "hint"}
    assert keys[0]["hint"] == ADMIN_KEY[-4:]
    assert keys[0]["expires"] == -1
    assert ADMIN_KEY not in str(keys)


def test_create_use_and_delete_a_key(api: Api) -> None:
    uid, first = api.new_user("uma")
    uma = api.as_user(first)
    created = uma.call("create_api_key", description="build farm", lifetime=60)
    assert set(created) == {"api_key_id", "api_key", "description", "expires"}
    assert created["description"] == "build farm"
    assert time.time() + 3500 < created["expires"] < time.time() + 3700
    second = api.as_user(created["api_key"])
    assert second.call("get_user")["user_id"] == uid
    listed = uma.call("get_api_keys")
    assert [k["hint"] for k in listed] == [first[-4:], created["api_key"][-4:]]
    assert created["api_key"] not in str(listed)
    deleted = uma.call("delete_api_key", api_key_id=created["api_key_id"])
    assert deleted["success"] is True
    assert second.error("get_user") == "Invalid API key"
    assert uma.call("get_user")["user_id"] == uid


def test_expired_key_stops_working(api: Api) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey

    _uid, key = api.new_user("vic")
    extra = api.as_user(key).call("create_api_key", lifetime=1)
    assert api.as_user(extra["api_key"]).call("get_user")
    with transaction() as session:
        session.get(UserApiKey, extra["api_key_id"]).expires = time.time() - 1
    assert api.as_user(extra["api_key"]).error("get_user") == "Invalid API key"
    assert api.as_user(key).call("get_user")


def test_errors(api: Api) -> None:
    uid, key = api.new_user("wes")
    wes = api.as_user(key)
    assert wes.error("create_api_key", lifetime=0) == "lifetime must be -1 or positive"
    assert wes.error("create_api_key", userid="admin") == "userid is not the same as your user"
    assert wes.error("get_api_keys", userid=2) == "userid is not the same as your user"
    admin_key_id = api.call("get_api_keys")[0]["api_key_id"]
    assert wes.error("delete_api_key", api_key_id=admin_key_id) == (
        f"API key `{admin_key_id}` does not exist"
    )
    assert api.call("get_user")  # the admin key survived
    # Admins manage anyone's keys.
    made = api.call("create_api_key", userid=uid, description="by admin")
    assert api.as_user(made["api_key"]).call("get_user")["username"] == "wes"


def test_only_hashes_are_stored(api: Api) -> None:
    from sqlalchemy import select

    from repohost.auth.keys import hash_key
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey

    _uid, key = api.new_user("xena")
    with transaction() as session:
        stored = session.scalars(select(UserApiKey.key_hash)).all()
    assert hash_key(key) in stored
    assert key not in stored
