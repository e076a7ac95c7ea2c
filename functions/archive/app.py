"""Lambda entry point for the archive GET views: a thin adapter to ``repohost.web.archive``."""

from repohost.coldstart import loading

with loading():
    from repohost.web.archive import handle_event as handler

__all__ = ["handler"]
