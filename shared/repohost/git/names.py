"""Repository and repository-group names: the only names ever turned into paths.

A full name is ``group/subgroup/repo``; each ``/``-separated segment becomes one
directory under the repository root, exactly like Kallithea's layout.

Rules (DECISIONS.md "Storage", plus the choices below, each for a reason):

- a segment is ASCII letters, digits, ``.``, ``_``, ``-`` and starts with a letter
  or digit: no hidden directories (``.trash``, ``.tmp``, ``.rc_gist_store`` and
  Kallithea's rescan all treat ``.`` names as invisible), no ``-`` that reads as
  a command-line option, no ``_`` that collides with Kallithea's ``_admin``
  routes and ``_<id>`` permanent URLs; so ``.`` and ``..`` can never be a segment;
- no non-ASCII letters: one spelling per name, no Unicode normalisation or
  homoglyph questions on the filesystem;
- a segment must not end in ``.git`` (any case): ``foo.git`` and ``foo`` would be
  the same clone URL for most git clients and servers;
- a segment must not look like Kallithea's deleted-repository directories
  (``rm__YYYYmmdd_HHMMSS_ffffff_…``), which rescans skip;
- no empty segment, so no leading, trailing or doubled ``/``;
- the full name is at most ``MAX_NAME_LENGTH`` (255, the database column) and a
  segment at most ``MAX_SEGMENT_LENGTH`` (200, leaving room in the 255-byte
  filesystem limit for the trash prefix ``YYYYmmdd_HHMMSS_ffffff_xxxxxxxx__``);
- a full name of digits only is refused: the API reads an all-digit identifier
  as a database id, so such a repository could never be named (facts §1.5).

Names that differ only in case are allowed here; keeping them unique is the
database's job, with ``casefold_key`` as the comparison key.

Gists live in ``<root>/.rc_gist_store/<access_id>``: an access id is a numeric
id (public gists) or a random token (private ones), ``validate_gist_access_id``;
a gist file is one tree entry, ``validate_gist_filename``.
"""

from __future__ import annotations

import re

from repohost.git.errors import InvalidName

__all__ = [
    "MAX_NAME_LENGTH",
    "MAX_SEGMENT_LENGTH",
    "InvalidName",
    "casefold_key",
    "split_name",
    "validate_gist_access_id",
    "validate_gist_filename",
    "validate_group_name",
    "validate_repo_name",
    "validate_segment",
]

MAX_NAME_LENGTH = 255
MAX_SEGMENT_LENGTH = 200

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_KALLITHEA_DELETED = re.compile(r"rm__\d{8}_\d{6}_\d{6}_.*")
_ACCESS_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_MAX_FILENAME_BYTES = 255


def validate_segment(segment: str) -> str:
    """Check one path segment (a repository's or group's own name); return it unchanged."""
    if not isinstance(segment, str):
        raise InvalidName("name must be a string")
    if not segment:
        raise InvalidName("empty name segment")
    if len(segment) > MAX_SEGMENT_LENGTH:
        raise InvalidName(f"name segment longer than {MAX_SEGMENT_LENGTH} characters")
    if _SEGMENT.fullmatch(segment) is None:
        raise InvalidName(
            f"invalid name segment {segment!r}: use letters, digits, '.', '_', '-' "
            "and start with a letter or digit"
        )
    if segment.lower().endswith(".git"):
        raise InvalidName(f"name segment {segment!r} must not end in '.git'")
    if _KALLITHEA_DELETED.fullmatch(segment):
        raise InvalidName(f"name segment {segment!r} is reserved for deleted repositories")
    return segment


def _validate_full(name: str, what: str) -> str:
    if not isinstance(name, str):
        raise InvalidName(f"{what} name must be a string")
    if not name:
        raise InvalidName(f"empty {what} name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} name longer than {MAX_NAME_LENGTH} characters")
    if name.startswith("/") or name.endswith("/"):
        raise InvalidName(f"{what} name must not start or end with '/'")
    if name.isdigit():
        raise InvalidName(f"{what} name must not consist of digits only")
    for segment in name.split("/"):
        validate_segment(segment)
    return name


def validate_repo_name(name: str) -> str:
    """Check a full repository name (``group/…/repo``); return it unchanged."""
    return _validate_full(name, "repository")


def validate_group_name(name: str) -> str:
    """Check a full repository-group path (``group/sub``); return it unchanged."""
    return _validate_full(name, "group")


def split_name(full: str) -> tuple[str | None, str]:
    """``'a/b/c'`` → ``('a/b', 'c')``; ``'c'`` → ``(None, 'c')``."""
    group, _, last = full.rpartition("/")
    return (group or None), last


def casefold_key(name: str) -> str:
    """Comparison key for "same name except for case" uniqueness checks."""
    return name.casefold()


def validate_gist_access_id(access_id: str) -> str:
    """Gist access ids: a numeric id (public gists) or a random token (private ones)."""
    if not isinstance(access_id, str) or _ACCESS_ID.fullmatch(access_id) is None:
        raise InvalidName(f"invalid gist access id {access_id!r}")
    return access_id


def validate_gist_filename(name: str) -> str:
    """A gist file name is one tree entry: no directory part, nothing git refuses."""
    if not isinstance(name, str) or not name:
        raise InvalidName("empty gist file name")
    if "/" in name or "\\" in name:
        raise InvalidName(f"gist file name {name!r} has a directory part")
    if name in (".", "..") or name.casefold() == ".git":
        raise InvalidName(f"gist file name {name!r} is not allowed")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise InvalidName(f"gist file name {name!r} has control characters")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates from JSON escapes
        raise InvalidName(f"gist file name {name!r} is not valid Unicode") from exc
    if size > _MAX_FILENAME_BYTES:
        raise InvalidName(f"gist file name longer than {_MAX_FILENAME_BYTES} bytes")
    return name
