"""The analytics database's schema (SQLAlchemy 2.0 Core): tables, the exact number type, and the
values a load names (setting, origin, result).

Only the analytics stage imports this module, so only it pays SQLAlchemy's import time. PostgreSQL and
SQLite (the local run) are the two supported databases; ``connect`` refuses any other.

Tables (the schema of revision ``HEAD``; Alembic revisions in ``handlers/migrations`` create and change
them, ``migrate`` runs them, and ``connect`` refuses a database at another revision):

* ``pipeline_settings`` — one row per aggregation setting: window size, dimension names, metric names,
  keyed by ``setting_key``, the SHA-256 of the setting's canonical JSON.
* ``pipeline_rollup_groups`` — one row per (setting, window start, dimensions): ``records``.
* ``pipeline_rollup_metrics`` — one row per group and metric: ``count``, ``sum``, ``min``, ``max``.
* ``pipeline_contributions`` — one row per source version's part in the totals: the raw key (``rel``),
  version (``sequencer``) and ``records/`` part (``part``; ``parts``, the version's number of parts, on
  part 0) an aggregates document came from, under one setting.
* ``pipeline_contribution_groups``, ``pipeline_contribution_metrics`` — each contribution's groups and
  metrics, the same columns as the rollups. A rollup row is the total of the contribution rows of its
  group: records, counts and sums add up, min and max are the extremes.
* ``pipeline_ledger`` — one row per aggregates object ever delivered (``object_key`` +
  ``content_sha256`` of its bytes) with ``state``, what loading it did.

Sums, minima and maxima are exact: ``NUMERIC`` on PostgreSQL, canonical decimal text on SQLite (the
``Exact`` type); readers get ``int`` or ``Decimal``. SQLite cannot add text exactly, so on SQLite the
rollups are computed in Python (``exact_context``) inside a write transaction that holds the
database's write lock from its first statement (``BEGIN IMMEDIATE``); on PostgreSQL the rollup upsert
adds in SQL, where ``NUMERIC`` arithmetic is exact.

``dimensions`` is the group's dimension values as canonical JSON (sorted keys). It is unbounded text,
so keys hold ``dimensions_key``, its SHA-256: a B-tree key entry has a size limit (about 2.7 KB on
PostgreSQL), a digest always fits it.

The load is ``handlers.loading``; engines and migrations ``handlers.database``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from handlers import contract
from handlers.events import SEQUENCER_WIDTH
from handlers.exact import Number, canonical, parse

# The ledger's modes, by the names the loads import from here.
REPLACE, APPEND, MODES = contract.OVERWRITE_REPLACE, contract.OVERWRITE_APPEND, contract.OVERWRITE_MODES

LOADED, DUPLICATE, SUPERSEDED = "loaded", "duplicate", "superseded"

LEGACY_REL = ""  # the source of rollups loaded before contributions were kept (revision 0002)
SOURCE_LOCKS = 0x64617461  # pg_advisory_xact_lock(int, int) namespace of the per-source locks


class Exact(TypeDecorator[Number]):
    """An exact number: ``NUMERIC`` on PostgreSQL, canonical decimal text on SQLite; ``int`` or
    ``Decimal`` to Python (an ``int`` when the value has no fraction)."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Number | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return canonical(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Number | None:
        if value is None:
            return None
        return parse(value if isinstance(value, str) else canonical(value))


metadata = MetaData()


def _group_key_columns() -> list[Column[Any]]:
    """A rollup group's key and dimensions, shared by both rollup tables (a Column belongs to one table)."""
    return [
        Column("setting_key", String(64), primary_key=True),
        Column("window_start", DateTime(timezone=True), primary_key=True),
        Column("dimensions_key", String(64), primary_key=True),
        Column("window_size", String(8), nullable=False),
        Column("dimensions", Text, nullable=False),
    ]


def _metric_columns() -> list[Column[Any]]:
    """A metric's name and exact count, sum, min and max, shared by the rollup and contribution rows."""
    return [
        Column("metric", String(256), primary_key=True),
        Column("count", BigInteger, nullable=False),
        Column("sum", Exact, nullable=False),
        Column("min", Exact, nullable=False),
        Column("max", Exact, nullable=False),
    ]


def _contribution_key_columns() -> list[Column[Any]]:
    """A contribution's group: its id, window start and dimensions key, shared by both contribution
    tables."""
    return [
        Column("contribution_id", BigInteger, primary_key=True),
        Column("window_start", DateTime(timezone=True), primary_key=True),
        Column("dimensions_key", String(64), primary_key=True),
    ]


settings = Table(
    "pipeline_settings",
    metadata,
    Column("setting_key", String(64), primary_key=True),
    Column("window_size", String(8), nullable=False),
    Column("dimensions", Text, nullable=False),  # JSON list of names, sorted
    Column("metrics", Text, nullable=False),  # JSON list of names, sorted
)

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
    *_metric_columns(),
)

contributions = Table(
    "pipeline_contributions",
    metadata,
    Column("contribution_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("setting_key", String(64), nullable=False),
    Column("rel_key", String(64), nullable=False),  # SHA-256 of rel: rel itself is unbounded
    Column("sequence_key", String(SEQUENCER_WIDTH), nullable=False),  # events.order_key(sequencer)
    Column("rel", Text, nullable=False),
    Column("sequencer", String(SEQUENCER_WIDTH), nullable=False),
    Column("version_id", String(1024)),
    Column("object_key", String(1024), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("groups", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("part", Integer, nullable=False, server_default="0"),  # which records/ part (handlers.parts)
    Column("parts", Integer),  # how many parts its version has: part 0 knows, NULL on the others
    UniqueConstraint("setting_key", "rel_key", "sequence_key", "part", name="pipeline_contributions_source"),
)

contribution_groups = Table(
    "pipeline_contribution_groups",
    metadata,
    *_contribution_key_columns(),
    Column("setting_key", String(64), nullable=False),
    Column("records", BigInteger, nullable=False),
    # The contributions that remain in a group, found when another one leaves it (the setting is a filter:
    # in the key it made every entry 65 bytes longer for a column that rarely tells groups apart).
    Index("pipeline_contribution_groups_group", "window_start", "dimensions_key"),
)

contribution_metrics = Table(
    "pipeline_contribution_metrics",
    metadata,
    *_contribution_key_columns(),
    *_metric_columns(),
)

ledger = Table(
    "pipeline_ledger",
    metadata,
    Column("object_key", String(1024), primary_key=True),
    Column("content_sha256", String(64), primary_key=True),
    Column("groups", BigInteger, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("state", String(16), nullable=False, server_default=LOADED),
)


@dataclass(frozen=True)
class Setting:
    """What a document was aggregated with: its rollups never mix with another setting's."""

    window: str  # one of handlers.config.WINDOWS
    dimensions: tuple[str, ...]  # dimension names (order does not matter: groups name them sorted)
    metrics: tuple[str, ...]  # metric names (order does not matter)

    @functools.cached_property
    def names(self) -> tuple[str, str]:
        """The dimension and metric names as the JSON lists ``pipeline_settings`` stores."""
        return (
            msgspec.json.encode(sorted(self.dimensions)).decode(),
            msgspec.json.encode(sorted(self.metrics)).decode(),
        )

    @functools.cached_property
    def key(self) -> str:
        return setting_key(self.window, sorted(self.dimensions), sorted(self.metrics))


def setting_key(window: str, dimensions: Sequence[str], metrics: Sequence[str]) -> str:
    """SHA-256 of the setting's canonical JSON; revision 0002 computes legacy settings' keys with it."""
    document = {"dimensions": sorted(dimensions), "metrics": sorted(metrics), "window": window}
    return hashlib.sha256(msgspec.json.encode(document, order="sorted")).hexdigest()


@dataclass(frozen=True)
class Origin:
    """The raw object version (and part of it) an aggregates document was made from."""

    rel: str  # the raw key without the input prefix
    sequencer: str  # S3's sequencer of that version (hex)
    version_id: str | None = None  # its S3 version id, if the raw bucket is versioned
    part: int = 0  # which records/ part of the version the document aggregates
    parts: int | None = 1  # how many parts the version has (part 0 knows; None on the others)


@dataclass(frozen=True)
class LoadResult:
    """What ``load`` did with a document."""

    state: str  # LOADED, DUPLICATE or SUPERSEDED: what the document's first delivery did
    repeated: bool  # the ledger already held this object: this delivery changed nothing


def dimensions_key(dimensions: str) -> str:
    return hashlib.sha256(dimensions.encode()).hexdigest()


def rel_key(rel: str) -> str:
    return hashlib.sha256(rel.encode()).hexdigest()
