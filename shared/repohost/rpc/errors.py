"""Errors a method raises to answer the client with a message."""

from __future__ import annotations


class JSONRPCError(Exception):
    """The message becomes the envelope's ``error`` string, verbatim.

    Every string a client can see is one of Kallithea's (facts, Appendix A) or
    one that DECISIONS.md adds; raise this rather than letting anything else
    escape, which the dispatcher turns into ``Internal server error``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


ACCESS_DENIED = "Access was denied to this resource."
"""Answer to a caller lacking the global permission an admin-only method needs."""
