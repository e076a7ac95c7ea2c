"""Lambda entry point for the feeds GET views: a thin adapter to ``repohost.web.feeds``."""

from repohost.coldstart import loading

with loading():
    from repohost.web.feeds import handle_event as handler

__all__ = ["handler"]
