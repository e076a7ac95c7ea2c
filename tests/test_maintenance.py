"""rescan_repos, invalidate_cache, lock and get_locks (facts §3.1, §6.2, §6.3, §6.7)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import repos_root
from tests.support.api import Api
from tests.support.gitcli import git, push_commits

ACCESS_DENIED = "Access was denied to this resource."
NOT_SAME_USER = "userid is not the same as your user"


def plain_git(*args: str, cwd: Path | None = None) -> None:
    """Run ``git`` as a user would, outside repohost (no template, default description)."""
    subprocess.run(
        ["git", "-c", "init.defaultBranch=master", *args],
        cwd=cwd,
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"},
    )


def upstream_with_commits(tmp_path: Path) -> tuple[Path, list[str]]:
    source = tmp_path / "source.git"
    plain_git("init", "-q", "--bare", str(source))
    ids = push_commits(source, [{"a.txt": "one\n"}, {"b.txt": "two\n"}])
    return source, ids


@pytest.fixture
def kallithea_root(tmp_path: Path) -> dict[str, str]:
    """A root filled by plain git: ``{name: tip or ""}`` of what a rescan must adopt."""
    root = repos_root()
    source, ids = upstream_with_commits(tmp_path)
    (root / "grp" / "sub").mkdir(parents=True)
    plain_git("init", "-q", "--bare", str(root / "top"))
    plain_git("clone", "-q", "--bare", str(source), str(root / "grp" / "sub" / "deep"))
    (root / "grp" / "sub" / "deep" / "description").write_text("Deep mirror\n")
    plain_git("init", "-q", "--bare", str(root / "grp" / "other"))
    # Never adopted: hidden, Kallithea's deleted, a working copy, a bad name, a reserved word.
    plain_git("init", "-q", "--bare", str(root / ".hidden" / "x"))
    plain_git("init", "-q", "--bare", str(root / "rm__20200101_000000_000000_old"))
    plain_git("init", "-q", str(root / "work"))
    plain_git("init", "-q", "--bare", str(root / "bad name"))
    plain_git("init", "-q", "--bare", str(root / "grp" / "raw"))
    # A description that is a link must not be followed.
    outside = tmp_path / "private.txt"
    outside.write_text("private text outside the root\n")
    linked = root / "linked"
    plain_git("init", "-q", "--bare", str(linked))
    (linked / "description").unlink()
    (linked / "description").symlink_to(outside)
    return {"grp/other": "", "grp/sub/deep": ids[-1], "linked": "", "top": ""}


def test_rescan_adopts_repositories_made_by_plain_git(
    api: Api, kallithea_root: dict[str, str]
) -> None:
    result = api.call("rescan_repos")
    assert result == {"added": sorted(kallithea_root), "removed": []}
    for name, tip in kallithea_root.items():
        repo = api.call("get_repo", repoid=name)
        assert repo["owner"] == "admin"
        assert repo["repo_type"] == "git"
        assert repo["private"] is False
        assert repo["members"] == [
            {"name": "default", "type": "user", "permission": "repository.read"}
        ]
        assert repo["last_changeset"]["raw_id"] == (tip or "0" * 40)
    descriptions = {n: api.call("get_repo", repoid=n)["description"] for n in kallithea_root}
    assert descriptions == {
        "grp/other": "grp/other repository",
        "grp/sub/deep": "Deep mirror",
        "linked": "linked repository",
        "top": "top repository",
    }
    assert api.call("get_repo", repoid="grp/sub/deep")["last_changeset"]["message"] == (
        "commit 1: b.txt\n"
    )
    groups = {g["group_name"]: g for g in api.call("get_repo_groups")}
    assert set(groups) == {"grp", "grp/sub"}
    assert groups["grp"]["group_description"] == "grp group"
    assert groups["grp"]["parent_group"] is None
    assert groups["grp"]["repositories"] == ["grp/other"]
    assert groups["grp/sub"]["group_description"] == "grp/sub group"
    assert groups["grp/sub"]["parent_group"] == "grp"
    assert groups["grp/sub"]["owner"] == "admin"
    assert api.call("get_repo_group", repogroupid="grp/sub")["members"] == [
        {"name": "default", "type": "user", "permission": "group.read"}
    ]
    # The adopted repositories work like any other: forks, reads.
    api.call("fork_repo", repoid="grp/sub/deep", fork_name="copy")
    assert (
        api.call("get_repo", repoid="copy")["last_changeset"]["raw_id"]
        == (kallithea_root["grp/sub/deep"])
    )
    assert api.call("rescan_repos") == {"added": [], "removed": []}


def test_rescan_keeps_existing_groups_and_skips_case_clashes(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.call("create_repo_group", group_name="team", description="Our team")
    api.call("create_repo", repo_name="Alpha")
    plain_git("init", "-q", "--bare", str(repos_root() / "team" / "tool"))
    plain_git("init", "-q", "--bare", str(repos_root() / "alpha"))
    logger = logging.getLogger("repohost")
    logger.addHandler(caplog.handler)
    try:
        assert api.call("rescan_repos") == {"added": ["team/tool"], "removed": []}
    finally:
        logger.removeHandler(caplog.handler)
    assert any("'alpha'" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)
    group = api.call("get_repo_group", repogroupid="team")
    assert group["group_description"] == "Our team"
    assert group["repositories"] == ["team/tool"]
    assert api.error("get_repo", repoid="alpha") == "repository `alpha` does not exist"


def test_rescan_reports_and_with_remove_obsolete_forgets_missing_repositories(api: Api) -> None:
    api.call("create_repo", repo_name="gone")
    api.call("fork_repo", repoid="gone", fork_name="gone-fork")
    api.call("create_repo", repo_name="kept")
    shutil.rmtree(repos_root() / "gone")
    assert api.call("rescan_repos") == {"added": [], "removed": ["gone"]}
    assert api.call("get_repo", repoid="gone")["repo_name"] == "gone"
    assert api.call("rescan_repos", remove_obsolete=True) == {"added": [], "removed": ["gone"]}
    assert api.error("get_repo", repoid="gone") == "repository `gone` does not exist"
    fork = api.call("get_repo", repoid="gone-fork")
    assert fork["fork_of"] is None
    assert (repos_root() / "gone-fork" / "HEAD").is_file()
    assert api.call("rescan_repos", remove_obsolete=True) == {"added": [], "removed": []}
    assert [r["repo_name"] for r in api.call("get_repos")] == ["gone-fork", "kept"]


def test_rescan_is_admin_only_and_reports_failures(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _uid, key = api.new_user("bob")
    assert api.as_user(key).error("rescan_repos") == ACCESS_DENIED
    from repohost.git.storage import RepoStore

    def broken(self: RepoStore) -> list[str]:
        raise OSError("disk on fire")

    monkeypatch.setattr(RepoStore, "iter_repositories", broken)
    assert api.error("rescan_repos") == "Error occurred during rescan repositories action"


# --- invalidate_cache -------------------------------------------------------------------------


def test_invalidate_cache_reads_the_newest_changeset_from_disk(api: Api) -> None:
    from repohost.db.engine import transaction
    from repohost.db.models import CacheInvalidation

    repo = api.call("get_repo", repoid=make_repo(api, "r"))
    make_repo(api, "s")
    with transaction() as session:
        session.add_all(
            [
                CacheInvalidation(cache_key="r_readme", cache_args="r", cache_active=True),
                CacheInvalidation(cache_key="s_readme", cache_args="s", cache_active=True),
            ]
        )
    ids = push_commits(repos_root() / "r", [{"f": "1\n"}, {"f": "2\n"}])
    assert api.call("get_repo", repoid="r")["last_changeset"]["raw_id"] == "0" * 40
    assert api.call("invalidate_cache", repoid="r") == {
        "msg": "Cache for repository `r` was invalidated",
        "repository": "r",
    }
    changeset = api.call("get_repo", repoid="r")["last_changeset"]
    assert changeset["raw_id"] == ids[1]
    assert changeset["revision"] == 1
    with transaction() as session:
        active = {c.cache_key: c.cache_active for c in session.query(CacheInvalidation)}
    assert active == {"r_readme": False, "s_readme": True}
    # The repository as the caller named it, id included.
    assert api.call("invalidate_cache", repoid=repo["repo_id"])["msg"] == (
        f"Cache for repository `{repo['repo_id']}` was invalidated"
    )


def make_repo(api: Api, name: str, **fields: object) -> str:
    api.call("create_repo", repo_name=name, **fields)
    return name


def test_invalidate_cache_needs_write(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    uid, key = api.new_user("bob")
    bob = api.as_user(key)
    make_repo(api, "r")
    assert bob.error("invalidate_cache", repoid="r") == "repository `r` does not exist"
    api.call("grant_user_permission", repoid="r", userid=uid, perm="repository.write")
    assert bob.call("invalidate_cache", repoid="r")["repository"] == "r"
    assert api.error("invalidate_cache", repoid="nope") == "repository `nope` does not exist"

    from repohost import repos

    def broken(*_args: object) -> None:
        raise OSError("unreadable")

    monkeypatch.setattr(repos, "refresh_changeset_cache", broken)
    assert api.error("invalidate_cache", repoid="r") == (
        "Error occurred during cache invalidation action"
    )


# --- lock / get_locks -------------------------------------------------------------------------


def test_lock_query_set_and_clear(api: Api) -> None:
    make_repo(api, "r")
    assert api.call("lock", repoid="r") == {
        "repo": "r",
        "locked": False,
        "locked_since": None,
        "locked_by": None,
        "lock_state_changed": False,
        "msg": "Repo `r` not locked.",
    }
    before = datetime.now(UTC).timestamp()
    locked = api.call("lock", repoid="r", locked=True)
    assert isinstance(locked.pop("locked_since"), float)
    assert locked == {
        "repo": "r",
        "locked": True,
        "locked_by": "admin",
        "lock_state_changed": True,
        "msg": "User `admin` set lock state for repo `r` to `True`",
    }
    state = api.call("lock", repoid="r")
    since = state["locked_since"]
    assert isinstance(since, str)  # 0.3 returns the stored text
    assert float(since) >= before - 1
    when = datetime.fromtimestamp(float(since), UTC).replace(tzinfo=None)
    from repohost.rpc.encoding import dumps

    assert state == {
        "repo": "r",
        "locked": True,
        "locked_since": since,
        "locked_by": "admin",
        "lock_state_changed": False,
        "msg": f"Repo `r` locked by `admin` on `{dumps(when)}`.",
    }
    assert '"' in state["msg"]  # the datetime is JSON-encoded, quotes included
    repo = api.call("get_repo", repoid="r")
    assert repo["locked_by"]["username"] == "admin"
    assert repo["locked_date"] == json.loads(dumps(when))
    # str2bool: the strings kallithea-api sends.
    assert api.call("lock", repoid="r", locked="false") == {
        "repo": "r",
        "locked": False,
        "locked_since": None,
        "locked_by": "admin",
        "lock_state_changed": True,
        "msg": "User `admin` set lock state for repo `r` to `False`",
    }
    assert api.call("get_repo", repoid="r")["locked_by"] is None
    assert api.call("lock", repoid="r", locked="yes")["locked"] is True
    assert api.call("lock", repoid="r")["locked"] is True


def test_lock_for_others_and_permissions(api: Api) -> None:
    bob_id, bob_key = api.new_user("bob")
    carol_id, _carol_key = api.new_user("carol")
    bob = api.as_user(bob_key)
    make_repo(api, "r")
    make_repo(api, "hidden", private=True)
    assert bob.error("lock", repoid="r", locked=True) == "repository `r` does not exist"
    assert bob.error("lock", repoid="hidden") == "repository `hidden` does not exist"
    api.call("grant_user_permission", repoid="r", userid=bob_id, perm="repository.write")
    assert bob.call("lock", repoid="r", locked=True)["locked_by"] == "bob"
    assert bob.call("lock", repoid="r", locked=True, userid=bob_id)["locked_by"] == "bob"
    assert bob.error("lock", repoid="r", locked=True, userid=carol_id) == NOT_SAME_USER
    assert bob.error("lock", repoid="r", userid="bob") == NOT_SAME_USER  # ids only, as Kallithea
    assert api.call("lock", repoid="r", locked=True, userid="carol")["msg"] == (
        "User `carol` set lock state for repo `r` to `True`"
    )
    assert api.call("lock", repoid="r")["locked_by"] == "carol"
    assert api.error("lock", repoid="r", userid="nobody") == "user `nobody` does not exist"
    assert api.error("lock", repoid="nope") == "repository `nope` does not exist"
    # Works whatever enable_locking says (it is off here).
    assert api.call("get_repo", repoid="r")["enable_locking"] is False


def test_lock_failure_message(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from repohost.methods import maintenance

    class BrokenClock:
        @staticmethod
        def time() -> float:
            raise OSError("no clock")

    make_repo(api, "r")
    monkeypatch.setattr(maintenance, "time", BrokenClock)
    assert api.error("lock", repoid="r", locked=True) == "Error occurred locking repository `r`"


def test_get_locks_shows_non_admins_only_their_own(api: Api) -> None:
    bob_id, bob_key = api.new_user("bob")
    carol_id, carol_key = api.new_user("carol")
    bob, carol = api.as_user(bob_key), api.as_user(carol_key)
    for name in ("a", "b", "c", "d"):
        make_repo(api, name, private=name == "c")
    api.call("lock", repoid="a", locked=True)
    api.call("lock", repoid="b", locked=True, userid=bob_id)
    api.call("lock", repoid="c", locked=True, userid=carol_id)
    assert [r["repo_name"] for r in api.call("get_locks")] == ["a", "b", "c"]
    assert [r["repo_name"] for r in api.call("get_locks", userid="bob")] == ["b"]
    mine = bob.call("get_locks")
    assert [r["repo_name"] for r in mine] == ["b"]  # 0.3 would list a, b and c here
    assert mine[0]["locked_by"]["username"] == "bob"
    assert mine[0]["locked_date"] is not None
    assert [r["repo_name"] for r in bob.call("get_locks", userid=bob_id)] == ["b"]
    assert bob.error("get_locks", userid=carol_id) == NOT_SAME_USER
    assert bob.error("get_locks", userid="bob") == NOT_SAME_USER
    # Carol's lock on a private repository she can no longer read is not shown to her.
    assert carol.call("get_locks") == []
    api.call("grant_user_permission", repoid="c", userid=carol_id, perm="repository.read")
    assert [r["repo_name"] for r in carol.call("get_locks")] == ["c"]
    assert api.error("get_locks", userid="nobody") == "user `nobody` does not exist"
    api.call("lock", repoid="b", locked=False)
    assert bob.call("get_locks") == []


def test_adopted_tip_matches_git(api: Api, tmp_path: Path) -> None:
    source, ids = upstream_with_commits(tmp_path)
    plain_git("clone", "-q", "--mirror", str(source), str(repos_root() / "mirror"))
    assert api.call("rescan_repos")["added"] == ["mirror"]
    tip = git(repos_root() / "mirror", "rev-parse", "HEAD").strip()
    assert tip == ids[-1]
    assert api.call("get_repo", repoid="mirror")["last_changeset"]["raw_id"] == tip
