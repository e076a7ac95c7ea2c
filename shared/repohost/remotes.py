"""Which remotes repohost fetches from (DECISIONS.md, "Remote URLs"), and how they are logged.

A ``clone_uri`` (``create_repo``, ``update_repo``, ``pull``) is refused with
``clone_uri refused: <rule>``, the rule being one of:

- ``only https, http, ssh and git URLs are allowed``
- ``local paths are not allowed`` (a path or ``file://``; allowed only with
  ``allow_local_remotes``, and then only absolute: ``local paths must be absolute``)
- ``scp-like addresses are not supported, write ssh://host/path``
- ``the URL is malformed`` (unparsable, bad port, whitespace or control characters)
- ``the URL has no host``
- ``the URL has a query or fragment``
- ``the host name is not valid`` (ssh only: letters, digits, ``.``, ``_``, ``-``)
- ``the user name is not valid`` (ssh only, same characters)
- ``ssh URLs cannot carry a password`` (ssh authenticates with keys)
- ``the host resolves to a loopback address`` (likewise ``an unspecified``,
  ``a link-local`` (169.254.169.254 included), ``a multicast``, ``a private``,
  ``a non-public`` address); IPv6 forms that embed an IPv4 address
  (IPv4-mapped, IPv4-compatible, 6to4, Teredo, NAT64) are judged by that address too.

Addresses are checked after DNS resolution, every address a name resolves to
(one bad address refuses the name), and again by every connection a fetch opens,
each HTTP redirect hop included: ``connect`` resolves, checks and connects to
exactly the addresses it checked, so a name that resolves differently the
second time (DNS rebinding) gains nothing. Storing a ``clone_uri`` applies the
same rules except that a name that does not resolve at that moment is accepted,
since every fetch checks again. ``allow_private_remotes`` lists networks whose
addresses pass although not public (an internal git server; tests use 127.0.0.1).

Rules never quote the URL, so an error never echoes credentials; ``mask``
gives the form that may be logged.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from repohost.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("https", "http", "ssh", "git")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
LOCAL = "local"

_SSH_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SCP_LIKE = re.compile(r"(?:[^@/]+@)?[^/:]+:")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class RemoteRefused(Exception):
    """A remote breaks a rule; the message is ``clone_uri refused: <rule>``."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"clone_uri refused: {rule}")
        self.rule = rule


@dataclass(frozen=True, slots=True)
class RemotePolicy:
    """What a deployment lets remotes be beyond the public internet."""

    allow_local: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RemotePolicy:
        return cls(
            allow_local=settings.allow_local_remotes,
            allowed_networks=tuple(
                ipaddress.ip_network(net, strict=False) for net in settings.allow_private_remotes
            ),
        )


@dataclass(frozen=True, slots=True)
class Remote:
    """A remote that passed the rules: a URL with its credentials apart, or a local path."""

    scheme: str
    host: str
    port: int | None
    #: The URL's path, or the local directory.
    path: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def local(cls, path: str) -> Remote:
        """A directory on this server (a fork's parent): trusted, so no rule applies."""
        return cls(LOCAL, "", None, path)

    @property
    def is_local(self) -> bool:
        return self.scheme == LOCAL

    @property
    def url(self) -> str:
        """The URL without credentials (what a client may put in messages)."""
        if self.is_local:
            return self.path
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if self.port is None else f"{host}:{self.port}"
        return urlunsplit((self.scheme, netloc, self.path, "", ""))

    def __str__(self) -> str:
        return self.url

    def secrets(self) -> tuple[str, ...]:
        """The credential strings, to scrub from any text that might quote them."""
        return tuple(s for s in (self.username, self.password) if s)


def parse(uri: str, policy: RemotePolicy) -> Remote:
    """Apply every rule that needs no DNS; raise ``RemoteRefused`` naming the first broken one."""
    if not uri or any(ch.isspace() or not ch.isprintable() for ch in uri):
        raise RemoteRefused("the URL is malformed")
    if "://" not in uri:
        if _SCP_LIKE.match(uri) and not uri.startswith("/"):
            raise RemoteRefused("scp-like addresses are not supported, write ssh://host/path")
        return _local(uri, policy)
    try:
        parts = urlsplit(uri)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise RemoteRefused("the URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise RemoteRefused("the URL is malformed")
        return _local(unquote(parts.path), policy)
    if scheme not in SCHEMES:
        raise RemoteRefused("only https, http, ssh and git URLs are allowed")
    if not host:
        raise RemoteRefused("the URL has no host")
    if parts.query or parts.fragment or uri.endswith(("?", "#")):
        raise RemoteRefused("the URL has a query or fragment")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if scheme == "ssh":
        _check_ssh(host, username, password)
    return Remote(scheme, host, port, parts.path or "/", username, password)


def _local(path: str, policy: RemotePolicy) -> Remote:
    if not policy.allow_local:
        raise RemoteRefused("local paths are not allowed")
    if not path.startswith("/"):
        raise RemoteRefused("local paths must be absolute")
    return Remote.local(path)


def _check_ssh(host: str, username: str | None, password: str | None) -> None:
    """The ssh command line gets host and user as arguments: nothing that could be an option."""
    if not _is_ip(host) and (not _SSH_NAME.fullmatch(host) or host.startswith("-")):
        raise RemoteRefused("the host name is not valid")
    if username is not None and (not _SSH_NAME.fullmatch(username) or username.startswith("-")):
        raise RemoteRefused("the user name is not valid")
    if password is not None:
        raise RemoteRefused("ssh URLs cannot carry a password")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --- addresses ------------------------------------------------------------------------------


def _forms(ip: IPAddress) -> list[IPAddress]:
    """The address and every IPv4 address an IPv6 form carries (and may be routed to)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    compatible = ip in _IPV4_COMPATIBLE and int(ip) >= 1 << 24  # not ``::`` or ``::1``
    if compatible or any(ip in net for net in _NAT64):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    # The embedded address first: it names the rule (``::ffff:127.0.0.1`` is loopback).
    return [*(e for e in embedded if e is not None), ip]


def _kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address, or None when it is."""
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def check_address(address: str, policy: RemotePolicy) -> None:
    """Refuse ``address`` unless it is public or inside one of the allowed networks."""
    forms = _forms(ipaddress.ip_address(address))
    nets = policy.allowed_networks
    if any(form.version == net.version and form in net for form in forms for net in nets):
        return
    for form in forms:
        kind = _kind(form)
        if kind is not None:
            article = "an" if kind[0] in "aeiou" else "a"
            raise RemoteRefused(f"the host resolves to {article} {kind} address")


def resolve(host: str, port: int, policy: RemotePolicy) -> list[tuple]:
    """``getaddrinfo`` results for a TCP connection, every address checked.

    Raises ``socket.gaierror`` when the name does not resolve.
    """
    infos = socket.getaddrinfo(host.strip("[]"), port, 0, socket.SOCK_STREAM)
    for info in infos:
        check_address(str(info[4][0]), policy)
    return infos


def connect(
    host: str,
    port: int,
    policy: RemotePolicy,
    timeout: float | None,
    source_address: tuple[str, int] | None = None,
    socket_options: list[tuple[int, int, int]] | None = None,
) -> socket.socket:
    """A TCP connection to one of the checked addresses of ``host`` (tried in order)."""
    error: OSError = OSError(f"no address to connect to for {host}")
    for family, kind, proto, _name, sockaddr in resolve(host, port, policy):
        sock = socket.socket(family, kind, proto)
        try:
            for level, option, value in socket_options or ():
                sock.setsockopt(level, option, value)
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


def check_clone_uri(uri: str, policy: RemotePolicy) -> Remote:
    """Every rule, DNS included; a name that does not resolve now is left to the fetch."""
    remote = parse(uri, policy)
    if not remote.is_local:
        try:
            resolve(remote.host, remote.port or DEFAULT_PORTS[remote.scheme], policy)
        except socket.gaierror:
            pass
        except UnicodeError:  # a label IDNA cannot encode
            raise RemoteRefused("the URL is malformed") from None
    return remote


def mask(uri: str | None) -> str:
    """The URL as it may be logged: no user, password, query or fragment."""
    if not uri:
        return ""
    if "://" not in uri:
        return "*****@" + uri.partition("@")[2] if "@" in uri else uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<malformed URL>"
    netloc = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc:
        netloc = "*****@" + netloc
    query = "*****" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, remote: Remote) -> str:
    """``text`` with the remote's credentials replaced, for logs and stored errors."""
    for secret in remote.secrets():
        text = text.replace(secret, "*****")
    return text
