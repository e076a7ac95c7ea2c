"""Counting the SQL statements a piece of code issues (to catch N+1 queries)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event


@dataclass
class Counter:
    count: int = 0


@contextmanager
def count_queries() -> Iterator[Counter]:
    from repohost.db.engine import get_engine

    counter = Counter()

    def on_execute(*_args: Any) -> None:
        counter.count += 1

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
