"""Lambda entry point for ``POST /_admin/hooks/{repo+}``: a thin adapter to repohost.http.hooks."""

from repohost.coldstart import loading

with loading():
    from repohost.http.hooks import handle_event as handler

__all__ = ["handler"]
