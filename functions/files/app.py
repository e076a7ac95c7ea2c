"""Lambda entry point for the files GET views: a thin adapter to ``repohost.web.files``."""

from repohost.coldstart import loading

with loading():
    from repohost.web.files import handle_event as handler

__all__ = ["handler"]
