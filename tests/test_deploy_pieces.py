"""The AWS-facing pieces: sample events, the migration custom resource, database credentials."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


def load_function(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"fn_{name}", ROOT / "functions" / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_api_event_reaches_the_dispatcher(db: str) -> None:
    from repohost.auth.keys import add_key
    from repohost.db import queries
    from repohost.db.engine import transaction

    event = json.loads((EVENTS / "api_get_user.json").read_text())
    key = json.loads(event["body"])["api_key"]
    with transaction() as session:
        add_key(session, queries.get_user(session, "admin"), key=key)
    response = load_function("api").handler(event, None)
    assert response["statusCode"] == 200
    envelope = json.loads(response["body"])
    assert envelope["error"] is None
    assert envelope["result"]["username"] == "admin"
    assert response["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]


@pytest.fixture
def response_sink() -> Iterator[tuple[str, list[dict]]]:
    """A loopback stand-in for CloudFormation's pre-signed response URL."""
    received: list[dict] = []

    class Sink(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()
    server.server_close()


def test_migration_custom_resource_migrates_and_answers(
    db: str, response_sink: tuple[str, list[dict]]
) -> None:
    url, received = response_sink
    event = json.loads((EVENTS / "migrate_create.json").read_text())
    event["ResponseURL"] = url
    response = load_function("migrate").handler(event, None)
    assert response["Status"] == "SUCCESS", response
    assert received == [response]
    assert received[0]["RequestId"] == event["RequestId"]


def test_migration_failure_is_reported_without_details(
    db: str, response_sink: tuple[str, list[dict]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from repohost.db import migrate

    def fail(*_a: object, **_k: object) -> None:
        raise RuntimeError("password=hunter2 host=secret")

    monkeypatch.setattr(migrate, "upgrade", fail)
    url, received = response_sink
    event = json.loads((EVENTS / "migrate_create.json").read_text())
    event["ResponseURL"] = url
    load_function("migrate").handler(event, None)
    assert received[0]["Status"] == "FAILED"
    assert "hunter2" not in json.dumps(received)


def test_credentials_come_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from repohost.config import Settings
    from repohost.db.engine import build_url

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="repohost-db",
            SecretString=json.dumps({"username": "app", "password": "p@ss/word"}),
        )["ARN"]
        settings = Settings(
            database_url="postgresql+pg8000://db.example.internal:5432/repohost",
            db_secret_arn=arn,
        )
        url = build_url(settings)
        assert (url.username, url.password, url.host) == ("app", "p@ss/word", "db.example.internal")
        iam = build_url(
            Settings(database_url=settings.database_url, db_secret_arn=arn, db_iam_auth=True)
        )
        assert iam.username == "app" and iam.password is None


def test_iam_auth_token_is_fetched_per_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from sqlalchemy.engine import make_url

    from repohost.db.engine import _iam_token_provider

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    provide = _iam_token_provider(make_url("postgresql+pg8000://app@db.example.internal:5432/x"))
    with mock_aws():
        params: dict[str, object] = {}
        provide(None, None, None, params)
    token = str(params["password"])
    assert token.startswith("db.example.internal:5432/?Action=connect")
    assert "DBUser=app" in token


def test_db_tls_is_required_when_set_and_plain_tcp_otherwise(migrated: str) -> None:
    """The test server has no TLS: with DB_TLS it must be refused, not used in clear."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from repohost.config import Settings
    from repohost.db.engine import make_engine

    if not migrated.startswith("postgresql"):
        pytest.skip("TLS to the database is PostgreSQL's (REPOHOST_TEST_DB=sqlite)")
    plain = make_engine(Settings(database_url=migrated))
    try:
        with plain.connect() as connection:
            assert (
                connection.execute(
                    text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                ).scalar()
                is False
            )
    finally:
        plain.dispose()
    required = make_engine(Settings(database_url=migrated, db_tls=True))
    try:
        with pytest.raises(DBAPIError, match="Server refuses SSL"):
            required.connect()
    finally:
        required.dispose()
