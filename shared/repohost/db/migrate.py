"""Apply the Alembic migrations: on deploy (custom resource) and on ``make run``."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: object) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run again and from several places."""
    from alembic import command

    from repohost.db.engine import get_engine

    engine = engine or get_engine()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two deploys (or a deploy and a test) migrating at once wait for each other.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7283541)")
        command.upgrade(_config(connection), revision)


def revision(message: str, engine: Engine) -> None:
    """Autogenerate a new migration from the models (a developer tool)."""
    from alembic import command

    with engine.begin() as connection:
        command.revision(_config(connection), message=message, autogenerate=True)
