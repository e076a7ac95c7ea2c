"""Per-repository webhook secrets: ``set_webhook_secret`` and ``delete_webhook_secret``.

Kallithea has no webhooks; these methods are repohost's (issue 5). A secret
is shown once, in the answer of the call that sets it, and never again: no
other result, error or log line carries it. It is kept in the database as
given, because verifying an HMAC needs the secret itself.
"""

from __future__ import annotations

import secrets
from typing import Any

from repohost import repos
from repohost.rpc.context import CallContext
from repohost.rpc.errors import JSONRPCError
from repohost.rpc.registry import api_method

NOT_FOUND = "repository `<repoid>` does not exist"
MIN_SECRET = 16
MAX_SECRET = 255  # the column
BAD_SECRET = (
    f"webhook secret must be {MIN_SECRET} to {MAX_SECRET} printable ASCII characters,"
    " not starting or ending with a space"
)


def _acceptable(secret: str) -> bool:
    """Printable ASCII survives every provider's settings form and an HTTP header."""
    return (
        MIN_SECRET <= len(secret) <= MAX_SECRET
        and all(" " <= char <= "~" for char in secret)
        and secret == secret.strip()
    )


def hook_path(repo_id: int) -> str:
    """The webhook route of a repository by its permanent id (survives renames)."""
    return f"/_admin/hooks/_{repo_id}"


@api_method(
    access="admin, or repository.admin on the repository",
    errors=(NOT_FOUND, BAD_SECRET),
)
def set_webhook_secret(
    ctx: CallContext, repoid: int | str, secret: str | None = None
) -> dict[str, Any]:
    """Set (or rotate) the secret that signs the repository's push webhooks; shown only here.

    Without ``secret`` a random one is made. The old secret stops working at
    once. The answer gives the URLs to configure at GitHub, GitLab or Gitea:
    ``webhook_url`` uses the permanent ``_<id>`` form, which survives renames.
    """
    repo = repos.repo_with(ctx, repoid, "admin")
    if secret is None:
        secret = secrets.token_urlsafe(32)
    elif not _acceptable(secret):
        raise JSONRPCError(BAD_SECRET)
    repo.webhook_secret = secret
    ctx.session.flush()
    ctx.journal("user_set_webhook_secret", repo)
    return {
        "msg": f"Webhook secret set for repository `{repo.repo_name}`",
        "repository": repo.repo_name,
        "webhook_secret": secret,
        "webhook_url": f"{ctx.base_url}{hook_path(repo.repo_id)}",
        "webhook_url_by_name": f"{ctx.base_url}/_admin/hooks/{repo.repo_name}",
    }


@api_method(access="admin, or repository.admin on the repository", errors=(NOT_FOUND,))
def delete_webhook_secret(ctx: CallContext, repoid: int | str) -> dict[str, Any]:
    """Remove the repository's webhook secret: every webhook for it is refused from now on."""
    repo = repos.repo_with(ctx, repoid, "admin")
    repo.webhook_secret = None
    ctx.session.flush()
    ctx.journal("user_deleted_webhook_secret", repo)
    return {
        "msg": f"Webhook secret removed from repository `{repo.repo_name}`",
        "repository": repo.repo_name,
    }
