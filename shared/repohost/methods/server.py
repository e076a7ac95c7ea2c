"""Server-wide methods: ``test``, ``get_ip``/``show_ip``, ``get_server_info``."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from typing import Any

from repohost import __version__
from repohost.auth.ipaccess import describe
from repohost.rpc.context import CallContext
from repohost.rpc.registry import api_method


@api_method(admin_only=True)
def test(ctx: CallContext, args: Any) -> Any:
    """Echo ``args`` back unchanged (a round-trip check)."""
    return args


@api_method(admin_only=True, aliases=("show_ip",), errors=("user `<userid>` does not exist",))
def get_ip(ctx: CallContext, userid: int | str | None = None) -> dict[str, Any]:
    """The caller's address as the server sees it, and a user's IP whitelist."""
    user = ctx.named_user(userid)
    return {
        "server_ip_addr": ctx.ip,
        "user_ips": [describe(entry) for entry in user.ip_addresses],
    }


def _git() -> tuple[str, str]:
    path = shutil.which("git") or ""
    if not path:
        return "", ""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "", path
    return out.strip().removeprefix("git version "), path


@api_method(admin_only=True)
def get_server_info(ctx: CallContext) -> dict[str, Any]:
    """Versions of the server, its Python and every installed Python distribution."""
    from importlib import metadata

    modules = sorted(
        {(d.metadata["Name"], d.version) for d in metadata.distributions() if d.metadata["Name"]},
        key=lambda item: item[0].lower(),
    )
    git_version, git_path = _git()
    return {
        "modules": [list(m) for m in modules],
        "py_version": sys.version,
        "platform": platform.platform(),
        "kallithea_version": ctx.settings.compat_version,
        "repohost_version": __version__,
        "git_version": git_version,
        "git_path": git_path,
    }
