"""Structured (JSON lines) logging for CloudWatch, with no secrets in it.

Nothing here logs request bodies, query strings or headers: those carry API
keys. Call sites pass only what is safe through ``extra``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

_SAFE_EXTRAS = ("request_id", "method", "status", "duration_ms", "repo", "user")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _SAFE_EXTRAS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging() -> None:
    """Once per process: JSON lines on stderr at ``LOG_LEVEL`` (default INFO)."""
    root = logging.getLogger("repohost")
    if root.handlers:
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    root.propagate = False
