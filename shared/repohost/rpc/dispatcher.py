"""The JSON-RPC dispatcher: bytes in, one well-formed ``{id, result, error}`` out.

It follows Kallithea's processing order (facts §1.1) with DECISIONS.md's
amendments, and knows nothing of any method: it finds them in the registry.
Every call runs in one database transaction, committed only when the result
has been encoded, so an error never leaves anything half-written.

SQLAlchemy Core and the schema are imported with this module, during the
Lambda INIT phase (which runs with a full CPU); method modules, and the ORM
with them when they need it, load on first use.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

from repohost.auth import ipaccess
from repohost.auth.keys import holder_of_key
from repohost.auth.permissions import AuthUser
from repohost.config import Settings, get_settings
from repohost.db.engine import call_transaction
from repohost.rpc.context import CallContext
from repohost.rpc.encoding import EncodedJSON, dumps
from repohost.rpc.errors import ACCESS_DENIED, JSONRPCError
from repohost.rpc.registry import bind_arguments, find_method

log = logging.getLogger("repohost.rpc")

INTERNAL_ERROR = "Internal server error"
DATABASE_UNAVAILABLE = "Service temporarily unavailable: the database cannot be reached"
_RAW_ECHO_LIMIT = 256
_REQUIRED_KEYS = ("api_key", "id", "method", "args")


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """A JSON-RPC call as it arrived over HTTP."""

    body: bytes | None
    source_ip: str
    request_id: str
    #: The key from ``Authorization: Bearer``, if any.
    bearer_key: str | None = None
    #: ``https://host`` the client called.
    base_url: str = ""


def _envelope(request_id: Any, result: Any = None, error: str | None = None) -> str:
    if isinstance(result, EncodedJSON):
        return f'{{"id": {dumps(request_id)}, "result": {result}, "error": null}}'
    return dumps({"id": request_id, "result": result, "error": error})


def _parse(request: RpcRequest, max_bytes: int) -> dict[str, Any]:
    """The request object, or a JSONRPCError carrying the id to echo (always null here)."""
    body = request.body
    if body is None:
        raise JSONRPCError("No Content-Length in request")
    if not body:
        raise JSONRPCError("Content-Length is 0")
    if len(body) > max_bytes:
        raise JSONRPCError(f"Request body too large: the limit is {max_bytes} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raw = repr(body[:_RAW_ECHO_LIMIT]) + ("..." if len(body) > _RAW_ECHO_LIMIT else "")
        reason = "nesting too deep" if isinstance(exc, RecursionError) else str(exc)
        raise JSONRPCError(f"JSON parse error ERR:{reason} RAW:{raw}") from None
    if not isinstance(data, dict):
        raise JSONRPCError("Incorrect JSON query: the body must be a JSON object")
    return data


def too_large(envelope: str) -> str:
    """The error envelope that replaces an answer too large to send uncompressed."""
    echo_id = json.loads(envelope)["id"]
    return _envelope(
        echo_id,
        error=f"Response too large ({len(envelope)} bytes): send Accept-Encoding: gzip",
    )


class _EncodingFailed(Exception):
    """Leaves the transaction, rolling it back, when the result is not JSON."""


def handle(request: RpcRequest) -> str:
    """Answer one JSON-RPC request with the JSON text of its response envelope."""
    settings = get_settings()
    try:
        data = _parse(request, settings.max_body_bytes)
    except JSONRPCError as exc:
        return _envelope(None, error=exc.message)

    echo_id: Any = None
    for key in _REQUIRED_KEYS:
        if key == "api_key" and key not in data and request.bearer_key:
            continue
        if key not in data:
            return _envelope(echo_id, error=f"Incorrect JSON query missing '{key}'")
        if key == "id":
            echo_id = data["id"]

    args = data["args"] if isinstance(data["args"], dict) else {}
    api_key = request.bearer_key if request.bearer_key else data.get("api_key")
    try:
        return _call(request, settings, echo_id, api_key, data["method"], args)
    except (OperationalError, InterfaceError):
        # Connection refused or lost: say so, so clients retry. The pool drops the
        # broken connection, and the next call connects again once the database is back.
        log.exception("database unreachable", extra={"request_id": request.request_id})
        return _envelope(echo_id, error=DATABASE_UNAVAILABLE)
    except Exception:
        log.exception("unexpected failure", extra={"request_id": request.request_id})
        return _envelope(echo_id, error=INTERNAL_ERROR)


def _call(
    request: RpcRequest,
    settings: Settings,
    echo_id: Any,
    api_key: Any,
    method_name: Any,
    args: dict[str, Any],
) -> str:
    ctx: CallContext | None = None
    committed = False
    try:
        with call_transaction() as db:
            holder = holder_of_key(db, api_key)
            if holder is None:
                raise JSONRPCError("Invalid API key")
            if not ipaccess.allows(holder.whitelist, request.source_ip):
                raise JSONRPCError(f"request from IP:{request.source_ip} not allowed")
            user = holder.user
            if not isinstance(method_name, str):
                raise JSONRPCError(f"No such method: {json.dumps(method_name)}")
            if method_name.startswith("_"):
                raise JSONRPCError("Method not allowed")
            method = find_method(method_name)
            if method is None:
                raise JSONRPCError(f"No such method: {method_name}")
            kwargs = bind_arguments(method, args)
            caller = AuthUser(db, user)
            if method.admin_only and not caller.is_admin:
                raise JSONRPCError(ACCESS_DENIED)
            ctx = CallContext(
                db=db,
                caller=caller,
                ip=request.source_ip,
                settings=settings,
                request_id=request.request_id,
                base_url=request.base_url,
            )
            result = method.func(ctx, **kwargs)
            db.flush()
            try:
                answer = _envelope(echo_id, result=result)
            except (TypeError, ValueError):
                log.exception("result not encodable", extra={"request_id": request.request_id})
                raise _EncodingFailed from None
        committed = True
    except JSONRPCError as exc:
        return _envelope(echo_id, error=exc.message)
    except _EncodingFailed:
        return _envelope(echo_id, error="Error encoding response")
    finally:
        if ctx is not None:
            ctx.finish(committed)
    return answer
