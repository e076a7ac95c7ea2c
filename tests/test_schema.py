"""The schema is written once, in ``repohost.db.tables``: the ORM classes map
those tables, and the migrations must build exactly them."""

from __future__ import annotations

import pytest


def test_each_model_annotates_exactly_the_columns_of_its_table() -> None:
    """The annotations are for the type checker alone: a typo or a forgotten
    column would pass unnoticed by SQLAlchemy."""
    from repohost.db.models import Base

    for mapper in Base.registry.mappers:
        model = mapper.class_
        annotated = set(model.__annotations__) - set(mapper.relationships.keys())
        assert annotated == set(mapper.local_table.c.keys()), model.__name__


# SQLite cannot reflect the lower(name) indexes; alembic says so and skips them.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_the_migrations_build_the_schema_the_tables_describe(migrated: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from repohost.db.engine import get_engine
    from repohost.db.tables import metadata

    with get_engine().connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


@pytest.mark.parametrize("ident", [7, "7", "bob", "0"])
def test_identifiers_are_keys_or_names(ident: object) -> None:
    from repohost.db.records import identify

    assert identify(ident) == (int(ident) if str(ident).isdigit() else ident)


@pytest.mark.parametrize("ident", [None, True, 1.5, -1, 2**31, "99999999999", b"bob", []])
def test_identifiers_that_can_name_nothing(ident: object) -> None:
    from repohost.db.records import identify

    assert identify(ident) is None
