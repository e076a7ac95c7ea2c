"""Lambda entry point for the changesets GET views: a thin adapter to ``repohost.web``."""

from repohost.coldstart import loading

with loading():
    from repohost.web.changesets import handle_event as handler

__all__ = ["handler"]
