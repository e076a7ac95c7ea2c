"""CloudFormation custom resource that migrates the database on deploy.

``template.yaml``'s ``Migrations`` resource (``Custom::Migrations``) calls this
function on every deploy that changes the code layers or the database:

- ``Create`` / ``Update``: run Alembic to head (``repohost.db.migrate.upgrade``),
  then create the default rows (``repohost.db.bootstrap.ensure_defaults``), with
  the same settings and engine as the API;
- ``Delete``: nothing (the data outlives the stack).

Whatever happens, the outcome goes to the request's pre-signed ``ResponseURL``,
so a failed migration fails the deploy at once instead of leaving CloudFormation
waiting. The reason sent on failure names only the exception type and where the
log is: exception texts can carry connection details, and CloudFormation events
are readable by anyone who can describe the stack.

Invoked directly (an event without ``RequestType``, e.g. ``aws lambda invoke``)
it migrates and returns the outcome instead of answering CloudFormation.

This module is a thin adapter: standard library only, ``repohost`` imported
inside the handler.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

logger = logging.getLogger("repohost.migrate")
logger.setLevel(logging.INFO)

PHYSICAL_RESOURCE_ID = "repohost-migrations"
SEND_ATTEMPTS = 3
SEND_TIMEOUT_SECONDS = 30


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one custom-resource request (or a direct invocation).

    Returns the response that was sent to CloudFormation (or, when invoked
    directly, the outcome), so a caller or test can inspect it.
    """
    request_type = event.get("RequestType")
    if request_type is None:
        return _run_direct()

    physical_id = event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID
    status, reason, data = "SUCCESS", "", {}
    try:
        if request_type in ("Create", "Update"):
            data = _migrate(allow_newer_schema=request_type == "Update")
        elif request_type != "Delete":
            status, reason = "FAILED", f"unknown RequestType {str(request_type)[:40]!r}"
    except Exception as exc:
        logger.exception("migration failed (%s request)", request_type)
        status = "FAILED"
        reason = (
            f"Migration failed: {type(exc).__name__}. See CloudWatch Logs {_log_location(context)}."
        )

    response = {
        "Status": status,
        "Reason": reason or f"{request_type} done",
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": data,
    }
    _send(event.get("ResponseURL", ""), response)
    return response


def _migrate(*, allow_newer_schema: bool) -> dict[str, str]:
    """Upgrade the schema to head and create the default rows.

    With ``allow_newer_schema`` (an Update, which is also what a rollback sends),
    a database already migrated past this code's head is left as it is: that is
    what rolling back a deploy whose migrations succeeded looks like, and failing
    there would leave the stack in UPDATE_ROLLBACK_FAILED. Migrations must
    therefore keep the previous release working (expand, then contract later).
    """
    from repohost.db.bootstrap import ensure_defaults
    from repohost.db.migrate import upgrade

    try:
        upgrade()
    except Exception as exc:
        if not (allow_newer_schema and _is_unknown_revision(exc)):
            raise
        logger.warning("database schema is newer than this code; left unchanged: %s", exc)
        return {"Result": "schema newer than this code; left unchanged"}
    ensure_defaults()
    return {"Result": "migrated"}


def _is_unknown_revision(exc: BaseException) -> bool:
    """Whether Alembic refused because the database names a revision it lacks."""
    return type(exc).__name__ == "CommandError" and "Can't locate revision" in str(exc)


def _run_direct() -> dict[str, Any]:
    """Migrate outside CloudFormation; the outcome is the invocation's result."""
    try:
        return {"Status": "SUCCESS", "Data": _migrate(allow_newer_schema=False)}
    except Exception as exc:
        logger.exception("migration failed (direct invocation)")
        return {"Status": "FAILED", "Reason": f"Migration failed: {type(exc).__name__}"}


def _log_location(context: Any) -> str:
    group = getattr(context, "log_group_name", None)
    stream = getattr(context, "log_stream_name", None)
    if group and stream:
        return f"{group} {stream}"
    return "of the migration function"


def _send(url: str, response: dict[str, Any]) -> bool:
    """PUT the response to the pre-signed URL; never raises.

    A response that cannot be delivered is logged: CloudFormation then fails the
    resource when its ServiceTimeout runs out.
    """
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        logger.error("no usable ResponseURL; response not sent: %s", response["Status"])
        return False
    body = json.dumps(response).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="PUT",
        # The URL is pre-signed without a content type: send an empty one.
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as reply:  # noqa: S310
                logger.info("response %s sent: HTTP %s", response["Status"], reply.status)
                return True
        except (urllib.error.URLError, OSError) as exc:
            # Never log the URL itself: its query string is a credential.
            logger.warning("sending the response failed (attempt %d): %s", attempt, exc)
            if attempt < SEND_ATTEMPTS:
                time.sleep(0.5 * attempt)
    logger.error("response %s could not be sent", response["Status"])
    return False
