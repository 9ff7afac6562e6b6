"""The analytics database: schema, the rollup upsert and the load ledger (SQLAlchemy 2.0 Core).

Only the analytics stage imports this module, so only it pays SQLAlchemy's import time.

Tables (created if missing, once per container):

* ``pipeline_rollup_groups`` — one row per (window size, window start, dimensions): ``records``.
* ``pipeline_rollup_metrics`` — one row per group and metric: ``count``, ``sum``, ``min``, ``max``.
* ``pipeline_ledger`` — one row per loaded aggregates object: ``object_key`` + ``content_sha256`` (of
  its bytes; an ETag is not a content hash under SSE-KMS).

``dimensions`` is the group's dimension values as canonical JSON (sorted keys), so any configured
dimension set fits one table. It is unbounded text (a 256-character ``type`` with control characters
escaped is already 1.5 KB), so the key holds ``dimensions_key``, its SHA-256: a B-tree key entry
has a size limit (about 2.7 KB on PostgreSQL), a digest always fits it.

A load claims the object in the ledger and upserts the rollups in one transaction: a duplicate delivery
finds its ledger row and changes nothing; a failure rolls everything back. The upsert adds counts and
sums and keeps min and max, using ``INSERT ... ON CONFLICT DO UPDATE`` on PostgreSQL and SQLite and,
for any other database, a portable select-then-write inside the same transaction (it relies on the
ledger's primary key to serialise duplicate deliveries).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from handlers.aggregate import FLOAT_MAX, GroupKey, GroupStats
from handlers.errors import ConfigError, DatabaseUnavailableError, LoadRejectedError

CONNECT_TIMEOUT_SECONDS = 5

metadata = MetaData()


def _group_key_columns() -> list[Column[Any]]:
    """A rollup group's key and dimensions, shared by both rollup tables (a Column belongs to one table)."""
    return [
        Column("window_size", String(8), primary_key=True),
        Column("window_start", DateTime(timezone=True), primary_key=True),
        Column("dimensions_key", String(64), primary_key=True),
        Column("dimensions", Text, nullable=False),
    ]


rollup_groups = Table(
    "pipeline_rollup_groups",
    metadata,
    *_group_key_columns(),
    Column("records", BigInteger, nullable=False),
)

rollup_metrics = Table(
    "pipeline_rollup_metrics",
    metadata,
    *_group_key_columns(),
    Column("metric", String(256), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("sum", Double, nullable=False),
    Column("min", Double, nullable=False),
    Column("max", Double, nullable=False),
)

ledger = Table(
    "pipeline_ledger",
    metadata,
    Column("object_key", String(1024), primary_key=True),
    Column("content_sha256", String(64), primary_key=True),
    Column("groups", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def connect(url: str) -> Engine:
    """An engine for ``url`` with the schema in place; connection faults raise DatabaseUnavailableError."""
    connect_args: dict[str, Any] = {}
    if make_url(url).get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS  # fail fast, not at the Lambda timeout
    engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    try:
        _create_schema(engine)
    except (OperationalError, InterfaceError) as exc:
        engine.dispose()
        raise DatabaseUnavailableError(f"cannot reach the database: {exc.orig}") from exc
    except ConfigError:
        engine.dispose()
        raise
    return engine


# What PostgreSQL and SQLite say when another session created the same table a moment earlier.
_CREATED_CONCURRENTLY = ("already exists", "duplicate key value violates unique constraint")


def _create_schema(engine: Engine) -> None:
    """Create the tables if missing, tolerating a concurrent cold start that creates them first.

    ``checkfirst`` looks, then creates: two containers starting together can both see no table, and the
    slower one's CREATE fails. Failing the event for that would send it to the failure queue for
    nothing, so the loser looks again, and then finds the tables.
    """
    try:
        metadata.create_all(engine, checkfirst=True)
    except DBAPIError as exc:
        if not any(text in str(exc.orig) for text in _CREATED_CONCURRENTLY):
            raise
        metadata.create_all(engine, checkfirst=True)
    _check_columns(engine)


MIGRATION = "migrations/postgresql/0001_content_keys.sql"


def _check_columns(engine: Engine) -> None:
    """ConfigError if a table an older version created lacks a column this one writes.

    ``create_all`` leaves existing tables as they are, so without this check every load into an old
    schema would fail on its retries with a missing-column error.
    """
    inspector = inspect(engine)
    missing = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{column.name}" for column in table.columns if column.name not in present]
    if missing:
        raise ConfigError(
            f"the database lacks {', '.join(missing)}: its tables were created by an older version of "
            f"the pipeline; apply {MIGRATION} (PostgreSQL) or recreate the tables"
        )


def dimensions_json(names: Sequence[str], values: Sequence[Any]) -> str:
    return msgspec.json.encode(dict(zip(names, values, strict=True)), order="sorted").decode()


def _rows(
    window: str, dimensions: Sequence[str], groups: Mapping[GroupKey, GroupStats]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    group_rows, metric_rows = [], []
    for (start, values), stats in groups.items():
        text = dimensions_json(dimensions, values)
        key = {
            "window_size": window,
            "window_start": datetime.fromisoformat(start.replace("Z", "+00:00")),
            "dimensions_key": hashlib.sha256(text.encode()).hexdigest(),
            "dimensions": text,
        }
        group_rows.append({**key, "records": stats.records})
        for metric, s in stats.metrics.items():
            metric_rows.append(
                {**key, "metric": metric, "count": s.count, "sum": s.sum, "min": s.min, "max": s.max}
            )
    # Rows in primary-key order: concurrent loads touching the same groups then take their row locks
    # in the same order, so they wait for each other instead of deadlocking.
    group_rows.sort(key=lambda row: (row["window_start"], row["dimensions_key"]))
    metric_rows.sort(key=lambda row: (row["window_start"], row["dimensions_key"], row["metric"]))
    return group_rows, metric_rows


def _upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], add: Sequence[str], keep: Mapping[str, str]
) -> None:
    """Insert ``rows``; on a key conflict add the ``add`` columns and keep the ``keep`` columns' min/max."""
    if not rows:
        return
    keys = [column.name for column in table.primary_key.columns]
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        stmt = module.insert(table)
        pick: dict[str, Callable[..., Any]] = (
            {"min": func.least, "max": func.greatest}
            if dialect == "postgresql"
            else {"min": func.min, "max": func.max}  # SQLite's two-argument min/max are scalar functions
        )
        assignments = {name: table.c[name] + stmt.excluded[name] for name in add}
        assignments |= {name: pick[how](table.c[name], stmt.excluded[name]) for name, how in keep.items()}
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=assignments), rows)
        return
    for row in rows:
        match = and_(*(table.c[name] == row[name] for name in keys))
        current = conn.execute(select(table).where(match).with_for_update()).mappings().first()
        if current is None:
            conn.execute(insert(table).values(row))
            continue
        changes = {name: current[name] + row[name] for name in add}
        for name, how in keep.items():
            changes[name] = min(current[name], row[name]) if how == "min" else max(current[name], row[name])
        conn.execute(update(table).where(match).values(changes))


def _claim(conn: Connection, object_key: str, content_sha256: str, groups: int, records: int) -> bool:
    """Record the object in the ledger; False if it was already loaded."""
    row = {"object_key": object_key, "content_sha256": content_sha256, "groups": groups, "records": records}
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        module = postgresql if dialect == "postgresql" else sqlite
        result = conn.execute(module.insert(ledger).values(row).on_conflict_do_nothing())
        return result.rowcount == 1
    try:
        with conn.begin_nested():
            conn.execute(insert(ledger).values(row))
    except IntegrityError:
        return False
    return True


def load(
    engine: Engine,
    object_key: str,
    content_sha256: str,
    window: str,
    dimensions: Sequence[str],
    groups: Mapping[GroupKey, GroupStats],
) -> bool:
    """Load one aggregates object in one transaction; True if loaded now, False if already loaded."""
    group_rows, metric_rows = _rows(window, dimensions, groups)
    records = sum(stats.records for stats in groups.values())
    try:
        with engine.begin() as conn:
            if not _claim(conn, object_key, content_sha256, len(groups), records):
                return False
            _upsert(conn, rollup_groups, group_rows, add=("records",), keep={})
            _upsert(
                conn, rollup_metrics, metric_rows, add=("count", "sum"), keep={"min": "min", "max": "max"}
            )
            _check_sums(conn, window, metric_rows)
    except DataError as exc:
        if getattr(exc.orig, "pgcode", None) != _NUMERIC_VALUE_OUT_OF_RANGE:
            raise
        raise LoadRejectedError("sum_out_of_range", "a stored sum would pass float range") from exc
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailableError(f"database load failed, nothing loaded: {exc.orig}") from exc
    return True


_MAX_IN_LIST = 1000
_NUMERIC_VALUE_OUT_OF_RANGE = "22003"  # PostgreSQL's SQLSTATE for a double that overflows


def _check_sums(conn: Connection, window: str, rows: list[dict[str, Any]]) -> None:
    """Raise LoadRejectedError (rolling the load back) if a sum this load touched left float range.

    Processing keeps each object's sums in range, but the upsert adds them across objects.
    PostgreSQL refuses an overflowing double itself (SQLSTATE 22003); SQLite stores infinity, which
    this finds.
    """
    if not rows:
        return
    metrics = rollup_metrics.c
    query = (
        select(func.count())
        .select_from(rollup_metrics)
        .where(metrics.window_size == window)
        .where((metrics.sum > FLOAT_MAX) | (metrics.sum < -FLOAT_MAX))
    )
    # The touched groups, by window start and dimension key: a superset of them, never fewer. A long
    # list is left out rather than sent as thousands of parameters (SQLite allows 32 766 per statement).
    for column, values in (
        (metrics.window_start, {row["window_start"] for row in rows}),
        (metrics.dimensions_key, {row["dimensions_key"] for row in rows}),
    ):
        if len(values) <= _MAX_IN_LIST:
            query = query.where(column.in_(sorted(values)))
    overflowed = conn.execute(query).scalar_one()
    if overflowed:
        raise LoadRejectedError("sum_out_of_range", f"{overflowed} stored sums would pass float range")
