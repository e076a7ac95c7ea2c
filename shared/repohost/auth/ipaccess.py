"""Per-user IP whitelists (Kallithea's ``user_ip_map``, facts §4.8).

The allowed set is the anonymous user's entries plus the user's own; an
empty set allows everything. The address checked is the one API Gateway
saw, never a client-supplied header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select

from repohost.auth.keys import DEFAULT_USER
from repohost.db import tables as t
from repohost.db.records import Executor, UserFacts

if TYPE_CHECKING:
    from repohost.db.models import UserIpMap


def parse_network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address or CIDR network; host bits are allowed (``10.0.0.5/24``)."""
    return ipaddress.ip_network(entry.strip(), strict=False)


def ip_range(entry: str) -> list[str]:
    """``[first, last]`` address of an entry, as ``get_ip`` shows it."""
    network = parse_network(entry)
    return [str(network.network_address), str(network.broadcast_address)]


def describe(entry: UserIpMap) -> dict[str, Any]:
    return {"ip_addr": entry.ip_addr, "ip_range": ip_range(entry.ip_addr)}


def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0].strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def applies_to(user_id: Any) -> ColumnElement[bool]:
    """Which ``user_ip_map`` rows apply to ``user_id`` (a value or a column).

    The user's own active entries and the anonymous user's.
    """
    users, entries = t.users.c, t.user_ip_map.c
    anonymous = select(users.user_id).where(users.username == DEFAULT_USER).scalar_subquery()
    return and_(entries.active, or_(entries.user_id == user_id, entries.user_id == anonymous))


def whitelist(db: Executor, user: UserFacts) -> tuple[str, ...]:
    """The entries that apply to ``user`` (``applies_to``)."""
    entries = t.user_ip_map.c
    query = select(entries.ip_addr).where(applies_to(user.user_id)).order_by(entries.ip_id)
    return tuple(db.scalars(query))


def allows(entries: Sequence[str], ip: str) -> bool:
    """Whether ``ip`` is in one of ``entries`` (no entries: every address is)."""
    if not entries:
        return True
    address = _address(ip)
    if address is None:
        return False
    for entry in entries:
        try:
            if address in parse_network(entry):
                return True
        except ValueError:
            continue
    return False
