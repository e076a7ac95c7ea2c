"""Who may do what with a gist: roles × gist methods, each cell the exact outcome.

Every cell runs in a fresh copy of the world built by ``gist_world()``: the
user ``gist_owner`` with a public and a private gist of their own (the
``PUBLIC`` table names the public one, ``PRIVATE`` the private one), a second
regular user ``other``, and a deactivated user ``inactive_user``. The owner
may call only from 127.0.0.0/8: ``ip_refused`` is the owner's own key from
another address, and ``expired_key`` an extra key of the owner's that has
expired, so those two rows are refused for the credential alone, not for
whose gist it is. ``anonymous`` is the default user's key. Read a row as
"this role calling these methods gets …".

The rules (facts §3.6, §1.4, §4.8): a gist is the owner's and the admins';
anyone else is told it does not exist, whether it is public or private and
whether it is named by access id or by number; ``get_gists`` lists the
caller's own gists unless an admin names someone (a non-admin may name only
themselves, and only by numeric id); any user may create a gist, and only an
admin may create one for someone else (``owner``). That last one is stricter
than Kallithea, which lets anyone name any owner (facts §3.6, §9.8).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, repos_root
from tests.support.api import Api, LambdaTransport
from tests.support.matrix import parse_table
from tests.test_repo_permission_matrix import REFUSED_IP, assert_untouched, method_of, restored

WORLD = "gists"

#: Cell codes → the exact outcome (``{gistid}``: the ``gistid`` argument as sent).
OK = "ok"  # the call succeeds; what it answered and did is checked by ``check_effect``
SEEN = "seen"  # get_gists succeeds and lists the table's gist
UNSEEN = "unseen"  # get_gists succeeds and does not list it
ERRORS = {
    "hidden": "gist `{gistid}` does not exist",
    "notsame": "userid is not the same as your user",
    "onlyadm": "Only Kallithea admin can specify `owner` param",
    "nokey": "Invalid API key",
    "noip": f"request from IP:{REFUSED_IP} not allowed",
}

GIST_METHODS = (
    "create_gist",
    "create_gist(owner)",
    "get_gist",
    "get_gist(id)",
    "get_gists",
    "get_gists(owner id)",
    "get_gists(owner name)",
    "delete_gist",
)

# create: a gist of the table's type; (owner): with owner=gist_owner. get_gist: by access
# id; (id): by number. get_gists: no userid; (owner id), (owner name): userid=the owner.
# fmt: off
#               create  create  get     get     get     get     get     delete
#               gist    (owner) gist    (id)    gists   gists   gists   gist
#                                                       (id)    (name)
PUBLIC = """
gist_owner      ok      onlyadm ok      ok      seen    seen    notsame ok
other           ok      onlyadm hidden  hidden  unseen  notsame notsame hidden
admin           ok      ok      ok      ok      unseen  seen    seen    ok
anonymous       nokey   nokey   nokey   nokey   nokey   nokey   nokey   nokey
inactive_user   nokey   nokey   nokey   nokey   nokey   nokey   nokey   nokey
expired_key     nokey   nokey   nokey   nokey   nokey   nokey   nokey   nokey
ip_refused      noip    noip    noip    noip    noip    noip    noip    noip
"""

# The API treats a private gist as a public one (its access id is what keeps it private).
PRIVATE = PUBLIC
# fmt: on


CODES = (OK, SEEN, UNSEEN, *ERRORS)
EXPECTED = {
    "public": parse_table(PUBLIC, GIST_METHODS, CODES),
    "private": parse_table(PRIVATE, GIST_METHODS, CODES),
}
ROLES = tuple(EXPECTED["public"])

FILES = {"new.txt": {"content": "new\n", "lexer": "text"}}

#: Each column's arguments; ``ACCESS_ID``, ``GIST_ID``, ``OWNER_ID`` and ``TYPE`` name the
#: table's gist, its owner's id and the table's gist type.
ARGS: dict[str, dict[str, Any]] = {
    "create_gist": {"files": FILES, "gist_type": "TYPE", "description": "new"},
    "create_gist(owner)": {
        "files": FILES,
        "gist_type": "TYPE",
        "description": "new",
        "owner": "gist_owner",
    },
    "get_gist": {"gistid": "ACCESS_ID"},
    "get_gist(id)": {"gistid": "GIST_ID"},
    "get_gists": {},
    "get_gists(owner id)": {"userid": "OWNER_ID"},
    "get_gists(owner name)": {"userid": "gist_owner"},
    "delete_gist": {"gistid": "ACCESS_ID"},
}
READS = {"get_gist", "get_gist(id)", "get_gists", "get_gists(owner id)", "get_gists(owner name)"}


@dataclass
class GistWorld:
    keys: dict[str, str]
    owner_id: int
    #: ``public``/``private`` → the owner's gist object of that type.
    gists: dict[str, dict[str, Any]]


def gist_world(api: Api) -> GistWorld:
    from repohost.db.engine import transaction
    from repohost.db.models import UserApiKey, UserIpMap

    keys = {"admin": ADMIN_KEY}
    owner_id, keys["gist_owner"] = api.new_user("gist_owner")
    _uid, keys["other"] = api.new_user("other")
    _uid, keys["inactive_user"] = api.new_user("inactive_user")
    api.call("update_user", userid="inactive_user", active=False)
    keys["anonymous"] = api.call("create_api_key", userid="default")["api_key"]
    owner = api.as_user(keys["gist_owner"])
    gists = {
        kind: owner.call(
            "create_gist",
            files={f"{kind}.txt": {"content": f"{kind}\n"}},
            gist_type=kind,
            description=kind,
        )["gist"]
        for kind in ("public", "private")
    }
    old = owner.call("create_api_key", description="old")
    keys["expired_key"] = old["api_key"]
    keys["ip_refused"] = keys["gist_owner"]  # called from REFUSED_IP
    with transaction() as session:
        session.get(UserApiKey, old["api_key_id"]).expires = time.time() - 1
        session.add(UserIpMap(user_id=owner_id, ip_addr="127.0.0.0/8"))
    return GistWorld(keys, owner_id, gists)


@pytest.fixture
def admin(migrated: str) -> Api:
    return Api(LambdaTransport(), ADMIN_KEY)


def gist_row(access_id: str) -> tuple[str, str, str] | None:
    """The stored gist's owner, type and description, or None."""
    from sqlalchemy import select

    from repohost.db.engine import transaction
    from repohost.db.models import Gist, User

    with transaction() as session:
        row = session.execute(
            select(User.username, Gist.gist_type, Gist.gist_description)
            .join(User, User.user_id == Gist.owner_id)
            .where(Gist.gist_access_id == access_id)
        ).one_or_none()
    return None if row is None else tuple(row)


def stored(access_id: str) -> bool:
    return (repos_root() / ".rc_gist_store" / access_id).is_dir()


def check_effect(
    admin: Api, column: str, result: Any, gist: dict[str, Any], kind: str, role: str
) -> None:
    """What a successful write by ``role`` (also its user name) must have answered and done."""
    if column.startswith("create_gist"):
        made = result["gist"]
        assert result == {"msg": "created new gist", "gist": made}
        assert made["type"] == kind and made["description"] == "new"
        assert made["gist_id"] != gist["gist_id"]
        if kind == "public":
            assert made["access_id"] == str(made["gist_id"])
        owner = "gist_owner" if column == "create_gist(owner)" else role
        assert gist_row(made["access_id"]) == (owner, kind, "new")
        assert stored(made["access_id"])
    elif column == "delete_gist":
        access_id = gist["access_id"]
        assert result == {"msg": f"deleted gist ID:{access_id}", "gist": None}
        assert gist_row(access_id) is None and not stored(access_id)
        assert admin.error("get_gist", gistid=access_id) == f"gist `{access_id}` does not exist"
    else:
        raise AssertionError(f"no check for {column}")


CASES = [(kind, role, column) for kind in EXPECTED for role in ROLES for column in GIST_METHODS]


@pytest.mark.parametrize(("kind", "role", "column"), CASES, ids=["-".join(c) for c in CASES])
def test_matrix(admin: Api, migrated: str, kind: str, role: str, column: str) -> None:
    w = restored(admin, migrated, WORLD, gist_world)
    gist = w.gists[kind]
    values = {
        "ACCESS_ID": gist["access_id"],
        "GIST_ID": gist["gist_id"],
        "OWNER_ID": w.owner_id,
        "TYPE": kind,
    }
    args = {k: values.get(v, v) if isinstance(v, str) else v for k, v in ARGS[column].items()}
    ip = REFUSED_IP if role == "ip_refused" else None
    envelope = admin.as_user(w.keys[role], ip=ip).envelope(method_of(column), args)
    expected = EXPECTED[kind][role][column]
    if expected in ERRORS:
        error = ERRORS[expected].format(gistid=args.get("gistid"))
        assert envelope == {"id": 7, "result": None, "error": error}
        if column not in READS:
            assert_untouched(migrated, WORLD)
        return
    assert envelope["error"] is None, envelope
    result = envelope["result"]
    if expected in (SEEN, UNSEEN):
        listed = {g["gist_id"]: g for g in result}
        assert listed.get(gist["gist_id"]) == (gist if expected == SEEN else None)
    elif column in READS:
        assert result == gist
    else:
        check_effect(admin, column, result, gist, kind, role)


def test_the_table_covers_every_gist_method() -> None:
    """A new gist method must get a column here before it ships."""
    from repohost.methods._index import METHOD_MODULES

    gists = {m for m, module in METHOD_MODULES.items() if module == "gists"}
    assert gists == {method_of(c) for c in GIST_METHODS}
