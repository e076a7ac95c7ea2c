"""One database engine per process, reused across warm Lambda invocations.

On AWS the URL names host, port and database only; the credentials come from
Secrets Manager (fetched once per cold start) or, with IAM auth, from a fresh
RDS auth token per new connection. boto3 is imported only on those paths, and
``sqlalchemy.orm`` only when something first asks for a session (``Database``).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Result, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from repohost.config import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _secret_credentials(secret_arn: str) -> tuple[str, str]:
    import boto3  # only on AWS, only on a cold start

    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    secret = json.loads(value["SecretString"])
    return secret["username"], secret["password"]


def build_url(settings: Settings) -> URL:
    url = make_url(settings.database_url)
    if settings.db_secret_arn:
        username, password = _secret_credentials(settings.db_secret_arn)
        url = url.set(username=username, password=None if settings.db_iam_auth else password)
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, start transactions (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Take the write lock up front: a deferred transaction that later writes can
    # fail at once with "database is locked" instead of waiting its turn.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _iam_token_provider(url: URL) -> Any:
    """Give each new connection a fresh RDS IAM token (tokens live 15 minutes)."""

    def provide(_dialect: Any, _conn_rec: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        import boto3

        cparams["password"] = boto3.client("rds").generate_db_auth_token(
            DBHostname=url.host, Port=url.port or 5432, DBUsername=url.username
        )

    return provide


def make_engine(settings: Settings) -> Engine:
    url = build_url(settings)
    if url.get_backend_name() == "sqlite":
        # One short-lived connection per request: SQLite serializes writers anyway,
        # and WAL lets readers go on meanwhile.
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.get_driver_name() == "pg8000":
        _memoize_pg8000_paramstyle()
    # Without DB_TLS, plain TCP: pg8000's own default would load the system's CA
    # certificates (about 18 ms of a cold start) only to skip verifying the server.
    connect_args: dict[str, Any] = {"timeout": 10, "ssl_context": False}
    if settings.db_tls:
        # Verified: the host name and a chain to the given CAs (or the system's).
        connect_args["ssl_context"] = ssl.create_default_context(cafile=settings.db_ca_file or None)
    engine = create_engine(
        url,
        # Statement parameters can be secrets (webhook secrets, key hashes): never log them.
        hide_parameters=True,
        connect_args=connect_args,
        # A Lambda instance serves one request at a time: one connection, kept warm.
        pool_size=1 if settings.db_secret_arn else 5,
        max_overflow=0 if settings.db_secret_arn else 10,
        pool_pre_ping=True,
        pool_recycle=600,
    )
    if settings.db_iam_auth:
        event.listen(engine, "do_connect", _iam_token_provider(url))
    return engine


def _memoize_pg8000_paramstyle() -> None:
    """Rewrite each SQL text's ``%s`` placeholders to ``$n`` once, not on every execution.

    pg8000 scans the statement character by character in Python on every
    ``execute``: 0.3 ms for one of the permission queries, over a quarter of a
    warm ``get_repo``. SQLAlchemy sends the same texts again and again (its
    compiled cache), and for the ``format`` style SQLAlchemy uses the rewrite
    depends on the text alone (the parameters pass through unchanged), so the
    rewritten text is kept per statement.
    """
    from functools import lru_cache

    from pg8000 import legacy

    scan = legacy.convert_paramstyle
    if getattr(scan, "memoized", False):
        return

    @lru_cache(maxsize=2048)
    def rewritten(query: str) -> str:
        return str(scan("format", query, ())[0])

    def convert_paramstyle(style: str, query: str, args: Any) -> tuple[str, Any]:
        if style != "format":
            return scan(style, query, args)  # type: ignore[no-any-return]
        return rewritten(query), args

    convert_paramstyle.memoized = True  # type: ignore[attr-defined]
    legacy.convert_paramstyle = convert_paramstyle


@cache
def get_engine() -> Engine:
    return make_engine(get_settings())


@contextmanager
def transaction(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with call_transaction(engine) as database:
        yield database.session


class Database:
    """One transaction: Core statements on its connection, and an ORM session over
    the same connection once something first asks for one.

    Authentication and the read-only methods of a cold start (``get_user``) run
    on Core alone, so the process need not load ``sqlalchemy.orm`` and map the
    models (about a third of a cold start) before it answers. Once opened, the
    session owns the transaction: its commit is the call's, so its
    ``after_commit`` hooks (sending queued jobs) run when the rows are committed.
    """

    def __init__(self, connection: Connection, session: Session | None = None) -> None:
        self.connection = connection
        self._session = session

    @property
    def session(self) -> Session:
        if self._session is None:
            from sqlalchemy.orm import Session

            # Objects stay readable after the commit (the dispatcher encodes them later).
            self._session = Session(
                bind=self.connection,
                join_transaction_mode="control_fully",
                expire_on_commit=False,
                autoflush=True,
            )
        return self._session

    @property
    def on_postgresql(self) -> bool:
        return self.connection.dialect.name == "postgresql"

    def execute(self, statement: Any, parameters: Any = None) -> Result[Any]:
        """Run a Core statement; through the session once there is one, so that the
        objects it holds are flushed first and the statement sees them."""
        if self._session is not None:
            return self._session.execute(statement, parameters)
        return self.connection.execute(statement, parameters)

    def scalars(self, statement: Any, parameters: Any = None) -> Any:
        return self.execute(statement, parameters).scalars()

    def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.execute(statement, parameters).scalar()

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def commit(self) -> None:
        (self._session or self.connection).commit()

    def rollback(self) -> None:
        (self._session or self.connection).rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


@contextmanager
def call_transaction(engine: Engine | None = None) -> Iterator[Database]:
    """A ``Database`` whose work is committed on success and rolled back on any error."""
    with (engine or get_engine()).connect() as connection:
        database = Database(connection)
        try:
            yield database
            database.commit()
        except BaseException:
            database.rollback()
            raise
        finally:
            database.close()


def reset() -> None:
    """Forget the engine (tests that switch databases; settings reloaded from env)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_settings.cache_clear()
