"""Lambda entry point for ``POST /_admin/api``: a thin adapter to ``repohost.http.api``."""

from repohost.coldstart import loading

with loading():
    from repohost.http.api import handle_event as handler

__all__ = ["handler"]
