"""The scheduled crash-recovery function: what killed calls left is settled on AWS too.

``functions/recovery/app.py`` is run with its sample event against the test
database and a repository root holding what calls killed before their commit
leave: intent notes and directories no row knows, plus old ``.tmp/`` and
``.trash/`` entries. Only what is older than any live call may be touched, as
other invocations serve calls meanwhile. The template must schedule the
function and mount the repositories' EFS access point writable.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from repohost.git.storage import INTENTS_DIR, TMP_DIR, TRASH_DIR, RepoStore, is_bare_repo
from repohost.local.template import Tag, load_template
from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "events" / "recovery_scheduled.json"


def recovery_function() -> ModuleType:
    """``functions/recovery/app.py`` as Lambda loads it: a file, not a package module."""
    path = ROOT / "functions" / "recovery" / "app.py"
    spec = importlib.util.spec_from_file_location("fn_recovery", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def age(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old (its modification time)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def notes(root: Path) -> dict[str, dict[str, Any]]:
    """The intent notes under ``root`` by the name of the directory they are about."""
    folder = root / INTENTS_DIR
    found = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        record = json.loads(path.read_text())
        found[str(record["name"])] = {"path": path, **record}
    return found


def test_the_scheduled_run_undoes_what_killed_calls_left(
    lambda_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    from repohost.recovery import STALE_SECONDS

    root = repos_root()
    lambda_api.call("create_repo", repo_name="kept")
    # Two creations whose calls never committed (no row): one killed long ago, one
    # that may still be in progress in another invocation.
    store = RepoStore(root, intents=True)
    store.create_repo("orphan")
    store.create_repo("in-progress")
    left = notes(root)
    assert set(left) == {"orphan", "in-progress"}
    age(left["orphan"]["path"], STALE_SECONDS + 60)
    # Leftovers of killed calls: staging and trash, old and young.
    (root / TMP_DIR / "old-staging").mkdir(parents=True)
    age(root / TMP_DIR / "old-staging", STALE_SECONDS + 60)
    (root / TMP_DIR / "young-staging").mkdir()
    (root / TRASH_DIR / "20200101_000000_000000__deleted-long-ago").mkdir(parents=True)

    caplog.set_level(logging.INFO, logger="repohost.recovery")
    event = json.loads(EVENT.read_text())
    answer = recovery_function().handler(event, None)

    assert answer == {"settled": 1, "undone": 1, "purged": 2}
    assert not (root / "orphan").exists(), "the dead call's directory is undone"
    assert is_bare_repo(root / "in-progress"), "a young note's call may still commit"
    assert set(notes(root)) == {"in-progress"}
    assert is_bare_repo(root / "kept")
    assert sorted(os.listdir(root / TMP_DIR)) == ["young-staging"]
    assert os.listdir(root / TRASH_DIR) == []
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recovery run")]
    assert line == "recovery run: 1 notes settled, 1 undone, 2 leftovers purged"
    assert ADMIN_KEY not in caplog.text
    # The database and the disk agree: the name is free again.
    lambda_api.call("create_repo", repo_name="orphan")
    assert {r["repo_name"] for r in lambda_api.call("get_repos")} == {"kept", "orphan"}


def test_a_run_with_nothing_to_do_changes_nothing(lambda_api: Api) -> None:
    lambda_api.call("create_repo", repo_name="kept")
    answer = recovery_function().handler(json.loads(EVENT.read_text()), None)
    assert answer == {"settled": 0, "undone": 0, "purged": 0}
    assert is_bare_repo(repos_root() / "kept")


# --- the template --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def ref(name: str) -> Tag:
    return Tag("Ref", name)


def test_the_template_runs_recovery_on_a_schedule(template: dict[str, Any]) -> None:
    function = template["Resources"]["RecoveryFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["DependsOn"] == "Migrations"
    props = function["Properties"]
    assert props["CodeUri"] == "functions/recovery/"
    assert props["Handler"] == "app.handler"
    schedules = [e["Properties"] for e in props["Events"].values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    assert schedules[0]["Schedule"].startswith(("rate(", "cron("))
    assert not any(e["Type"] == "HttpApi" for e in props["Events"].values()), "never routed"
    # Lambda stops any invocation at 15 minutes.
    assert props["Timeout"] <= 900
    assert "RecoveryFunctionName" in template["Outputs"]


def test_the_recovery_function_mounts_the_repositories_writable(
    template: dict[str, Any],
) -> None:
    props = template["Resources"]["RecoveryFunction"]["Properties"]
    assert props["FileSystemConfigs"] == [
        {"Arn": ref("EfsAccessPointArn"), "LocalMountPath": ref("EfsMountPath")}
    ]
    statements = {
        s["Sid"]: s
        for policy in props["Policies"]
        if isinstance(policy, dict)
        for s in policy["Statement"]
    }
    mount = statements["MountRepositories"]
    assert sorted(mount["Action"]) == [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientWrite",
    ]
    assert mount["Resource"] == ref("EfsFileSystemArn")
    assert mount["Condition"] == {
        "StringEquals": {"elasticfilesystem:AccessPointArn": ref("EfsAccessPointArn")}
    }
    assert statements["ReadDatabaseSecret"]["Resource"] == ref("DatabaseSecretArn")
    # The same database login as the worker (IAM authentication included), nothing more.
    worker = template["Resources"]["WorkerFunction"]["Properties"]
    assert props["Policies"] == worker["Policies"]
