"""A contribution per records/ part: a raw version's totals may come in several aggregates documents.

Revision ID: 0003
Revises: 0002

Ingestion cuts a large raw version into ``records/`` parts (``handlers.parts``), and each part becomes an
aggregates document of its own. ``pipeline_contributions`` gains ``part`` (which part of its raw version a
contribution is, 0 for every row loaded before this revision) and ``parts`` (how many parts the version
has, which part 0 knows; NULL on the others), and its unique source key gains ``part``: one contribution
per (setting, raw key, version, part). Every row already loaded is a whole version: part 0 of 1.

SQLite cannot alter a constraint in place: Alembic's batch mode copies the table there (rows, ids and
all); PostgreSQL alters it in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SOURCE = "pipeline_contributions_source"


def upgrade() -> None:
    with op.batch_alter_table("pipeline_contributions") as batch:
        batch.add_column(sa.Column("part", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("parts", sa.Integer, nullable=True))
        batch.drop_constraint(SOURCE, type_="unique")
        batch.create_unique_constraint(SOURCE, ["setting_key", "rel_key", "sequence_key", "part"])
    op.execute(sa.text("UPDATE pipeline_contributions SET parts = 1"))


def downgrade() -> None:
    raise NotImplementedError("revision 0003 keeps contributions of parts that 0002 cannot tell apart")
