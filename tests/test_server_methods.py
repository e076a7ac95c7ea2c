"""``test``, ``get_ip``/``show_ip`` and ``get_server_info`` (facts §3.1)."""

from __future__ import annotations

from tests.support.api import Api


def test_get_ip_shows_caller_address_and_whitelist(lambda_api: Api) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import UserIpMap

    uid, _key = lambda_api.new_user("yan")
    with transaction() as session:
        session.add(UserIpMap(user_id=uid, ip_addr="192.168.1.10/24"))
        session.add(UserIpMap(user_id=uid, ip_addr="2001:db8::1"))
    result = lambda_api.as_user(lambda_api.key, ip="203.0.113.5").call("get_ip", userid="yan")
    assert result == {
        "server_ip_addr": "203.0.113.5",
        "user_ips": [
            {"ip_addr": "192.168.1.10/24", "ip_range": ["192.168.1.0", "192.168.1.255"]},
            {"ip_addr": "2001:db8::1", "ip_range": ["2001:db8::1", "2001:db8::1"]},
        ],
    }
    assert lambda_api.call("show_ip") == {"server_ip_addr": "127.0.0.1", "user_ips": []}
    assert lambda_api.error("get_ip", userid="ghost") == "user `ghost` does not exist"


def test_get_server_info(api: Api) -> None:
    info = api.call("get_server_info")
    assert set(info) == {
        "modules",
        "py_version",
        "platform",
        "kallithea_version",
        "repohost_version",
        "git_version",
        "git_path",
    }
    names = [name for name, _version in info["modules"]]
    assert names == sorted(names, key=str.lower)
    assert "SQLAlchemy" in names or "sqlalchemy" in names
    assert info["py_version"].startswith("3.12")
    assert info["kallithea_version"] == "0.7.0"


def test_test_returns_args_unchanged(api: Api) -> None:
    payload = {"nested": [1, 2.5, None, True, {"k": "v"}]}
    assert api.call("test", args=payload) == payload
