"""``rpc.discover``: the OpenRPC description of this API.

The name is the one OpenRPC tools look for; Kallithea has no such method, so
its clients never call it and nothing they do changes.
"""

from __future__ import annotations

from typing import Any

from repohost.rpc.context import CallContext
from repohost.rpc.registry import api_method


@api_method(name="rpc.discover", access="any authenticated user")
def discover(ctx: CallContext) -> dict[str, Any]:
    """The OpenRPC document describing every method of this server.

    The same document as ``docs/openrpc.json``; ``kallithea-api help`` reads it.
    """
    from repohost.openrpc import document

    return document()
