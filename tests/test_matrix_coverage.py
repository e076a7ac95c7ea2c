"""Every JSON-RPC method has its column (or row) in exactly one permission matrix table.

A new method, or a new GET view, cannot ship without someone writing down who
may call it: ``repohost.methods._index.METHOD_MODULES`` (generated from the
registered methods) must equal the union of the tables below, with no method
in two of them. Columns named ``method(variant)`` call ``method``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tests import test_gist_permission_matrix as gist_matrix
from tests import test_permission_matrix as server_matrix
from tests import test_repo_permission_matrix as repo_matrix
from tests import test_view_permission_matrix as view_matrix


def _methods(columns: Iterable[str]) -> set[str]:
    return {column.partition("(")[0] for column in columns}


#: Table → the methods it has a column (or row) for.
TABLES: dict[str, set[str]] = {
    "test_permission_matrix.CALLS": _methods(server_matrix.CALLS),
    "test_repo_permission_matrix.PUBLIC/PRIVATE": _methods(repo_matrix.REPO_METHODS),
    "test_repo_permission_matrix.PUBLIC_UPKEEP/PRIVATE_UPKEEP": _methods(
        repo_matrix.UPKEEP_METHODS
    ),
    "test_repo_permission_matrix.GROUPS": _methods(repo_matrix.GROUP_METHODS),
    "test_gist_permission_matrix.PUBLIC/PRIVATE": _methods(gist_matrix.GIST_METHODS),
}


def test_every_method_is_in_exactly_one_matrix_table() -> None:
    from repohost.methods._index import METHOD_MODULES

    homes = Counter(method for methods in TABLES.values() for method in methods)
    assert {m for m in METHOD_MODULES if homes[m] != 1} == set(), homes
    assert set(homes) == set(METHOD_MODULES), "a table names a method that does not exist"


def test_the_index_is_the_registry() -> None:
    """The index the check above reads lists exactly the methods the dispatcher serves."""
    from repohost.methods._index import METHOD_MODULES
    from repohost.rpc.registry import all_methods

    assert set(all_methods()) == set(METHOD_MODULES)


def test_every_view_is_in_the_views_table() -> None:
    from repohost.repos import RESERVED_SEGMENTS
    from repohost.web.feeds import _CONTENT_TYPES

    tails = [tail for tail, _module in view_matrix.VIEWS.values()]
    assert {tail.partition("/")[0] for tail in tails} == RESERVED_SEGMENTS
    assert {t.partition("/")[2] for t in tails if t.startswith("feed/")} == set(_CONTENT_TYPES)
    assert len(set(tails)) == len(tails)
