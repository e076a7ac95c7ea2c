"""Log hygiene: every log line of the whole test run is kept and checked for secrets.

Tests (through ``tests.support.api``) remember every credential they send or
receive: API keys, passwords, webhook secrets, the password of a clone URI.
When the run ends, any log line containing one of them fails the run.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any

_MIN_LENGTH = 8
_secrets: set[str] = set()
_lines: list[str] = []

SECRET_FIELDS = frozenset({"password", "secret", "api_key", "webhook_secret"})


def remember(value: object) -> None:
    """Treat ``value`` as a secret from now on (short strings are too common to check)."""
    if isinstance(value, str) and len(value) >= _MIN_LENGTH:
        _secrets.add(value)


def remember_url(url: object) -> None:
    if isinstance(url, str):
        try:
            password = urllib.parse.urlsplit(url).password
        except ValueError:
            return
        remember(password)


def remember_in(data: Any) -> None:
    """Remember the secrets in a request's args or a method's result, however nested."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SECRET_FIELDS:
                remember(value)
            elif key == "clone_uri":
                remember_url(value)
            else:
                remember_in(value)
    elif isinstance(data, list):
        for item in data:
            remember_in(item)


class _Keeper(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
        except Exception:  # a broken format string is still a line to check
            line = str(record.msg)
        if record.exc_info:
            line += "\n" + logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        _lines.append(f"{record.name}: {line}")


_keeper = _Keeper(level=logging.DEBUG)


def install() -> None:
    for name in ("", "repohost"):
        logging.getLogger(name).addHandler(_keeper)


def leaks() -> list[str]:
    """Log lines that contain a remembered secret (the secret itself masked)."""
    found = []
    for line in _lines:
        for secret in _secrets:
            if secret in line:
                found.append(line.replace(secret, secret[:2] + "…" + secret[-2:])[:300])
    return found


def line_count() -> int:
    return len(_lines)
