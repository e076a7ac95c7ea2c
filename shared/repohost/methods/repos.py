"""Repositories: reading, creating, changing, forking, deleting, and their permissions."""

from __future__ import annotations

import json
import logging
import re
import typing
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from repohost import repos
from repohost.auth.permissions import AuthUser, at_least
from repohost.db import grants, queries
from repohost.db.models import (
    Permission,
    Repository,
    User,
    UserEmail,
    UserFollowing,
    UserGroup,
    UserGroupMember,
    UserGroupRepoToPerm,
    UserRepoToPerm,
)
from repohost.db.records import as_id
from repohost.methods._objects import mask_credentials, user_object
from repohost.methods.user_groups import group_with
from repohost.rpc.context import CallContext
from repohost.rpc.encoding import EncodedJSON
from repohost.rpc.errors import ACCESS_DENIED, JSONRPCError
from repohost.rpc.registry import api_method

log = logging.getLogger("repohost.repos")

NOT_FOUND = "repository `<repoid>` does not exist"


@cache
def _people_statement() -> Any:
    """``_people``'s query, built once (parameters ``:repo_id`` and ``:caller``)."""
    text, integer, boolean = (cast(null(), t) for t in (String, Integer, Boolean))
    repo_id, caller = bindparam("repo_id"), bindparam("caller")
    users = (
        select(
            literal(0).label("part"),
            UserRepoToPerm.repo_to_perm_id.label("seq"),
            User.username,
            Permission.permission_name,
            User.user_id,
            *(text, text, text, boolean, boolean, text),
            integer.label("extra_id"),
            boolean,
        )
        .join(User, User.user_id == UserRepoToPerm.user_id)
        .join(Permission, Permission.permission_id == UserRepoToPerm.permission_id)
        .where(UserRepoToPerm.repository_id == repo_id)
    )
    in_group = (
        select(UserGroupMember.users_group_member_id)
        .where(
            UserGroupMember.users_group_id == UserGroupRepoToPerm.users_group_id,
            UserGroupMember.user_id == caller,
        )
        .exists()
    )
    groups = (
        select(
            literal(1),
            UserGroupRepoToPerm.users_group_to_perm_id,
            UserGroup.users_group_name,
            Permission.permission_name,
            *(integer, text, text, text, boolean, boolean, text, integer),
            and_(UserGroup.users_group_active, in_group),
        )
        .join(UserGroup, UserGroup.users_group_id == UserGroupRepoToPerm.users_group_id)
        .join(Permission, Permission.permission_id == UserGroupRepoToPerm.permission_id)
        .where(UserGroupRepoToPerm.repository_id == repo_id)
    )
    followers = (
        select(
            literal(2),
            UserFollowing.user_following_id,
            User.username,
            text,
            User.user_id,
            User.firstname,
            User.lastname,
            User.email,
            User.active,
            User.admin,
            UserEmail.email,
            UserEmail.email_id,
            boolean,
        )
        .join(User, User.user_id == UserFollowing.user_id)
        .outerjoin(UserEmail, UserEmail.user_id == User.user_id)
        .where(UserFollowing.follows_repository_id == repo_id)
    )
    return users.union_all(groups, followers).order_by("part", "seq", "extra_id")


def _people(ctx: CallContext, repo_id: int) -> tuple[list[Any], list[Any], list[str]]:
    """Members (facts §2.5), followers, and the caller's own and user groups' permissions.

    One query: the users' permission rows, the user groups' rows (flagged when
    the caller is in the group and it is active), and the followers with their
    extra e-mail addresses, each part in the order its rows were made.
    """
    caller = ctx.caller.user_id
    rows = ctx.session.execute(_people_statement(), {"repo_id": repo_id, "caller": caller})
    members: list[dict[str, str]] = []
    following: dict[int, dict[str, Any]] = {}
    grants: list[str] = []
    for part, seq, name, perm, user_id, first, last, email, active, admin, extra, _, mine in rows:
        if part == 0:
            members.append({"name": name, "type": "user", "permission": perm})
            if user_id == caller:
                grants.append(perm)
        elif part == 1:
            members.append({"name": name, "type": "user_group", "permission": perm})
            if mine:
                grants.append(perm)
        else:
            if seq not in following:  # as _objects.user_object
                following[seq] = {
                    "user_id": user_id,
                    "username": name,
                    "firstname": first,
                    "lastname": last,
                    "email": email,
                    "emails": [email],
                    "active": active,
                    "admin": admin,
                }
            if extra is not None:
                following[seq]["emails"].append(extra)
    return members, list(following.values()), grants


@api_method(access="admin, or repository.read on the repository", errors=(NOT_FOUND,))
def get_repo(
    ctx: CallContext,
    repoid: int | str,
    with_revision_names: bool = False,
    with_pullrequests: bool = False,
) -> dict[str, Any]:
    """A repository with its permission members and followers.

    Two queries besides the caller's: the repository, then everyone related
    to it (``_people``), which also gives the caller's level.
    """
    key = as_id(repoid)  # by id or by full name, as queries.get_repo
    if key is not None:
        raw, inputs = _raw_repos_from_rows(ctx, "id", key)
    elif isinstance(repoid, str) and not repoid.isdigit():
        raw, inputs = _raw_repos_from_rows(ctx, "name", repoid)
    else:
        raise repos.not_found(repoid)
    if not raw:
        raise repos.not_found(repoid)
    (repo_id, default, owner_id, private), answer = inputs[0], raw[0]
    members, followers, grants = _people(ctx, repo_id)
    level = ctx.caller.repository_level(default, owner_id, private, grants)
    if not _finish(ctx, raw, {repo_id: level}):  # the caller may not read it
        raise repos.not_found(repoid)
    answer |= {"members": members, "followers": followers}
    if with_revision_names:
        from repohost.git import read

        with repos.git_data(ctx, answer["repo_name"], repoid) as git_repo:
            answer |= {"tags": read.tags(git_repo), "branches": read.branches(git_repo)}
        answer["bookmarks"] = {}
    if with_pullrequests:
        answer["pull_requests"] = []
    return answer


# --- get_repos (and get_repo's repository object) without ORM objects ------------------------
#
# Both ways below build ``_objects.repo_object``'s objects from plain data: on
# PostgreSQL ``get_repos`` has the database write them as JSON text (the
# pure-Python driver would otherwise spend most of the time decoding 10,000 rows,
# and ORM objects cost as much again) and passes that text on, completing in
# Python only the few objects that need it (``_encoded_repos``); elsewhere
# (SQLite under ``make run``, and ``get_repo``'s single row) from plain rows,
# which ``_finish`` completes. ``_complete`` does the completing either way, so
# the answers are the same (a test compares the ways, and with ``repo_object``).
# The statements are built once (``functools.cache``): building them cost more
# than running them.

_PLAIN_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?")


def _timestamp(text: str | datetime | None) -> str | datetime | None:
    """A timestamp read as text, in the form the encoder gives a datetime (or a datetime).

    Reading timestamps as text and reshaping them is ten times cheaper than
    the driver's parsing; anything not plainly ``YYYY-MM-DD HH:MM:SS[.ffffff]``
    is parsed and left to the encoder, so the output is the same either way.
    A datetime (or nothing) is left to the encoder as it is.
    """
    if not isinstance(text, str):
        return text
    if _PLAIN_TIMESTAMP.fullmatch(text) is None:
        return datetime.fromisoformat(text)
    micro = int(text[20:26].ljust(6, "0")) if len(text) > 19 else 0
    return f"{text[:10]}T{text[11:19]}" + (f".{micro // 1000:03d}" if micro else "")


def _repository_query() -> tuple[Select[Any], Any]:
    """A select (no columns yet) from every repository joined with its owner and its origin."""
    fork = aliased(Repository, name="fork")
    query = (
        select()
        .select_from(Repository)
        .join(User, User.user_id == Repository.owner_id)
        .outerjoin(fork, fork.repo_id == Repository.fork_id)
    )
    return query, fork


@cache
def _json_statement(with_default: bool) -> Any:
    """``_encoded_repos``' query, built once: three values, in repository name order.

    The first holds each repository's object as JSON text, one per line (JSON
    text has no raw line breaks): the parts a trigger keeps with the row
    (``listing_head``/``listing_tail``, migration 0004) with ``owner`` and
    ``fork_of`` joined in between. The second is a JSON array of what Python
    decides with, one entry per object: ``[repo_id, private, owner_id, default
    user's permission, fork's id, needs Python, has a clone_uri, locked]``;
    "needs Python": the object is not final as stored (locked, or a
    ``last_changeset`` missing or not plain). The third counts rows the trigger
    has not written, which only a bypassed trigger can leave.
    """
    from sqlalchemy import literal_column
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    query, fork = _repository_query()
    default: Any = null()
    if with_default:  # what the levels of non-admins are computed from
        query, default = AuthUser.with_default_repo_permission(query)
    head, tail = Repository.listing_head, Repository.listing_tail
    obj = func.coalesce(
        head
        + ',"owner":'
        + cast(func.to_json(User.username), Text)
        + ',"fork_of":'
        + func.coalesce(cast(func.to_json(fork.repo_name), Text), "null")
        + ","
        + tail,
        "null",
    )
    needs_python = or_(Repository.locked.is_not(None), Repository.listing_date_plain.is_not(True))
    facts = func.json_build_array(
        Repository.repo_id,
        Repository.private,
        Repository.owner_id,
        default,
        fork.repo_id,
        needs_python,
        Repository.clone_uri.is_not(None),
        Repository.locked,
    )
    order = Repository.repo_name
    return query.add_columns(
        func.string_agg(obj, aggregate_order_by(literal_column("E'\\n'"), order)),
        cast(func.json_agg(aggregate_order_by(facts, order)), Text),
        func.count().filter(head.is_(None)),
    )


def _encoded_repos(ctx: CallContext) -> EncodedJSON:
    """PostgreSQL: ``get_repos``'s answer as JSON text, mostly as the database wrote it.

    Decoding 10,000 objects and encoding them again cost more than the query;
    here only the objects that are not final (see ``_json_statement``) or that
    this caller must see changed (a masked ``clone_uri``, a hidden ``fork_of``)
    go through ``_complete``.
    """
    from repohost.rpc.encoding import dumps

    # The ordered aggregates sort about 6 MB for 10,000 repositories: in memory,
    # not in temporary files (the default work_mem, 4 MB, spilled, costing 8 ms).
    ctx.session.execute(text("SET LOCAL work_mem = '32MB'"))
    statement = _json_statement(not ctx.caller.is_admin)
    texts, facts_text, unwritten = ctx.session.execute(statement).one()
    if unwritten:
        log.warning("get_repos: %d repositories lack their listing; built in Python", unwritten)
        return EncodedJSON(dumps(_repos_from_rows(ctx)))
    if not texts:
        return EncodedJSON("[]")
    objects, facts = texts.split("\n"), json.loads(facts_text)
    levels = None
    if not ctx.caller.is_admin:
        levels = ctx.caller.repository_levels((f[0], f[3], f[2], f[1]) for f in facts)
    kept = list(range(len(facts)))
    if levels is not None:  # (a handful of distinct levels: each is weighed once)
        reads = {level: at_least(level, "read") for level in set(levels.values())}
        kept = [i for i in kept if reads[levels[facts[i][0]]]]
    locks = _lockers(ctx, [facts[i][7] for i in kept if facts[i][7]])
    for i in kept:
        repo_id, _private, _owner, _default, fork_id, needs_python, has_clone, locked = facts[i]
        changed_for_caller = levels is not None and (
            fork_id is not None or (has_clone and levels[repo_id] != "repository.admin")
        )
        if needs_python or changed_for_caller:
            obj = json.loads(objects[i]) | {"_fork_id": fork_id, "_locked": locked}
            _complete(ctx, obj, levels, locks)
            objects[i] = dumps(obj)
    return EncodedJSON("[" + ", ".join(objects[i] for i in kept) + "]")


@cache
def _rows_statement(pick: str | None, with_default: bool) -> Select[Any]:
    """The rows ``_raw_repos_from_rows`` reads, built once: all, or the one ``:repoid`` picks.

    ``pick`` is ``"id"``, ``"name"`` or None; ``with_default`` adds the default
    user's permission (for non-admins).
    """
    query, fork = _repository_query()
    columns = (
        Repository.repo_id,
        Repository.repo_name,
        Repository.repo_type,
        Repository.clone_uri,
        Repository.private,
        # As text for many rows (the driver's parsing is slow); one row: a datetime,
        # whatever the server's DateStyle.
        Repository.created_on if pick else cast(Repository.created_on, String),
        Repository.description,
        Repository.landing_rev,
        User.username,
        fork.repo_name,
        fork.repo_id,
        Repository.enable_statistics,
        Repository.enable_downloads,
        Repository.enable_locking,
        Repository.locked,
        cast(Repository.changeset_cache, Text),
        Repository.owner_id,
    )
    query = query.add_columns(*columns).order_by(Repository.repo_name)
    if pick is not None:
        column = Repository.repo_id if pick == "id" else Repository.repo_name
        query = query.where(column == bindparam("repoid"))
    if with_default:
        query, default = AuthUser.with_default_repo_permission(query)
        query = query.add_columns(default)
    return query


def _raw_repos_from_rows(
    ctx: CallContext, pick: str | None = None, repoid: int | str | None = None
) -> tuple[list[dict[str, Any]], list[tuple[int, str | None, int, bool]]]:
    """Any database: the raw objects from plain rows (all, or the one ``repoid`` picks).

    ``pick`` says how ``repoid`` names it: ``"id"`` or ``"name"``. With each
    object, what its level is computed from: ``(repo_id, default user's
    permission, owner_id, private)`` (see ``AuthUser.repository_levels``).
    """
    query = _rows_statement(pick, not ctx.caller.is_admin)
    params = {} if pick is None else {"repoid": repoid}
    rows = ctx.session.execute(query, params).all()
    raw = []
    for row in rows:
        (repo_id, name, repo_type, clone_uri, private, created_on, description, landing_rev, owner,
         fork_of, fork_id, statistics, downloads, locking, locked, changeset, *_) = row  # fmt: skip
        landing_type, _, landing_name = landing_rev.partition(":")
        raw.append(
            {
                "repo_id": repo_id,
                "repo_name": name,
                "repo_type": repo_type,
                "clone_uri": clone_uri,
                "private": private,
                "created_on": _timestamp(created_on),
                "description": description,
                "landing_rev": [landing_type, landing_name],
                "owner": owner,
                "fork_of": fork_of,
                "_fork_id": fork_id,
                "enable_statistics": statistics,
                "enable_downloads": downloads,
                "enable_locking": locking,
                "locked_by": None,
                "locked_date": None,
                "last_changeset": json.loads(changeset) if changeset else None,
                "_locked": locked,
            }
        )
    return raw, [(r[0], r[17] if len(r) > 17 else None, r[16], r[4]) for r in rows]


def _finish(
    ctx: CallContext, raw: list[dict[str, Any]], levels: dict[int, str] | None
) -> list[dict[str, Any]]:
    """Keep what the caller may read and complete each object as ``repo_object`` would.

    ``levels`` are the caller's levels, None for an admin (admin everywhere).
    Raw objects differ from ``repo_object``'s in four places: ``last_changeset``
    is the stored cache (the date a string, or nothing), ``clone_uri`` is not
    masked, ``_locked`` holds the lock instead of ``locked_by``/``locked_date``,
    and ``_fork_id`` says whose name ``fork_of`` shows (hidden unless readable).
    """
    readable = raw
    if levels is not None:
        readable = [o for o in raw if at_least(levels[o["repo_id"]], "read")]
    locks = _lockers(ctx, [o["_locked"] for o in readable if o["_locked"]])
    for obj in readable:
        _complete(ctx, obj, levels, locks)
    return readable


def _complete(
    ctx: CallContext,
    obj: dict[str, Any],
    levels: dict[int, str] | None,
    locks: dict[str, tuple[Any, Any]],
) -> None:
    """``_finish``'s work on one raw object the caller may read, in place."""
    fork_id = obj.pop("_fork_id")
    if fork_id is not None and levels is not None:
        known = levels.get(fork_id)  # get_repos knows every level; get_repo only its own
        if not (at_least(known, "read") if known else repos.may_read(ctx, fork_id)):
            obj["fork_of"] = None  # a private origin's name is not shown through its forks
    locked = obj.pop("_locked")
    if locked:
        obj["locked_by"], obj["locked_date"] = locks[locked]
    if obj["clone_uri"] and levels is not None and levels[obj["repo_id"]] != "repository.admin":
        obj["clone_uri"] = mask_credentials(obj["clone_uri"])
    cache = obj["last_changeset"]
    if not cache:  # a row nobody has read from disk yet (refresh_changeset_cache)
        from repohost.git.read import EMPTY_CHANGESET

        obj["last_changeset"] = dict(EMPTY_CHANGESET)
        return
    date = cache["date"]
    if len(date) != 19 or date[10] != "T" or _PLAIN_TIMESTAMP.fullmatch(date) is None:
        cache["date"] = datetime.fromisoformat(date)  # the encoder drops a zone, shows ms


def _lockers(ctx: CallContext, locked: list[str]) -> dict[str, tuple[Any, Any]]:
    """``locked_by`` and ``locked_date`` for these ``locked`` values (as ``_objects._lock_holder``).

    The holders are loaded in one query (none when nothing is locked).
    """
    ids = {int(v.partition(":")[0]) for v in locked if v.partition(":")[0].isdigit()}
    holders = {}
    if ids:
        query = select(User).where(User.user_id.in_(ids)).options(joinedload(User.extra_emails))
        holders = {user.user_id: user for user in ctx.session.scalars(query).unique()}
    answer = {}
    for value in locked:
        user_id, _, since = value.partition(":")
        holder = holders.get(int(user_id)) if user_id.isdigit() else None
        when = datetime.fromtimestamp(float(since), UTC).replace(tzinfo=None) if since else None
        answer[value] = ((user_object(holder) if holder else None), when)
    return answer


@api_method(access="any user; lists the repositories the caller may read")
def get_repos(ctx: CallContext) -> list[dict[str, Any]]:
    """Every repository the caller may read, by name; a fixed number of queries.

    One query for admins, two for other users (the second reads their own
    and their user groups' permission rows); one more if any repository is locked.
    """
    if ctx.db.on_postgresql:
        # The answer's JSON text, which the dispatcher places as it is (see EncodedJSON).
        return typing.cast(list[dict[str, Any]], _encoded_repos(ctx))
    return _repos_from_rows(ctx)


def _repos_from_rows(ctx: CallContext) -> list[dict[str, Any]]:
    """``get_repos``' answer the plain-rows way (SQLite; PostgreSQL rows without a listing)."""
    raw, inputs = _raw_repos_from_rows(ctx)
    return _finish(ctx, raw, ctx.caller.repository_levels(inputs))


@api_method(
    access="admin, or repository.read on the repository",
    errors=(
        NOT_FOUND,
        "failed to get repo: `<repo_name>` nodes",
        "ret_type must be one of all,dirs,files",
    ),
)
def get_repo_nodes(
    ctx: CallContext, repoid: int | str, revision: str, root_path: str, ret_type: str = "all"
) -> list[dict[str, str]]:
    """Files and directories below ``root_path`` at ``revision``, all the way down."""
    from repohost.git import read
    from repohost.git.errors import GitError

    repo = repos.repo_with(ctx, repoid, "read")
    try:
        with read.open_repo(ctx.store.path_for(repo.repo_name)) as git_repo:
            commit = read.resolve_revision(git_repo, revision)
            nodes = read.list_nodes(git_repo, commit, root_path)
    except GitError:
        raise JSONRPCError(f"failed to get repo: `{repo.repo_name}` nodes") from None
    if ret_type not in ("all", "dirs", "files"):
        raise JSONRPCError("ret_type must be one of all,dirs,files")
    if ret_type == "all":
        return nodes
    wanted = "dir" if ret_type == "dirs" else "file"
    return [node for node in nodes if node["type"] == wanted]


def _check_new_repo_fields(
    repo_name: str, repo_type: str, landing_rev: str, failed: JSONRPCError
) -> str:
    from repohost.git.errors import InvalidName
    from repohost.git.names import validate_repo_name

    try:
        validate_repo_name(repo_name)
    except InvalidName:
        raise failed from None
    if repos.reserved(repo_name):
        raise failed
    if repo_type != "git":
        raise JSONRPCError(
            f"repository type `{repo_type}` is not supported: repohost hosts git repositories"
        )
    if not repos.valid_landing_rev(landing_rev):
        raise failed
    return repo_type


@api_method(
    access=(
        "admin; in a group: group.write on it; at top level: the global permission"
        " hg.create.repository"
    ),
    errors=(
        "repo group `<path>` not found",
        "no permission to create repo in <path>",
        "no permission to create top level repo",
        "Only Kallithea admin can specify `owner` param",
        "user `<owner>` does not exist",
        "repo `<repo_name>` already exist",
        "clone_uri refused: <rule>",
        "failed to create repository `<repo_name>`",
    ),
)
def create_repo(
    ctx: CallContext,
    repo_name: str,
    owner: int | str | None = None,
    repo_type: str | None = None,
    description: str = "",
    private: bool = False,
    clone_uri: str | None = None,
    landing_rev: str = "rev:tip",
    enable_statistics: bool | None = None,
    enable_downloads: bool | None = None,
    copy_permissions: bool = False,
) -> dict[str, Any]:
    """Create a bare git repository (``a/b/name`` inside existing groups).

    With ``clone_uri`` the repository is created empty in ``repo_state_pending``
    and a job mirrors the remote into it; the answer then carries ``task`` (the
    job id, as 0.3's Celery task id). ``get_repo`` shows the content once the
    job is done; a failed mirror leaves ``repo_state_error``, and ``pull`` retries.
    """
    owner_user = repos.check_create_rights(ctx, repo_name, owner)
    if repos.name_taken(ctx, repo_name) is not None or repos.group_taken(ctx, repo_name):
        raise JSONRPCError(f"repo `{repo_name}` already exist")
    failed = JSONRPCError(f"failed to create repository `{repo_name}`")
    repo_type = _check_new_repo_fields(
        repo_name, repo_type or ctx.settings.default_repo_type, landing_rev, failed
    )
    if clone_uri:
        repos.check_clone_uri(ctx, clone_uri)
    repo = Repository(
        repo_name=repo_name,
        repo_state="repo_state_pending" if clone_uri else "repo_state_created",
        clone_uri=clone_uri or None,
        repo_type=repo_type,
        description=description or repo_name,
        private=private,
        landing_rev=landing_rev,
        enable_statistics=bool(enable_statistics),
        enable_downloads=True if enable_downloads is None else enable_downloads,
        owner=owner_user,
        group=repos.group_of(ctx, repo_name),
    )
    repos.insert(ctx, repo, copy_permissions=copy_permissions)
    ctx.lock_repository(repo.repo_id)
    from repohost.git.errors import GitError

    try:
        ctx.store.create_repo(repo_name, description=repo.description)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.remove_trashed(ctx.store.trash_repo(repo_name)))
    repos.refresh_changeset_cache(ctx, repo)
    ctx.journal("user_created_repo", repo)
    answer: dict[str, Any] = {"msg": f"Created new repository `{repo_name}`", "success": True}
    if clone_uri:
        answer["task"] = repos.queue_job(ctx, "mirror", repo).job_id
    return answer


@api_method(
    access="admin, or the global hg.fork.repository with read on the source and create rights",
    errors=(
        ACCESS_DENIED,
        NOT_FOUND,
        "repo group `<path>` not found",
        "no permission to create repo in <path>",
        "no permission to create top level repo",
        "Only Kallithea admin can specify `owner` param",
        "fork `<fork_name>` already exist",
        "repo `<fork_name>` already exist",
        "failed to fork repository `<repo_name>` as `<fork_name>`",
    ),
)
def fork_repo(
    ctx: CallContext,
    repoid: int | str,
    fork_name: str,
    owner: int | str | None = None,
    description: str = "",
    copy_permissions: bool = False,
    private: bool = False,
    landing_rev: str = "rev:tip",
) -> dict[str, Any]:
    """Copy a repository (all branches and tags) into a new one that records its origin.

    A small source is copied during the call (``repos.fork_is_quick``); a bigger
    one gets an empty fork in ``repo_state_pending`` that a job fills from the
    source, and the answer carries ``task`` (the job id).
    """
    if not ctx.caller.has_global("hg.fork.repository"):
        raise JSONRPCError(ACCESS_DENIED)
    source = repos.repo_with(ctx, repoid, "read")
    owner_user = repos.check_create_rights(ctx, fork_name, owner)
    existing = repos.name_taken(ctx, fork_name)
    if existing is not None or repos.group_taken(ctx, fork_name):
        kind = "fork" if existing is not None and existing.fork_id is not None else "repo"
        raise JSONRPCError(f"{kind} `{fork_name}` already exist")
    failed = JSONRPCError(f"failed to fork repository `{source.repo_name}` as `{fork_name}`")
    repo_type = _check_new_repo_fields(fork_name, source.repo_type, landing_rev, failed)
    fork = Repository(
        repo_name=fork_name,
        repo_type=repo_type,
        description=description or fork_name,
        private=private,
        landing_rev=landing_rev,
        enable_statistics=source.enable_statistics,
        enable_downloads=source.enable_downloads,
        owner=owner_user,
        group=repos.group_of(ctx, fork_name),
        fork=source,
    )
    repos.insert(ctx, fork, copy_permissions=False)
    if copy_permissions:
        for kind in (grants.USER_ON_REPO, grants.USER_GROUP_ON_REPO):
            for row in grants.rows_on(ctx.session, kind, source.repo_id):
                holder = getattr(row, kind.holder)
                grants.grant(ctx.session, kind, holder, fork.repo_id, row.permission)
    ctx.lock_repository(fork.repo_id)
    from repohost.git.errors import GitError

    quick = repos.fork_is_quick(ctx, source.repo_name)
    try:
        if quick:
            ctx.store.clone_local(source.repo_name, fork_name, description=fork.description)
        else:
            ctx.store.create_repo(fork_name, description=fork.description)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.remove_trashed(ctx.store.trash_repo(fork_name)))
    repos.refresh_changeset_cache(ctx, fork)
    ctx.journal(f"user_forked_repo:{fork_name}", source)
    ctx.journal(f"user_created_fork:{source.repo_name}", fork)
    answer: dict[str, Any] = {
        "msg": f"Created fork of `{source.repo_name}` as `{fork_name}`",
        "success": True,
    }
    if not quick:
        fork.repo_state = "repo_state_pending"
        answer["task"] = repos.queue_job(ctx, "fork", fork).job_id
    return answer


@api_method(
    access="admin, or repository.admin on the repository (see the README for moves)",
    errors=(
        NOT_FOUND,
        "repository group `<group>` does not exist",
        "no permission to create (or move) repo in <group_name>",
        "no permission to create (or move) top level repositories",
        "Only Kallithea admin can specify `owner` param",
        "user `<owner>` does not exist",
        "clone_uri refused: <rule>",
        "failed to update repo `<repoid>`",
    ),
)
def update_repo(
    ctx: CallContext,
    repoid: int | str,
    name: str | None = None,
    owner: int | str | None = None,
    group: int | str | None = None,
    description: str | None = None,
    private: bool | None = None,
    clone_uri: str | None = None,
    landing_rev: str | None = None,
    enable_statistics: bool | None = None,
    enable_downloads: bool | None = None,
) -> dict[str, Any]:
    """Change a repository's settings; ``name`` renames it, ``group`` moves it (with its files)."""
    repo = repos.locked_repo_with(ctx, repoid, "admin")
    admin = ctx.caller.is_admin
    failed = JSONRPCError(f"failed to update repo `{repoid}`")
    target_group = repo.group
    if group is not None:
        target_group = queries.get_repo_group(ctx.session, group)
        if target_group is None:
            raise JSONRPCError(f"repository group `{group}` does not exist")
        level = ctx.caller.repo_group_permission(target_group.group_id)
        if not admin and not at_least(level, "read"):  # hidden from the caller: as if missing
            raise JSONRPCError(f"repository group `{group}` does not exist")
        if not admin and not at_least(level, "write"):
            raise JSONRPCError(
                f"no permission to create (or move) repo in {target_group.group_name}"
            )
    last = repo.repo_name.rpartition("/")[2] if name is None else name
    if "/" in last:
        raise failed
    new_name = f"{target_group.group_name}/{last}" if target_group else last
    moving = new_name != repo.repo_name
    if moving and target_group is None and not ctx.caller.has_global("hg.create.repository"):
        raise JSONRPCError("no permission to create (or move) top level repositories")
    if owner is not None:
        if not admin:
            raise JSONRPCError("Only Kallithea admin can specify `owner` param")
        owner_user = queries.get_user(ctx.session, owner)
        if owner_user is None:
            raise JSONRPCError(f"user `{owner}` does not exist")
        repo.owner = owner_user
    if landing_rev is not None:
        if not repos.valid_landing_rev(landing_rev):
            raise failed
        repo.landing_rev = landing_rev
    if clone_uri:
        repos.check_clone_uri(ctx, clone_uri)
    if clone_uri is not None:
        repo.clone_uri = clone_uri or None
    if private is not None:
        repo.private = private
        if private:
            default = queries.user_by_name(ctx.session, "default")
            assert default is not None
            grants.grant(
                ctx.session, grants.USER_ON_REPO, default.user_id, repo.repo_id, "repository.none"
            )
    for field, value in (
        ("description", description),
        ("enable_statistics", enable_statistics),
        ("enable_downloads", enable_downloads),
    ):
        if value is not None:
            setattr(repo, field, value)
    if moving:
        _rename(ctx, repo, new_name, target_group, failed)
    ctx.session.flush()
    ctx.journal("user_updated_repo", repo)
    return {
        "msg": f"updated repo ID:{repo.repo_id} {repo.repo_name}",
        "repository": repos.result(ctx, repo),
    }


def _rename(
    ctx: CallContext, repo: Repository, new_name: str, group: Any, failed: JSONRPCError
) -> None:
    """Move row and directory together; either failing undoes both."""
    from repohost.git.errors import GitError, InvalidName
    from repohost.git.names import validate_repo_name

    try:
        validate_repo_name(new_name)
    except InvalidName:
        raise failed from None
    if repos.reserved(new_name):
        raise failed
    clash = repos.name_taken(ctx, new_name)
    if (clash is not None and clash.repo_id != repo.repo_id) or repos.group_taken(ctx, new_name):
        raise failed
    old_name = repo.repo_name
    repo.repo_name, repo.group = new_name, group
    try:
        ctx.session.flush()
    except IntegrityError:  # another call took the name and committed first
        raise failed from None
    try:
        ctx.store.rename_repo(old_name, new_name)
    except GitError:
        raise failed from None
    ctx.on_rollback(lambda: ctx.store.rename_repo(new_name, old_name))


def _delete(ctx: CallContext, repo: Repository, forks_mode: str) -> int:
    """Delete a repository (and, with ``delete``, its forks); return the number of forks.

    The caller holds the repository's lock and has read the row after taking it.
    """
    forks = list(ctx.session.scalars(select(Repository).where(Repository.fork_id == repo.repo_id)))
    for fork in forks:
        if forks_mode == "detach":
            fork.fork = None
        else:
            ctx.lock_repository(fork.repo_id)
            ctx.session.refresh(fork)
            _delete(ctx, fork, forks_mode)
    ctx.session.flush()
    name = repo.repo_name
    ctx.journal(f"user_deleted_repo:{name}")
    ctx.session.delete(repo)
    ctx.session.flush()
    repos.remove_directory(ctx, name)
    return len(forks)


@api_method(
    access="admin, or repository.admin on the repository",
    errors=(
        NOT_FOUND,
        "Cannot delete `<repo_name>` it still contains attached forks",
        "failed to delete repository `<repo_name>`",
    ),
)
def delete_repo(ctx: CallContext, repoid: int | str, forks: str = "") -> dict[str, Any]:
    """Delete a repository; ``forks`` = ``detach`` or ``delete`` when it has forks."""
    repo = repos.locked_repo_with(ctx, repoid, "admin")
    name = repo.repo_name
    has_forks = ctx.session.scalars(
        select(Repository.repo_id).where(Repository.fork_id == repo.repo_id).limit(1)
    ).first()
    if has_forks is not None and forks not in ("detach", "delete"):
        raise JSONRPCError(f"Cannot delete `{name}` it still contains attached forks")
    from repohost.git.errors import GitError

    try:
        count = _delete(ctx, repo, forks)
    except GitError:
        raise JSONRPCError(f"failed to delete repository `{name}`") from None
    suffix = {"detach": f" Detached {count} forks", "delete": f" Deleted {count} forks"}
    return {"msg": f"Deleted repository `{name}`{suffix.get(forks, '')}", "success": True}


# --- permissions ----------------------------------------------------------------------------


def _repo_permission(ctx: CallContext, perm: str) -> str:
    if queries.get_permission(ctx.session, perm) is None:
        raise JSONRPCError(f"permission `{perm}` does not exist")
    if not perm.startswith("repository."):
        raise JSONRPCError(f"permission `{perm}` is invalid, should start with repository.")
    return perm


def _user_and_repo(ctx: CallContext, repoid: int | str, userid: int | str) -> tuple[Any, Any]:
    repo = queries.get_repo(ctx.session, repoid)
    if repo is None:
        raise repos.not_found(repoid)
    user = queries.get_user(ctx.session, userid)
    if user is None:
        raise JSONRPCError(f"user `{userid}` does not exist")
    return repo, user


@api_method(
    admin_only=True,
    errors=(
        NOT_FOUND,
        "user `<userid>` does not exist",
        "permission `<perm>` does not exist",
        "permission `<perm>` is invalid, should start with repository.",
    ),
)
def grant_user_permission(
    ctx: CallContext, repoid: int | str, userid: int | str, perm: str
) -> dict[str, Any]:
    """Give a user a permission level on a repository (replacing any they had)."""
    repo, user = _user_and_repo(ctx, repoid, userid)
    grants.grant(
        ctx.session, grants.USER_ON_REPO, user.user_id, repo.repo_id, _repo_permission(ctx, perm)
    )
    ctx.journal(f"admin_granted_perm:{user.username}:{perm}", repo)
    return {
        "msg": f"Granted perm: `{perm}` for user: `{user.username}` in repo: `{repo.repo_name}`",
        "success": True,
    }


@api_method(admin_only=True, errors=(NOT_FOUND, "user `<userid>` does not exist"))
def revoke_user_permission(
    ctx: CallContext, repoid: int | str, userid: int | str
) -> dict[str, Any]:
    """Remove a user's own permission row on a repository (if any)."""
    repo, user = _user_and_repo(ctx, repoid, userid)
    grants.revoke(ctx.session, grants.USER_ON_REPO, user.user_id, repo.repo_id)
    ctx.journal(f"admin_revoked_perm:{user.username}", repo)
    return {
        "msg": f"Revoked perm for user: `{user.username}` in repo: `{repo.repo_name}`",
        "success": True,
    }


def _group_and_repo(ctx: CallContext, repoid: int | str, usergroupid: int | str) -> tuple[Any, Any]:
    """Repository admin on the repository and usergroup.read on the group (or admin)."""
    repo = repos.repo_with(ctx, repoid, "admin")
    return repo, group_with(ctx, usergroupid, "read")


@api_method(
    access="admin, or repository.admin on the repository and usergroup.read on the group",
    errors=(
        NOT_FOUND,
        "permission `<perm>` does not exist",
        "user group `<usergroupid>` does not exist",
    ),
)
def grant_user_group_permission(
    ctx: CallContext, repoid: int | str, usergroupid: int | str, perm: str
) -> dict[str, Any]:
    """Give a user group a permission level on a repository."""
    repo = repos.repo_with(ctx, repoid, "admin")
    perm = _repo_permission(ctx, perm)
    group = group_with(ctx, usergroupid, "read")
    grants.grant(ctx.session, grants.USER_GROUP_ON_REPO, group.users_group_id, repo.repo_id, perm)
    ctx.journal(f"admin_granted_perm_to_users_group:{group.users_group_name}:{perm}", repo)
    return {
        "msg": (
            f"Granted perm: `{perm}` for user group: `{group.users_group_name}`"
            f" in repo: `{repo.repo_name}`"
        ),
        "success": True,
    }


@api_method(
    access="admin, or repository.admin on the repository and usergroup.read on the group",
    errors=(NOT_FOUND, "user group `<usergroupid>` does not exist"),
)
def revoke_user_group_permission(
    ctx: CallContext, repoid: int | str, usergroupid: int | str
) -> dict[str, Any]:
    """Remove a user group's permission row on a repository (if any)."""
    repo, group = _group_and_repo(ctx, repoid, usergroupid)
    grants.revoke(ctx.session, grants.USER_GROUP_ON_REPO, group.users_group_id, repo.repo_id)
    ctx.journal(f"admin_revoked_perm_from_users_group:{group.users_group_name}", repo)
    return {
        "msg": (
            f"Revoked perm for user group: `{group.users_group_name}` in repo: `{repo.repo_name}`"
        ),
        "success": True,
    }
