"""Lambda entry point for the changesets GET views: a thin adapter to ``repohost.web``."""

from repohost.web.changesets import handle_event as handler

__all__ = ["handler"]
