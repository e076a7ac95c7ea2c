"""Result objects exactly as Kallithea's API returns them (facts §2).

No object here ever carries an API key, a password hash or IP data.
"""

from __future__ import annotations

from typing import Any

from repohost.db.models import User, UserGroup


def user_object(user: User) -> dict[str, Any]:
    """Facts §2.1: the primary e-mail first, then the extra ones."""
    return {
        "user_id": user.user_id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "email": user.email,
        "emails": [user.email, *(e.email for e in user.extra_emails)],
        "active": user.active,
        "admin": user.admin,
    }


def user_group_object(group: UserGroup) -> dict[str, Any]:
    """Facts §2.4, with members."""
    return {
        "users_group_id": group.users_group_id,
        "group_name": group.users_group_name,
        "group_description": group.user_group_description,
        "active": group.users_group_active,
        "owner": group.owner.username,
        "members": [user_object(m.user) for m in group.members],
    }
