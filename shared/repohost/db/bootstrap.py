"""Rows every installation needs: permission names, the anonymous user, the first admin."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from repohost.auth.keys import DEFAULT_USER, add_key
from repohost.auth.permissions import ALL_PERMISSIONS, DEFAULT_GLOBAL_PERMISSIONS
from repohost.db.engine import transaction
from repohost.db.models import Permission, User, UserToPerm


def _ensure_permissions(session: Session) -> dict[str, Permission]:
    existing = {p.permission_name: p for p in session.scalars(select(Permission))}
    for name in ALL_PERMISSIONS:
        if name not in existing:
            existing[name] = Permission(permission_name=name)
            session.add(existing[name])
    session.flush()
    return existing


def _ensure_default_user(session: Session, permissions: dict[str, Permission]) -> None:
    default = session.scalars(select(User).where(User.username == DEFAULT_USER)).one_or_none()
    if default is not None:
        return
    default = User(
        username=DEFAULT_USER,
        email="anonymous@kallithea-scm.org",
        firstname="Anonymous",
        lastname="User",
        active=True,
    )
    session.add(default)
    session.flush()
    for name in DEFAULT_GLOBAL_PERMISSIONS:
        session.add(UserToPerm(user_id=default.user_id, permission=permissions[name]))


def ensure_defaults() -> None:
    """Create the permission names and the anonymous ``default`` user if missing."""
    with transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(7283542)))
        _ensure_default_user(session, _ensure_permissions(session))


def ensure_first_admin(api_key: str | None = None) -> str | None:
    """Create the ``admin`` user if no admin exists; return its new API key, else None.

    ``api_key`` (``ADMIN_API_KEY`` under ``make run``) chooses the key, for automation.
    """
    with transaction() as session:
        if session.scalars(select(User.user_id).where(User.admin).limit(1)).first() is not None:
            return None
        admin = User(
            username="admin",
            email="admin@localhost",
            firstname="Repohost",
            lastname="Administrator",
            admin=True,
            active=True,
        )
        session.add(admin)
        session.flush()
        _row, plain = add_key(session, admin, description="first admin key", key=api_key)
        return plain
