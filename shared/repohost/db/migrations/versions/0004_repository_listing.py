"""get_repos' JSON text kept with each repository (PostgreSQL trigger)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:40:00

``get_repos`` over 10,000 repositories spent most of its time in PostgreSQL
writing each repository's object as JSON. A trigger now writes the parts that
depend on the repository's own row whenever the row is inserted or updated:

- ``listing_head``: the object's text from ``{"repo_id"`` through
  ``landing_rev``, without the closing brace;
- ``listing_tail``: from ``"enable_statistics"`` through ``last_changeset``
  and the closing brace, without the opening one;
- ``listing_date_plain``: whether ``last_changeset``'s date is the plain
  ``YYYY-MM-DDTHH:MM:SS`` text the answer shows as it is.

``owner`` and ``fork_of`` live in other rows (a user's name, the origin's
name), so ``get_repos`` joins them in between at query time. The columns exist
on SQLite too, always NULL: there ``get_repos`` builds objects in Python.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The keys and their formatting are those of ``repohost.methods._objects.repo_object``;
# ``locked_by`` and ``locked_date`` are filled in by Python for locked repositories.
_FUNCTION = r"""
CREATE OR REPLACE FUNCTION repositories_listing() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    colon integer := strpos(NEW.landing_rev, ':');
BEGIN
    SELECT left(row_to_json(head)::text, -1),
           substr(row_to_json(tail)::text, 2),
           coalesce(NEW.changeset_cache::text LIKE '%"date": "____-__-__T__:__:__"%', false)
      INTO NEW.listing_head, NEW.listing_tail, NEW.listing_date_plain
      FROM (SELECT NEW.repo_id AS repo_id,
                   NEW.repo_name AS repo_name,
                   NEW.repo_type AS repo_type,
                   NEW.clone_uri AS clone_uri,
                   NEW.private AS private,
                   to_char(NEW.created_on, 'YYYY-MM-DD"T"HH24:MI:SS')
                     || CASE WHEN date_trunc('second', NEW.created_on) = NEW.created_on
                             THEN '' ELSE to_char(NEW.created_on, '.MS') END AS created_on,
                   NEW.description AS description,
                   json_build_array(
                       split_part(NEW.landing_rev, ':', 1),
                       CASE WHEN colon > 0 THEN substr(NEW.landing_rev, colon + 1) ELSE '' END
                   ) AS landing_rev) AS head,
           (SELECT NEW.enable_statistics AS enable_statistics,
                   NEW.enable_downloads AS enable_downloads,
                   NEW.enable_locking AS enable_locking,
                   NULL AS locked_by,
                   NULL AS locked_date,
                   NEW.changeset_cache AS last_changeset) AS tail;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch_op:
        batch_op.add_column(sa.Column("listing_head", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("listing_tail", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("listing_date_plain", sa.Boolean(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER repositories_listing BEFORE INSERT OR UPDATE ON repositories"
        " FOR EACH ROW EXECUTE FUNCTION repositories_listing()"
    )
    op.execute("UPDATE repositories SET repo_id = repo_id")  # the rows already there


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER repositories_listing ON repositories")
        op.execute("DROP FUNCTION repositories_listing()")
    with op.batch_alter_table("repositories") as batch_op:
        batch_op.drop_column("listing_date_plain")
        batch_op.drop_column("listing_tail")
        batch_op.drop_column("listing_head")
