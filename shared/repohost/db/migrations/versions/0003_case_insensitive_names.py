"""case-insensitive unique names for repositories and repository groups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 05:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_repositories_repo_name_lower",
        "repositories",
        [sa.text("lower(repo_name)")],
        unique=True,
    )
    op.create_index(
        "ix_groups_group_name_lower", "groups", [sa.text("lower(group_name)")], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_groups_group_name_lower", table_name="groups")
    op.drop_index("ix_repositories_repo_name_lower", table_name="repositories")
