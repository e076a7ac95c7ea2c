"""How the Lambda entry points load (``repohost.coldstart``) and what they load,
and the database driver's memoized placeholder rewrite (``repohost.db.engine``)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY

ROOT = Path(__file__).resolve().parent.parent


def test_loading_turns_the_collector_off_then_freezes_what_was_loaded() -> None:
    """Run in a fresh interpreter: freezing is process-wide and cannot be undone in here."""
    probe = (
        "import gc\n"
        "from repohost.coldstart import loading\n"
        "with loading():\n"
        "    during = gc.isenabled()\n"
        "    import repohost.db.models\n"
        "print(during, gc.isenabled(), gc.get_freeze_count() > 10000)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["False", "True", "True"]


def test_loading_leaves_a_disabled_collector_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from repohost.coldstart import loading

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    gc.disable()
    try:
        with loading():
            pass
        assert not gc.isenabled() and frozen == [True]
    finally:
        gc.enable()


def test_every_entry_point_loads_its_code_that_way() -> None:
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        source = app.read_text()
        if app.parent.name == "migrate":  # imports repohost inside its handler
            assert "\nfrom repohost" not in source and "\nimport repohost" not in source
            continue
        assert "with loading():" in source, app


def test_placeholder_rewrite_is_memoized_and_keeps_percent_signs(migrated: str) -> None:
    from pg8000 import legacy
    from sqlalchemy import text

    from repohost.db.engine import get_engine

    if not migrated.startswith("postgresql"):
        pytest.skip("pg8000 is PostgreSQL's driver")
    with get_engine().connect() as connection:
        for suffix in ("a", "b"):  # the second run takes the memoized text
            value = connection.execute(text("SELECT '100%' || :s"), {"s": suffix}).scalar()
            assert value == f"100%{suffix}"
    assert getattr(legacy.convert_paramstyle, "memoized", False) is True


def test_get_user_after_a_cold_start_never_loads_the_orm(db: str) -> None:
    """Authentication and ``get_user`` run on Core (``repohost.db.engine.Database``);
    the first method that needs the ORM loads it, in the same transaction."""
    probe = (
        "import json, sys\n"
        "sys.path.insert(0, 'functions/api')\n"
        "from app import handler\n"
        "event = json.load(open('events/api_get_user.json'))\n"
        "def call(method):\n"
        "    body = {'id': 1, 'api_key': sys.argv[1], 'method': method, 'args': {}}\n"
        "    answer = json.loads(handler({**event, 'body': json.dumps(body)}, None)['body'])\n"
        "    assert answer['error'] is None, answer\n"
        "    return answer['result']\n"
        "user = call('get_user')\n"
        "print(user['username'], 'sqlalchemy.orm' in sys.modules)\n"
        "groups = call('get_user_groups')\n"
        "print(groups, 'sqlalchemy.orm' in sys.modules)\n"
    )
    out = _run_fresh(probe)
    assert out.splitlines() == ["admin False", "[] True"]


@pytest.mark.parametrize(
    ("function", "event"),
    [
        ("files", "files_get_raw"),
        ("changesets", "changesets_get_diff"),
        ("archive", "archive_get_tar_gz"),
        ("feeds", "feeds_get_atom"),
    ],
)
def test_the_view_functions_never_load_the_orm(db: str, function: str, event: str) -> None:
    """The key, the caller and the repository lookup of every GET view run on Core."""
    probe = (
        "import json, sys\n"
        f"sys.path.insert(0, 'functions/{function}')\n"
        "from app import handler\n"
        f"event = json.load(open('events/{event}.json'))\n"
        "event['rawQueryString'] = 'api_key=' + sys.argv[1]\n"
        "answer = handler(event, None)\n"
        "print(answer['statusCode'], 'sqlalchemy.orm' in sys.modules)\n"
    )
    out = _run_fresh(probe)
    assert out.split() == ["404", "False"]  # (the sample events' repository does not exist)


def _run_fresh(probe: str) -> str:
    """What ``probe`` prints in a new interpreter given the admin key (the test database)."""
    return subprocess.run(
        [sys.executable, "-c", probe, ADMIN_KEY],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
