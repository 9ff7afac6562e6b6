"""The schema before revisions: three tables, groups keyed by ``dimensions_key``, the ledger by
``content_sha256``.

Revision ID: 0001
Revises: (none)

Creates each of the three tables if it is missing, so an empty database, or one whose tables the
runtime created before revisions existed (it has no ``alembic_version`` yet), both end here.

Tables from the version before ``dimensions_key`` and ``content_sha256`` (PostgreSQL only; this was
``migrations/postgresql/0001_content_keys.sql``) are brought over, keeping their rows:

* a rollup group is keyed by ``dimensions_key``, the SHA-256 of its canonical dimensions JSON, and the
  JSON itself becomes unbounded text: a varchar(2048) key refused valid records' long dimensions;
* the ledger names a loaded object by the SHA-256 of its bytes (``content_sha256``) instead of its
  ETag, which under SSE-KMS is not a hash of the content. Rows loaded before keep their ETag in that
  column, so an object loaded before the upgrade and delivered again after it is loaded a second
  time; events in the failure queue were never loaded, so redriving them afterwards is safe.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _group_key_columns() -> list[sa.Column]:
    return [
        sa.Column("window_size", sa.String(8), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("dimensions_key", sa.String(64), primary_key=True),
        sa.Column("dimensions", sa.Text, nullable=False),
    ]


def _create_missing(present: set[str]) -> None:
    if "pipeline_rollup_groups" not in present:
        op.create_table(
            "pipeline_rollup_groups",
            *_group_key_columns(),
            sa.Column("records", sa.BigInteger, nullable=False),
        )
    if "pipeline_rollup_metrics" not in present:
        op.create_table(
            "pipeline_rollup_metrics",
            *_group_key_columns(),
            sa.Column("metric", sa.String(256), primary_key=True),
            sa.Column("count", sa.BigInteger, nullable=False),
            sa.Column("sum", sa.Double, nullable=False),
            sa.Column("min", sa.Double, nullable=False),
            sa.Column("max", sa.Double, nullable=False),
        )
    if "pipeline_ledger" not in present:
        op.create_table(
            "pipeline_ledger",
            sa.Column("object_key", sa.String(1024), primary_key=True),
            sa.Column("content_sha256", sa.String(64), primary_key=True),
            sa.Column("groups", sa.BigInteger, nullable=False),
            sa.Column("records", sa.BigInteger, nullable=False),
            sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        )


def _key_by_digest(table: str, key: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS dimensions_key varchar(64)",
        f"UPDATE {table} SET dimensions_key = encode(sha256(convert_to(dimensions, 'UTF8')), 'hex') "
        "WHERE dimensions_key IS NULL",
        f"ALTER TABLE {table} ALTER COLUMN dimensions_key SET NOT NULL",
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey",
        f"ALTER TABLE {table} ADD PRIMARY KEY ({key})",
        f"ALTER TABLE {table} ALTER COLUMN dimensions TYPE text",
    ]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    columns = {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in ("pipeline_rollup_groups", "pipeline_rollup_metrics", "pipeline_ledger")
        if table in present
    }
    steps = []
    if "dimensions_key" not in columns.get("pipeline_rollup_groups", {"dimensions_key"}):
        steps += _key_by_digest("pipeline_rollup_groups", "window_size, window_start, dimensions_key")
    if "dimensions_key" not in columns.get("pipeline_rollup_metrics", {"dimensions_key"}):
        steps += _key_by_digest(
            "pipeline_rollup_metrics", "window_size, window_start, dimensions_key, metric"
        )
    if "etag" in columns.get("pipeline_ledger", set()):
        steps += [
            "ALTER TABLE pipeline_ledger RENAME COLUMN etag TO content_sha256",
            "ALTER TABLE pipeline_ledger ALTER COLUMN content_sha256 TYPE varchar(64)",
        ]
    if steps and bind.dialect.name != "postgresql":
        raise RuntimeError(
            "the analytics tables predate dimensions_key and content_sha256, which only PostgreSQL "
            "databases are migrated from; delete this local SQLite file and run again"
        )
    for step in steps:
        op.execute(step)
    _create_missing(present)


def downgrade() -> None:
    raise NotImplementedError("revision 0001 is the first: restore a backup to go further back")
