"""The remote-URL rules (DECISIONS.md "Remote URLs"): schemes, local paths, addresses after DNS."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import pytest

from repohost.config import settings_from_env
from repohost.remotes import (
    Remote,
    RemotePolicy,
    RemoteRefused,
    check_clone_uri,
    connect,
    mask,
    parse,
    scrub,
)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
LOOPBACK_ONLY = RemotePolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


def refusal(uri: str, policy: RemotePolicy | None = None) -> str:
    with pytest.raises(RemoteRefused) as caught:
        check_clone_uri(uri, policy or RemotePolicy())
    return str(caught.value)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[str]]], None]:
    """Answer ``getaddrinfo`` for made-up names from a table; no resolver is asked."""
    real = socket.getaddrinfo

    def install(table: dict[str, list[str]]) -> None:
        def lookup(host: str, port: object, *args: object, **kw: object) -> list[tuple]:
            if host not in table:
                return real(host, port, *args, **kw)  # literals: no resolver involved
            if not table[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port) if ":" not in ip else (ip, port, 0, 0),
                )
                for ip in table[host]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", lookup)

    return install


@pytest.mark.parametrize(
    ("uri", "rule"),
    [
        ("file:///etc/passwd", "local paths are not allowed"),
        ("/etc", "local paths are not allowed"),
        ("srv/repos/x", "local paths are not allowed"),
        (
            "git@github.com:org/repo.git",
            "scp-like addresses are not supported, write ssh://host/path",
        ),
        ("ftp://example.com/x.git", "only https, http, ssh and git URLs are allowed"),
        ("git+ssh://example.com/x.git", "only https, http, ssh and git URLs are allowed"),
        ("http:///x.git", "the URL has no host"),
        ("http://example.com/x.git?token=1", "the URL has a query or fragment"),
        ("http://example.com/x.git#frag", "the URL has a query or fragment"),
        ("http://example.com:99999/x.git", "the URL is malformed"),
        ("http://exa mple.com/x.git", "the URL is malformed"),
        ("http://example.com/x\n.git", "the URL is malformed"),
        ("", "the URL is malformed"),
        ("ssh://-oProxyCommand=sh/x", "the host name is not valid"),
        ("ssh://-oProxyCommand=sh@example.com/x", "the user name is not valid"),
        ("ssh://git:pw@example.com/x", "ssh URLs cannot carry a password"),
        ("http://127.0.0.1/x.git", "the host resolves to a loopback address"),
        ("http://127.1/x.git", "the host resolves to a loopback address"),
        ("http://2130706433/x.git", "the host resolves to a loopback address"),
        ("http://0x7f000001/x.git", "the host resolves to a loopback address"),
        ("http://localhost/x.git", "the host resolves to a loopback address"),
        ("https://[::1]/x.git", "the host resolves to a loopback address"),
        ("https://[::ffff:127.0.0.1]/x.git", "the host resolves to a loopback address"),
        ("https://[::ffff:7f00:1]/x.git", "the host resolves to a loopback address"),
        ("https://[64:ff9b::127.0.0.1]/x.git", "the host resolves to a loopback address"),
        ("https://[2002:7f00:1::]/x.git", "the host resolves to a loopback address"),
        ("https://[::127.0.0.1]/x.git", "the host resolves to a loopback address"),
        ("http://0.0.0.0/x.git", "the host resolves to an unspecified address"),
        ("http://[::]/x.git", "the host resolves to an unspecified address"),
        ("http://169.254.169.254/latest/meta-data", "the host resolves to a link-local address"),
        ("http://[fe80::1]/x.git", "the host resolves to a link-local address"),
        ("http://10.0.0.8/x.git", "the host resolves to a private address"),
        ("git://172.16.5.4/x.git", "the host resolves to a private address"),
        ("ssh://git@192.168.1.1/x.git", "the host resolves to a private address"),
        ("https://[fd00:ec2::254]/x.git", "the host resolves to a private address"),
        ("http://224.0.0.1/x.git", "the host resolves to a multicast address"),
        ("http://100.64.0.1/x.git", "the host resolves to a non-public address"),
    ],
)
def test_refused(uri: str, rule: str) -> None:
    assert refusal(uri) == f"clone_uri refused: {rule}"


def test_public_urls_pass_and_keep_credentials_apart(fake_dns: Callable) -> None:
    fake_dns({"git.example": [PUBLIC_V4, PUBLIC_V6]})
    remote = check_clone_uri("https://bob:p%40ss@git.example:8443/team/x.git", RemotePolicy())
    assert remote == Remote("https", "git.example", 8443, "/team/x.git", "bob", "p@ss")
    assert remote.url == "https://git.example:8443/team/x.git"
    ssh = check_clone_uri("ssh://git@git.example/team/x.git", RemotePolicy())
    assert (ssh.scheme, ssh.username, ssh.password) == ("ssh", "git", None)
    assert check_clone_uri(f"git://[{PUBLIC_V6}]/x.git", RemotePolicy()).host == PUBLIC_V6


def test_a_name_resolving_to_loopback_is_refused(fake_dns: Callable) -> None:
    fake_dns({"mirror.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]})
    assert refusal("https://mirror.example/x.git") == (
        "clone_uri refused: the host resolves to a loopback address"
    )
    assert refusal("https://metadata.example/") == (
        "clone_uri refused: the host resolves to a link-local address"
    )


def test_every_address_of_a_name_is_checked(fake_dns: Callable) -> None:
    fake_dns({"mixed.example": [PUBLIC_V4, "10.1.2.3"], "v6.example": [PUBLIC_V4, "::1"]})
    assert refusal("https://mixed.example/x.git").endswith("a private address")
    assert refusal("https://v6.example/x.git").endswith("a loopback address")


def test_a_name_that_does_not_resolve_is_left_to_the_fetch(fake_dns: Callable) -> None:
    fake_dns({"gone.example": []})
    assert check_clone_uri("https://gone.example/x.git", RemotePolicy()).host == "gone.example"


def test_local_paths_only_when_allowed_and_absolute() -> None:
    local = RemotePolicy(allow_local=True)
    assert check_clone_uri("/srv/git/x.git", local) == Remote.local("/srv/git/x.git")
    assert check_clone_uri("file:///srv/git/x%20y.git", local).path == "/srv/git/x y.git"
    assert refusal("srv/git/x.git", local) == "clone_uri refused: local paths must be absolute"
    assert refusal("file://otherhost/x.git", local) == "clone_uri refused: the URL is malformed"


def test_allowed_networks_let_exactly_their_addresses_through() -> None:
    assert check_clone_uri("http://127.0.0.1:9/x.git", LOOPBACK_ONLY).host == "127.0.0.1"
    assert check_clone_uri("http://[::ffff:127.0.0.1]/x.git", LOOPBACK_ONLY).host
    assert refusal("http://127.0.0.2/x.git", LOOPBACK_ONLY).endswith("a loopback address")
    assert refusal("http://[::1]/x.git", LOOPBACK_ONLY).endswith("a loopback address")
    assert refusal("http://169.254.169.254/", LOOPBACK_ONLY).endswith("a link-local address")
    anything = tuple(map(ipaddress.ip_network, ("0.0.0.0/0", "::/0")))
    everything = RemotePolicy(allowed_networks=anything)
    assert check_clone_uri("http://169.254.169.254/", everything).host == "169.254.169.254"


def test_settings_spell_the_policy() -> None:
    def policy(**env: str) -> RemotePolicy:
        return RemotePolicy.from_settings(settings_from_env(env))

    assert policy() == RemotePolicy()
    assert policy(REPOHOST_ALLOW_PRIVATE_REMOTES="false") == RemotePolicy()
    assert policy(REPOHOST_ALLOW_PRIVATE_REMOTES="true").allowed_networks == (
        ipaddress.ip_network("0.0.0.0/0"),
        ipaddress.ip_network("::/0"),
    )
    assert policy(REPOHOST_ALLOW_PRIVATE_REMOTES="10.1.0.0/16, 127.0.0.1").allowed_networks == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("127.0.0.1/32"),
    )
    assert policy(REPOHOST_ALLOW_LOCAL_REMOTES="1").allow_local is True
    with pytest.raises(ValueError):
        policy(REPOHOST_ALLOW_PRIVATE_REMOTES="not-a-network")


def test_connect_refuses_before_any_packet_is_sent() -> None:
    """The check sits in front of ``connect``: a listening loopback socket sees nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        with pytest.raises(RemoteRefused, match="loopback"):
            connect("127.0.0.1", port, RemotePolicy(), timeout=1)
        with pytest.raises(TimeoutError):
            listener.accept()
        with connect("127.0.0.1", port, LOOPBACK_ONLY, timeout=1):
            listener.accept()[0].close()


def test_no_error_or_logged_form_quotes_credentials() -> None:
    secret = "hunter2-very-secret"
    for uri in (
        f"https://alice:{secret}@127.0.0.1/x.git",
        f"ftp://alice:{secret}@example.com/x.git",
        f"http://alice:{secret}@example.com/x.git?{secret}",
        f"ssh://alice:{secret}@example.com/x.git",
    ):
        assert secret not in refusal(uri)
        assert secret not in mask(uri)
    assert mask(f"https://{secret}@example.com/x.git?private_token={secret}#x") == (
        "https://*****@example.com/x.git?*****"
    )
    assert mask(f"{secret}@example.com:x.git") == "*****@example.com:x.git"
    remote = parse(f"https://alice:{secret}@example.com/x.git", RemotePolicy())
    assert secret not in remote.url and secret not in str(remote)
    assert scrub(f"401 for alice:{secret}", remote) == "401 for *****:*****"
