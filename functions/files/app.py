"""Lambda entry point for the files GET views: a thin adapter to ``repohost.web.files``."""

from repohost.web.files import handle_event as handler

__all__ = ["handler"]
