"""The permission matrices' tables: one line per role, one cell code per column."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def parse_table(
    table: str, columns: Sequence[str], codes: Collection[str]
) -> dict[str, dict[str, str]]:
    """``{role: {column: cell code}}``; a line with a wrong cell count or code fails."""
    rows = {}
    for line in table.strip().splitlines():
        role, *cells = line.split()
        assert len(cells) == len(columns), line
        assert all(c in codes for c in cells), line
        rows[role] = dict(zip(columns, cells, strict=True))
    return rows
