"""The JSON-RPC envelope: every rule and error string of facts §1, as DECISIONS.md amends it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ADMIN_KEY
from tests.support.api import Api


def post(api: Api, body: bytes | None, **headers: str) -> dict:
    reply = api.transport.post(body, {"Content-Type": "text/plain", **headers})
    assert reply.status == 200
    assert reply.headers.get("Content-Type", reply.headers.get("content-type")) == (
        "application/json"
    )
    return reply.envelope


def request(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_success_envelope_echoes_any_id(api: Api) -> None:
    for request_id in (1, "abc", None, {"x": [1]}, 2.5):
        body = request(id=request_id, api_key=ADMIN_KEY, method="test", args={"args": "x"})
        assert post(api, body) == {"id": request_id, "result": "x", "error": None}


def test_args_that_are_not_an_object_count_as_empty(api: Api) -> None:
    for args in (None, 5, [1, 2], "text"):
        envelope = post(api, request(id=1, api_key=ADMIN_KEY, method="get_user", args=args))
        assert envelope["error"] is None
        assert envelope["result"]["username"] == "admin"


def test_test_method_round_trips_strings(api: Api) -> None:
    import string

    for value in (string.ascii_letters, string.whitespace, string.printable, "żółw ☃ 🐢"):
        assert api.call("test", args=value) == value


def test_empty_body(api: Api) -> None:
    envelope = post(api, b"")
    assert envelope == {"id": None, "result": None, "error": "Content-Length is 0"}


def test_json_parse_error(api: Api) -> None:
    envelope = post(api, b"{not json")
    assert envelope["id"] is None
    assert envelope["error"].startswith("JSON parse error ERR:")
    assert "RAW:b'{not json'" in envelope["error"]


@pytest.mark.parametrize(
    ("fields", "missing", "echo"),
    [
        ({"id": 3, "method": "test", "args": {}}, "api_key", None),
        ({"api_key": ADMIN_KEY, "method": "test", "args": {}}, "id", None),
        ({"api_key": ADMIN_KEY, "id": 3, "args": {}}, "method", 3),
        ({"api_key": ADMIN_KEY, "id": 3, "method": "test"}, "args", 3),
    ],
)
def test_missing_keys(api: Api, fields: dict, missing: str, echo: object) -> None:
    envelope = post(api, request(**fields))
    assert envelope == {
        "id": echo,
        "result": None,
        "error": f"Incorrect JSON query missing '{missing}'",
    }


@pytest.mark.parametrize("key", ["", "123456", "z" * 40, "b" * 40, 12, None, ["a" * 40]])
def test_invalid_api_key(api: Api, key: object) -> None:
    envelope = post(api, request(id=1, api_key=key, method="test", args={}))
    assert envelope == {"id": 1, "result": None, "error": "Invalid API key"}


def test_bearer_key_is_accepted_without_body_key(api: Api) -> None:
    body = request(id=1, method="get_user", args={})
    envelope = post(api, body, Authorization=f"Bearer {ADMIN_KEY}")
    assert envelope["result"]["username"] == "admin"


def test_bearer_key_wins_over_body_key(api: Api) -> None:
    body = request(id=1, api_key="0" * 40, method="get_user", args={})
    assert post(api, body, Authorization=f"Bearer {ADMIN_KEY}")["error"] is None
    body = request(id=1, api_key=ADMIN_KEY, method="get_user", args={})
    assert post(api, body, Authorization="Bearer " + "0" * 40)["error"] == "Invalid API key"


def test_method_lookup_errors(api: Api) -> None:
    assert api.error("_private") == "Method not allowed"
    assert api.error("__init__") == "Method not allowed"
    assert api.error("no_such_thing") == "No such method: no_such_thing"
    assert api.envelope(5)["error"] == "No such method: 5"
    assert api.envelope(None)["error"] == "No such method: null"


def test_missing_argument_names_the_last_declared_required_one(api: Api) -> None:
    assert api.error("add_user_to_user_group") == "Missing non optional `userid` arg in JSON DATA"
    assert (
        api.error("add_user_to_user_group", userid=1)
        == "Missing non optional `usergroupid` arg in JSON DATA"
    )


def test_unknown_arguments_are_refused(api: Api) -> None:
    assert api.error("get_user", bogus=1) == "Unknown `bogus` arg in JSON DATA"
    assert api.error("get_users", a=1, b=2) == "Unknown `a`, `b` arg in JSON DATA"
    # Missing arguments are reported before unknown ones.
    assert api.error("get_user_group", x=1) == "Missing non optional `usergroupid` arg in JSON DATA"


def test_explicit_null_means_not_given(api: Api) -> None:
    assert api.call("get_user", userid=None)["username"] == "admin"


def test_wrong_argument_type_is_a_clear_error(api: Api) -> None:
    assert api.error("create_user", username=["x"], email="x@example.com") == (
        "Incorrect type of `username` arg in JSON DATA: expected a string"
    )
    assert api.error("update_user", userid=2, active="maybe") == (
        "Incorrect type of `active` arg in JSON DATA: expected a boolean"
    )


def test_strings_spelling_booleans_are_booleans(api: Api) -> None:
    """kallithea-api sends every value as a string; "false" must not mean true."""
    user_id, _key = api.new_user("carol")
    assert api.call("update_user", userid=str(user_id), active="false")["user"]["active"] is False
    assert api.call("update_user", userid=user_id, active="true")["user"]["active"] is True


def test_non_object_json_body(api: Api) -> None:
    for body in (b"[1,2]", b"5", b'"text"', b"null"):
        envelope = post(api, body)
        assert envelope["id"] is None
        assert envelope["error"] == "Incorrect JSON query: the body must be a JSON object"


def test_non_utf8_body(api: Api) -> None:
    envelope = post(api, b'{"id": 1, "api_key": "\xff\xfe"}')
    assert envelope["error"].startswith("JSON parse error ERR:")


def test_deeply_nested_json(api: Api) -> None:
    depth = 100_000
    body = b'{"id":1,"api_key":"' + ADMIN_KEY.encode() + b'","method":"test","args":'
    body += b"[" * depth + b"]" * depth + b"}"
    envelope = post(api, body)
    assert envelope["error"].startswith("JSON parse error ERR:")


def test_body_over_the_limit(api: Api) -> None:
    big = request(id=1, api_key=ADMIN_KEY, method="test", args="x" * (1024 * 1024))
    envelope = post(api, big)
    assert envelope == {
        "id": None,
        "result": None,
        "error": "Request body too large: the limit is 1048576 bytes",
    }


def test_non_admin_calling_admin_method(api: Api) -> None:
    _uid, key = api.new_user("dave")
    assert api.as_user(key).error("get_users") == "Access was denied to this resource."


def test_request_id_header(api: Api) -> None:
    api.call("get_user")
    assert api.last is not None
    headers = {k.lower(): v for k, v in api.last.headers.items()}
    assert headers.get("x-request-id")


def test_inactive_user_and_default_user_cannot_authenticate(api: Api) -> None:
    uid, key = api.new_user("erin")
    assert api.as_user(key).call("get_user")["username"] == "erin"
    api.call("update_user", userid=uid, active=False)
    assert api.as_user(key).error("get_user") == "Invalid API key"
    default_key = api.call("create_api_key", userid="default")["api_key"]
    assert api.as_user(default_key).error("get_user") == "Invalid API key"


def test_ip_whitelist_refusal(lambda_api: Api) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import UserIpMap

    uid, key = lambda_api.new_user("frank")
    with transaction() as session:
        session.add(UserIpMap(user_id=uid, ip_addr="10.1.0.0/16"))
    frank = lambda_api.as_user(key, ip="10.1.2.3")
    assert frank.call("get_user")["username"] == "frank"
    outsider = lambda_api.as_user(key, ip="192.0.2.7")
    assert outsider.error("get_user") == "request from IP:192.0.2.7 not allowed"
    # The admin has no whitelist of its own, so it is not restricted.
    assert lambda_api.as_user(ADMIN_KEY, ip="192.0.2.7").call("get_user")["admin"] is True


def test_default_user_whitelist_applies_to_everyone(lambda_api: Api) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import UserIpMap

    with transaction() as session:
        session.add(UserIpMap(user_id=1, ip_addr="127.0.0.0/8"))
    assert lambda_api.as_user(ADMIN_KEY, ip="127.0.0.9").call("get_user")
    assert lambda_api.as_user(ADMIN_KEY, ip="198.51.100.1").error("get_user") == (
        "request from IP:198.51.100.1 not allowed"
    )


def test_datetime_encoding() -> None:
    import datetime as dt

    from repohost.rpc.encoding import dumps

    assert dumps(dt.datetime(2015, 8, 31, 14, 55, 19, 42123)) == '"2015-08-31T14:55:19.042"'
    assert dumps(dt.datetime(2017, 3, 28, 9, 9, 3)) == '"2017-03-28T09:09:03"'
    assert dumps(dt.date(2017, 3, 28)) == '"2017-03-28"'
    assert dumps({"a": "é"}) == '{"a": "\\u00e9"}'


def test_unexpected_failure_is_internal_server_error(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from repohost.methods import users

    def explode(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom with secret details")

    monkeypatch.setattr(users, "user_object", explode)
    envelope = api.envelope("get_users", {})
    assert envelope["error"] == "Internal server error"
    assert "boom" not in json.dumps(envelope)


def test_unencodable_result_rolls_back(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from repohost.rpc import registry

    create_user = registry.find_method("create_user")
    assert create_user is not None

    def create_then_return_garbage(ctx: object, **kwargs: object) -> object:
        create_user.func(ctx, **kwargs)
        return object()

    broken = dataclasses.replace(create_user, func=create_then_return_garbage)
    monkeypatch.setitem(registry._methods, "create_user", broken)
    assert api.error("create_user", username="ghost", email="g@example.com") == (
        "Error encoding response"
    )
    monkeypatch.undo()
    assert api.error("get_user", userid="ghost") == "user `ghost` does not exist"


def test_large_answers_are_gzipped_for_clients_that_accept_it(api: Api) -> None:
    import gzip

    big = "x" * 200_000
    body = request(id=1, api_key=ADMIN_KEY, method="test", args={"args": big})
    reply = api.transport.post(body, {"Accept-Encoding": "gzip"})
    headers = {k.lower(): v for k, v in reply.headers.items()}
    assert headers.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(reply.body))["result"] == big
    plain = api.transport.post(body, {})
    assert "content-encoding" not in {k.lower() for k in plain.headers}
    assert plain.envelope["result"] == big


def test_answer_too_large_to_send_uncompressed(
    lambda_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.http import api as endpoint

    monkeypatch.setattr(endpoint, "PAYLOAD_LIMIT", 100_000)
    envelope = lambda_api.envelope("test", {"args": "y" * 150_000}, id=9)
    assert envelope["id"] == 9
    assert envelope["result"] is None
    assert envelope["error"].startswith("Response too large (")
    assert envelope["error"].endswith("bytes): send Accept-Encoding: gzip")
