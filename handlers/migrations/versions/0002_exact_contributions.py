"""Exact metric columns, aggregation settings, and each source's contribution to the rollups.

Revision ID: 0002
Revises: 0001

* ``pipeline_settings``: one row per aggregation setting (window, dimension names, metric names); the
  rollups gain ``setting_key`` in their primary key, so settings never share a row.
* ``sum``, ``min``, ``max`` become exact: ``NUMERIC`` on PostgreSQL, canonical decimal text on SQLite.
* ``pipeline_contributions``, ``pipeline_contribution_groups``, ``pipeline_contribution_metrics``:
  what each source version added, so that a newer version can take an older one's out.
* ``pipeline_ledger.state``: what loading each delivered object did (``loaded`` for every older row).

The rollup rows already loaded move over, every one of them. Their doubles become the shortest
decimal that reads back as the same double (0.1 stays 0.1; a sum a float already rounded stays
rounded). Their setting is their window, the names in their dimensions JSON and the metric names
the rollups of that window and those names hold. They have no per-source contributions, so each
setting's old rows become one legacy contribution (``rel`` empty): a later load adds to them and a
recompute still includes them, but an overwrite of a raw key loaded before this revision cannot take
that key's old data out of the totals.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEGACY_REL_KEY = hashlib.sha256(b"").hexdigest()
LEGACY_SEQUENCE = "0" * 64
MAPPING = "pipeline_0002_legacy_settings"


def _exact() -> sa.types.TypeEngine[Any]:
    return sa.Numeric().with_variant(sa.Text(), "sqlite")


def _group_key_columns() -> list[sa.Column]:
    return [
        sa.Column("setting_key", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("dimensions_key", sa.String(64), primary_key=True),
        sa.Column("window_size", sa.String(8), nullable=False),
        sa.Column("dimensions", sa.Text, nullable=False),
    ]


def _stats_columns() -> list[sa.Column]:
    return [
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum", _exact(), nullable=False),
        sa.Column("min", _exact(), nullable=False),
        sa.Column("max", _exact(), nullable=False),
    ]


def _create_tables() -> None:
    op.create_table(
        "pipeline_settings",
        sa.Column("setting_key", sa.String(64), primary_key=True),
        sa.Column("window_size", sa.String(8), nullable=False),
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
    )
    op.create_table(
        "pipeline_rollup_groups", *_group_key_columns(), sa.Column("records", sa.BigInteger, nullable=False)
    )
    op.create_table(
        "pipeline_rollup_metrics",
        *_group_key_columns(),
        sa.Column("metric", sa.String(256), primary_key=True),
        *_stats_columns(),
    )
    op.create_table(
        "pipeline_contributions",
        sa.Column("contribution_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("setting_key", sa.String(64), nullable=False),
        sa.Column("rel_key", sa.String(64), nullable=False),
        sa.Column("sequence_key", sa.String(64), nullable=False),
        sa.Column("rel", sa.Text, nullable=False),
        sa.Column("sequencer", sa.String(64), nullable=False),
        sa.Column("version_id", sa.String(1024)),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("groups", sa.BigInteger, nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("setting_key", "rel_key", "sequence_key", name="pipeline_contributions_source"),
    )
    op.create_table(
        "pipeline_contribution_groups",
        sa.Column("contribution_id", sa.BigInteger, primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("dimensions_key", sa.String(64), primary_key=True),
        sa.Column("setting_key", sa.String(64), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "pipeline_contribution_groups_group",
        "pipeline_contribution_groups",
        ["setting_key", "window_start", "dimensions_key"],
    )
    op.create_table(
        "pipeline_contribution_metrics",
        sa.Column("contribution_id", sa.BigInteger, primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("dimensions_key", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(256), primary_key=True),
        *_stats_columns(),
    )


def _setting_key(window: str, dimensions: list[str], metrics: list[str]) -> str:
    """As handlers.database.setting_key: the SHA-256 of the setting's canonical JSON."""
    document = {"dimensions": sorted(dimensions), "metrics": sorted(metrics), "window": window}
    return hashlib.sha256(msgspec.json.encode(document, order="sorted")).hexdigest()


def _names(dimensions: str) -> str:
    return msgspec.json.encode(sorted(json.loads(dimensions))).decode()


def _exact_text(value: float | int | None) -> str | None:
    """A stored double as the shortest decimal that reads back as it, in canonical spelling."""
    if value is None or isinstance(value, int):
        return None if value is None else str(value)
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _install_functions(bind: sa.Connection) -> None:
    """``pipeline_0002_names(dimensions)``: a JSON list of the dimension names (the legacy setting's
    part the row itself holds); ``pipeline_0002_exact(double)``: the exact value the column stores."""
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(
            "CREATE FUNCTION pipeline_0002_names(dimensions text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
            "SELECT COALESCE(json_agg(k ORDER BY k COLLATE \"C\"), '[]'::json)::text "
            "FROM json_object_keys(dimensions::json) AS k $$"
        )
        # Since PostgreSQL 12 any positive extra_float_digits prints a double's shortest exact form.
        bind.exec_driver_sql(
            "CREATE FUNCTION pipeline_0002_exact(value double precision) RETURNS numeric LANGUAGE sql "
            "IMMUTABLE SET extra_float_digits = 3 AS $$ SELECT value::text::numeric $$"
        )
        return
    driver = bind.connection.driver_connection
    driver.create_function("pipeline_0002_names", 1, _names, deterministic=True)
    driver.create_function("pipeline_0002_exact", 1, _exact_text, deterministic=True)


def _legacy_settings(bind: sa.Connection) -> None:
    """One setting per (window, dimension names) the old rollups hold, with the metric names held
    under them; written to pipeline_settings and to the mapping the copy joins on."""
    found: dict[tuple[str, str], set[str]] = {}
    for window, names in bind.execute(
        sa.text(
            "SELECT DISTINCT window_size, pipeline_0002_names(dimensions) FROM pipeline_rollup_groups_0001"
        )
    ):
        found.setdefault((window, names), set())
    for window, names, metric in bind.execute(
        sa.text(
            "SELECT DISTINCT window_size, pipeline_0002_names(dimensions), metric "
            "FROM pipeline_rollup_metrics_0001"
        )
    ):
        found.setdefault((window, names), set()).add(metric)
    mapping, rows = [], []
    for (window, names), metrics in sorted(found.items()):
        dimensions = json.loads(names)
        key = _setting_key(window, dimensions, sorted(metrics))
        mapping.append({"window_size": window, "names": names, "setting_key": key})
        rows.append(
            {
                "setting_key": key,
                "window_size": window,
                "dimensions": msgspec.json.encode(sorted(dimensions)).decode(),
                "metrics": msgspec.json.encode(sorted(metrics)).decode(),
            }
        )
    if rows:
        columns = ("setting_key", "window_size", "dimensions", "metrics")
        op.bulk_insert(sa.table("pipeline_settings", *(sa.column(name) for name in columns)), rows)
        op.bulk_insert(
            sa.table(MAPPING, *(sa.column(name) for name in ("window_size", "names", "setting_key"))), mapping
        )


_COPY = [
    "INSERT INTO pipeline_rollup_groups "
    "(setting_key, window_start, dimensions_key, window_size, dimensions, records) "
    "SELECT m.setting_key, g.window_start, g.dimensions_key, g.window_size, g.dimensions, g.records "
    f"FROM pipeline_rollup_groups_0001 g JOIN {MAPPING} m "
    "ON m.window_size = g.window_size AND m.names = pipeline_0002_names(g.dimensions)",
    "INSERT INTO pipeline_rollup_metrics "
    "(setting_key, window_start, dimensions_key, window_size, dimensions, metric, count, sum, min, max) "
    "SELECT m.setting_key, r.window_start, r.dimensions_key, r.window_size, r.dimensions, r.metric, r.count, "
    "pipeline_0002_exact(r.sum), pipeline_0002_exact(r.min), pipeline_0002_exact(r.max) "
    f"FROM pipeline_rollup_metrics_0001 r JOIN {MAPPING} m "
    "ON m.window_size = r.window_size AND m.names = pipeline_0002_names(r.dimensions)",
    "INSERT INTO pipeline_contributions (setting_key, rel_key, sequence_key, rel, sequencer, version_id, "
    "object_key, content_sha256, groups, records) "
    "SELECT m.setting_key, :legacy, :sequence, '', '', NULL, '', '', COUNT(g.setting_key), "
    "COALESCE(SUM(g.records), 0) "
    f"FROM {MAPPING} m LEFT JOIN pipeline_rollup_groups g ON g.setting_key = m.setting_key "
    "GROUP BY m.setting_key",
    "INSERT INTO pipeline_contribution_groups "
    "(contribution_id, window_start, dimensions_key, setting_key, records) "
    "SELECT c.contribution_id, g.window_start, g.dimensions_key, g.setting_key, g.records "
    "FROM pipeline_rollup_groups g JOIN pipeline_contributions c "
    "ON c.setting_key = g.setting_key AND c.rel_key = :legacy",
    "INSERT INTO pipeline_contribution_metrics "
    "(contribution_id, window_start, dimensions_key, metric, count, sum, min, max) "
    "SELECT c.contribution_id, r.window_start, r.dimensions_key, r.metric, r.count, r.sum, r.min, r.max "
    "FROM pipeline_rollup_metrics r JOIN pipeline_contributions c "
    "ON c.setting_key = r.setting_key AND c.rel_key = :legacy",
]


def _count(bind: sa.Connection, table: str) -> int:
    return bind.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.add_column(
        "pipeline_ledger", sa.Column("state", sa.String(16), nullable=False, server_default="loaded")
    )
    inspector = sa.inspect(bind)
    for table in ("pipeline_rollup_groups", "pipeline_rollup_metrics"):
        primary_key = inspector.get_pk_constraint(table).get("name")
        op.rename_table(table, f"{table}_0001")
        if postgresql and primary_key:  # the new table's key takes the name
            op.execute(f'ALTER TABLE {table}_0001 RENAME CONSTRAINT "{primary_key}" TO "{table}_0001_pkey"')
    _create_tables()
    op.create_table(
        MAPPING,
        sa.Column("window_size", sa.String(8), nullable=False),
        sa.Column("names", sa.Text, nullable=False),
        sa.Column("setting_key", sa.String(64), nullable=False),
    )
    _install_functions(bind)
    _legacy_settings(bind)
    for statement in _COPY:
        bind.execute(sa.text(statement), {"legacy": LEGACY_REL_KEY, "sequence": LEGACY_SEQUENCE})
    for old, new in (
        ("pipeline_rollup_groups_0001", "pipeline_rollup_groups"),
        ("pipeline_rollup_metrics_0001", "pipeline_rollup_metrics"),
        ("pipeline_rollup_groups_0001", "pipeline_contribution_groups"),
        ("pipeline_rollup_metrics_0001", "pipeline_contribution_metrics"),
    ):
        if _count(bind, old) != _count(bind, new):  # a row left behind: roll the whole upgrade back
            raise RuntimeError(f"revision 0002 would lose rows of {old} (moving them to {new})")
    op.drop_table("pipeline_rollup_groups_0001")
    op.drop_table("pipeline_rollup_metrics_0001")
    op.drop_table(MAPPING)
    if postgresql:
        op.execute("DROP FUNCTION pipeline_0002_names(text)")
        op.execute("DROP FUNCTION pipeline_0002_exact(double precision)")


def downgrade() -> None:
    raise NotImplementedError("revision 0002 keeps exact values and contributions 0001 cannot hold")
