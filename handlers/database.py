"""The analytics database: schema, contributions, rollups and the load ledger (SQLAlchemy 2.0 Core).

Only the analytics stage imports this module, so only it pays SQLAlchemy's import time. PostgreSQL and
SQLite (the local run) are the two supported databases; ``connect`` refuses any other.

Tables (the schema of revision ``HEAD``; Alembic revisions in ``handlers/migrations`` create and change
them, ``migrate`` runs them, and ``connect`` refuses a database at another revision):

* ``pipeline_settings`` — one row per aggregation setting: window size, dimension names, metric names,
  keyed by ``setting_key``, the SHA-256 of the setting's canonical JSON.
* ``pipeline_rollup_groups`` — one row per (setting, window start, dimensions): ``records``.
* ``pipeline_rollup_metrics`` — one row per group and metric: ``count``, ``sum``, ``min``, ``max``.
* ``pipeline_contributions`` — one row per source version in the totals: the raw key (``rel``) and
  version (``sequencer``) an aggregates document came from, under one setting.
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

How a document's contribution is identified, and what a new one does (``load``):

* ``replace`` mode (the default): one source per (raw key, setting). A later sequencer replaces the
  source's earlier contribution: its counts and sums are subtracted, and the min and max of the groups
  it touched are recomputed from the contributions that remain (an extreme cannot be subtracted).
  An earlier sequencer arriving late changes nothing (``superseded``). The same sequencer with the
  same bytes changes nothing (``duplicate``); with other bytes (the same raw version processed again,
  say after a fix) the later load replaces the earlier: a raw version's latest processing is its truth.
* ``append`` mode: one source per raw version (raw key, sequencer, setting); every version adds.

The ledger claim comes first, so a repeated delivery of the same object finds its row and reports the
state its first delivery recorded, changing nothing. Settings never share a rollup row: a replay
under another window or other dimension names builds its own rollups and contributions.

Concurrency: a load is one transaction. On PostgreSQL it takes, in this order, its ledger row, a
transaction-scoped advisory lock on its source (so two versions of one raw key decide one after the
other), then rollup rows in primary-key order (one ordered upsert per table, covering every group it
adds to or removes from), so concurrent loads wait for each other instead of deadlocking. On SQLite
``BEGIN IMMEDIATE`` serialises write transactions (SQLAlchemy's pysqlite recipe).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator, TypeEngine

from handlers.errors import ConfigError, DatabaseUnavailableError, LoadRejectedError
from handlers.events import SEQUENCER_WIDTH, order_key
from handlers.exact import Number, canonical, exact_context, parse
from handlers.groups import GroupKey, GroupStats

CONNECT_TIMEOUT_SECONDS = 5
SQLITE_BUSY_TIMEOUT_SECONDS = 60  # a writer waits this long for another's BEGIN IMMEDIATE to end
SUPPORTED_BACKENDS = ("postgresql", "sqlite")
HEAD = "0002"  # the revision this code reads and writes; a test holds it to the scripts' head
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

REPLACE, APPEND = "replace", "append"
MODES = (REPLACE, APPEND)
LOADED, DUPLICATE, SUPERSEDED = "loaded", "duplicate", "superseded"

LEGACY_REL = ""  # the source of rollups loaded before contributions were kept (revision 0002)
_MIGRATION_LOCK = 0x6461746170697065  # pg_advisory_xact_lock(bigint): one migration at a time
_SOURCE_LOCKS = 0x64617461  # pg_advisory_xact_lock(int, int) namespace of the per-source locks


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
    Column("metric", String(256), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("sum", Exact, nullable=False),
    Column("min", Exact, nullable=False),
    Column("max", Exact, nullable=False),
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
    UniqueConstraint("setting_key", "rel_key", "sequence_key", name="pipeline_contributions_source"),
)

contribution_groups = Table(
    "pipeline_contribution_groups",
    metadata,
    Column("contribution_id", BigInteger, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("dimensions_key", String(64), primary_key=True),
    Column("setting_key", String(64), nullable=False),
    Column("records", BigInteger, nullable=False),
    # The contributions that remain in a group, found when another one leaves it.
    Index("pipeline_contribution_groups_group", "setting_key", "window_start", "dimensions_key"),
)

contribution_metrics = Table(
    "pipeline_contribution_metrics",
    metadata,
    Column("contribution_id", BigInteger, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("dimensions_key", String(64), primary_key=True),
    Column("metric", String(256), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("sum", Exact, nullable=False),
    Column("min", Exact, nullable=False),
    Column("max", Exact, nullable=False),
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
    """The raw object version an aggregates document was made from."""

    rel: str  # the raw key without the input prefix
    sequencer: str  # S3's sequencer of that version (hex)
    version_id: str | None = None  # its S3 version id, if the raw bucket is versioned


@dataclass(frozen=True)
class LoadResult:
    """What ``load`` did with a document."""

    state: str  # LOADED, DUPLICATE or SUPERSEDED: what the document's first delivery did
    repeated: bool  # the ledger already held this object: this delivery changed nothing


# ---------------------------------------------------------------------------------------------------
# Engines, revisions, migrations


def create(url: str) -> Engine:
    """An engine for a supported ``url`` (PostgreSQL or SQLite), without looking at its schema."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as exc:  # the message would quote the URL, which is a secret
        raise ConfigError("the database URL is not a SQLAlchemy URL") from exc
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"the analytics database must be PostgreSQL or SQLite (postgresql:// or sqlite:// URLs), "
            f"not {backend[:32]!r}"
        )
    if backend == "postgresql":
        # fail fast, not at the Lambda timeout
        return create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        )
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    _serialise_sqlite_writes(engine)
    return engine


def _serialise_sqlite_writes(engine: Engine) -> None:
    """SQLAlchemy's documented pysqlite recipe: the driver emits no BEGIN of its own, and every
    transaction starts with ``BEGIN IMMEDIATE``. A deferred BEGIN would let two loads read the same
    rollups and then fail to upgrade to the write lock (or overwrite each other)."""

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def revision(conn: Connection) -> str | None:
    """The database's Alembic revision; None before any migration ran."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


HOW_TO_MIGRATE = (
    "upgrade it with `pulumi up` (which invokes the analytics function with the event "
    '{"action": "migrate"}), or locally with `python -m devtools migrate --url URL`'
)


def connect(url: str) -> Engine:
    """An engine for ``url`` once its schema is at ``HEAD``; ConfigError (naming how to upgrade) if it
    is not, DatabaseUnavailableError if the database cannot be reached. Creates nothing."""
    engine = create(url)
    try:
        with engine.connect() as conn:
            found = revision(conn)
    except (OperationalError, InterfaceError) as exc:
        engine.dispose()
        raise DatabaseUnavailableError(f"cannot reach the database: {exc.orig}") from exc
    if found != HEAD:
        engine.dispose()
        where = "has no pipeline schema revision" if found is None else f"is at schema revision {found}"
        raise ConfigError(
            f"the analytics database {where}, this version needs revision {HEAD}: {HOW_TO_MIGRATE}"
        )
    return engine


def migrate(target: str | Engine) -> str:
    """Upgrade the database to the head revision and return it; concurrent callers take turns.

    One transaction: on PostgreSQL it first takes an advisory lock, so a second caller waits and then
    finds nothing left to do; on SQLite ``BEGIN IMMEDIATE`` (engines from ``create``) does the same.
    """
    from alembic import command
    from alembic.config import Config

    engine = create(target) if isinstance(target, str) else target
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            head = revision(conn)
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailableError(f"database migration failed, nothing changed: {exc.orig}") from exc
    finally:
        if isinstance(target, str):
            engine.dispose()
    assert head is not None
    return head


# ---------------------------------------------------------------------------------------------------
# Loading


def dimensions_key(dimensions: str) -> str:
    return hashlib.sha256(dimensions.encode()).hexdigest()


def rel_key(rel: str) -> str:
    return hashlib.sha256(rel.encode()).hexdigest()


@functools.lru_cache(maxsize=4096)
def _start_time(start: str) -> datetime:
    return datetime.fromisoformat(start.replace("Z", "+00:00"))


def _start_text(value: datetime) -> str:
    """A stored window start as a GroupKey's text (PostgreSQL answers in the session's time zone,
    SQLite without one)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


GroupRow = tuple[str, str, str, int]  # window start, dimensions_key, dimensions, records
MetricRow = tuple[str, str, str, str, int, Number, Number, Number]  # + metric, count, sum, min, max


@dataclass(frozen=True)
class _Document:
    """A document's rows, prepared before the transaction."""

    groups: list[GroupRow]
    metrics: list[MetricRow]
    records: int


def _prepare(groups: Mapping[GroupKey, GroupStats]) -> _Document:
    group_rows: list[GroupRow] = []
    metric_rows: list[MetricRow] = []
    for (start, dimensions), stats in groups.items():
        key = dimensions_key(dimensions)
        # Every contribution row counts at least one: a rollup row at zero then has none left.
        if stats.records < 1 or any(s.count < 1 for s in stats.metrics.values()):
            raise LoadRejectedError("empty_group", f"a group at {start[:20]} counts no record or no value")
        group_rows.append((start, key, dimensions, stats.records))
        for metric, s in stats.metrics.items():
            metric_rows.append((start, key, dimensions, metric, s.count, s.sum, s.min, s.max))
    group_rows.sort(key=lambda row: row[:2])
    metric_rows.sort(key=lambda row: (row[0], row[1], row[3]))
    return _Document(group_rows, metric_rows, sum(row[3] for row in group_rows))


def load(
    engine: Engine,
    object_key: str,
    content_sha256: str,
    setting: Setting,
    origin: Origin,
    groups: Mapping[GroupKey, GroupStats],
    mode: str = REPLACE,
) -> LoadResult:
    """Load one aggregates document in one transaction (see the module docstring for what it does).

    Raises DatabaseUnavailableError when the database fails (nothing loaded), LoadRejectedError for
    an origin no raw object version can have or a group that counts nothing; nothing after the commit.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    sequencer = origin.sequencer.upper()
    if not sequencer or len(sequencer) > SEQUENCER_WIDTH or not set(sequencer) <= set("0123456789ABCDEF"):
        raise LoadRejectedError(
            "invalid_origin", f"sequencer {origin.sequencer[:80]!r} is not an S3 sequencer"
        )
    document = _prepare(groups)
    try:
        with engine.begin() as conn:
            return _Load(conn, setting, mode).run(object_key, content_sha256, origin, sequencer, document)
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailableError(f"database load failed, nothing loaded: {exc.orig}") from exc


def _chunks(items: Sequence[Any], size: int = 400) -> Iterator[Sequence[Any]]:
    """Slices short enough for one statement's parameters (SQLite allows 32 766)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Load:
    """One load's statements, inside its transaction."""

    def __init__(self, conn: Connection, setting: Setting, mode: str) -> None:
        self.conn = conn
        self.setting = setting
        self.mode = mode
        self.postgresql = conn.dialect.name == "postgresql"
        self.insert = postgresql.insert if self.postgresql else sqlite.insert

    def run(
        self, object_key: str, content_sha256: str, origin: Origin, sequencer: str, document: _Document
    ) -> LoadResult:
        conn, ledger_key = self.conn, {"object_key": object_key, "content_sha256": content_sha256}
        claim = self.insert(ledger).values(
            **ledger_key, groups=len(document.groups), records=document.records
        )
        if conn.execute(claim.on_conflict_do_nothing()).rowcount != 1:
            stored = select(ledger.c.state).where(
                ledger.c.object_key == object_key, ledger.c.content_sha256 == content_sha256
            )
            return LoadResult(conn.execute(stored).scalar_one(), repeated=True)
        self._ensure_setting()
        source = rel_key(origin.rel)
        if self.postgresql:
            lock = int.from_bytes(
                hashlib.sha256(f"{self.setting.key}/{source}".encode()).digest()[:4], signed=True
            )
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _SOURCE_LOCKS, "key": lock}
            )
        state, removed = self._decide(source, order_key(sequencer), content_sha256)
        if state == LOADED:
            contribution = {
                "setting_key": self.setting.key,
                "rel_key": source,
                "sequence_key": order_key(sequencer),
                "rel": origin.rel,
                "sequencer": sequencer,
                "version_id": origin.version_id,
                **ledger_key,
                "groups": len(document.groups),
                "records": document.records,
            }
            self._replace(removed, contribution, document)
        else:
            conn.execute(
                update(ledger)
                .where(ledger.c.object_key == object_key, ledger.c.content_sha256 == content_sha256)
                .values(state=state)
            )
        return LoadResult(state, repeated=False)

    def _ensure_setting(self) -> None:
        dimensions, metrics = self.setting.names
        row = {"setting_key": self.setting.key, "window_size": self.setting.window}
        row |= {"dimensions": dimensions, "metrics": metrics}
        self.conn.execute(self.insert(settings).values(row).on_conflict_do_nothing())

    def _decide(self, source: str, sequence: str, content_sha256: str) -> tuple[str, list[int]]:
        """The state of this load, and the contributions it replaces."""
        c = contributions.c
        existing = self.conn.execute(
            select(c.contribution_id, c.sequence_key, c.content_sha256).where(
                c.setting_key == self.setting.key, c.rel_key == source
            )
        ).all()
        if any(row.sequence_key == sequence and row.content_sha256 == content_sha256 for row in existing):
            return DUPLICATE, []
        if self.mode == APPEND:
            return LOADED, [row.contribution_id for row in existing if row.sequence_key == sequence]
        if any(row.sequence_key > sequence for row in existing):
            return SUPERSEDED, []
        return LOADED, [row.contribution_id for row in existing]  # older ones, and this one's other bytes

    def _replace(self, removed: list[int], contribution: dict[str, Any], document: _Document) -> None:
        """Take the ``removed`` contributions out of the rollups and put ``document`` in."""
        if removed:  # first: the document may be the same version again, under the same unique key
            self.conn.execute(delete(contributions).where(contributions.c.contribution_id.in_(removed)))
        new_id = self.conn.execute(
            contributions.insert().values(contribution).returning(contributions.c.contribution_id)
        ).scalar_one()
        if self.postgresql:
            groups, extremes = self._write_in_sql(new_id, removed, document)
            if groups:
                self._recompute_in_sql(groups, extremes)
            return
        old_groups, old_metrics = self._take_out(removed) if removed else ([], [])
        self._put_in(new_id, document)
        if not removed:
            groups, metrics = document.groups, document.metrics
        else:
            groups, metrics = _deltas(document, old_groups, old_metrics)
        self._add_in_python(groups, metrics)
        if removed:
            self._recompute(
                {(start, key) for start, key, _records in old_groups},
                {(start, key, metric) for start, key, metric, *_ in old_metrics},
            )

    # PostgreSQL: per table, one statement takes the document's rows in as arrays, inserts them as the
    # contribution, deletes the removed contributions' rows, and upserts the difference into the rollup
    # in primary-key order (adding in NUMERIC, which is exact): a single ordered pass over every rollup
    # row the load changes, so concurrent loads queue on them in one order.
    _GROUPS_SQL = (
        "WITH new (s, k, d, r) AS (SELECT * FROM unnest(CAST(:starts AS timestamptz[]), "
        "CAST(:keys AS varchar[]), CAST(:dimensions AS text[]), CAST(:records AS bigint[]))), "
        "added AS (INSERT INTO pipeline_contribution_groups "
        "(contribution_id, window_start, dimensions_key, setting_key, records) "
        "SELECT :id, s, k, :setting, r FROM new), "
        "old (s, k, r) AS (DELETE FROM pipeline_contribution_groups "
        "WHERE contribution_id = ANY(CAST(:removed AS bigint[])) "
        "RETURNING window_start, dimensions_key, records), "
        "delta (s, k, d, r) AS (SELECT s, k, MAX(d), CAST(SUM(r) AS bigint) FROM "
        "(SELECT s, k, d, r FROM new UNION ALL SELECT s, k, NULL, -r FROM old) AS both_ GROUP BY s, k), "
        "up AS (INSERT INTO pipeline_rollup_groups "
        "(setting_key, window_start, dimensions_key, window_size, dimensions, records) "
        # A group only the removed side has exists already: the dimensions placeholder is never stored.
        "SELECT :setting, s, k, :window, COALESCE(d, ''), r FROM {source} ORDER BY s, k "
        "ON CONFLICT (setting_key, window_start, dimensions_key) DO UPDATE "
        "SET records = pipeline_rollup_groups.records + excluded.records) "
        "SELECT s, k FROM old"
    )
    _METRICS_SQL = (
        "WITH new (s, k, d, m, c, su, lo, hi) AS (SELECT * FROM unnest(CAST(:starts AS timestamptz[]), "
        "CAST(:keys AS varchar[]), CAST(:dimensions AS text[]), CAST(:metrics AS varchar[]), "
        "CAST(:counts AS bigint[]), CAST(:sums AS numeric[]), CAST(:mins AS numeric[]), "
        "CAST(:maxs AS numeric[]))), "
        "added AS (INSERT INTO pipeline_contribution_metrics "
        "(contribution_id, window_start, dimensions_key, metric, count, sum, min, max) "
        "SELECT :id, s, k, m, c, su, lo, hi FROM new), "
        "old (s, k, m, c, su, lo, hi) AS (DELETE FROM pipeline_contribution_metrics "
        "WHERE contribution_id = ANY(CAST(:removed AS bigint[])) "
        "RETURNING window_start, dimensions_key, metric, count, sum, min, max), "
        # The removed side's min and max are within the rollup's, so LEAST and GREATEST keep the
        # rollup's extremes there; the recompute that follows sets them from what remains.
        "delta (s, k, d, m, c, su, lo, hi) AS (SELECT s, k, MAX(d), m, CAST(SUM(c) AS bigint), SUM(su), "
        "MIN(lo), MAX(hi) FROM (SELECT s, k, d, m, c, su, lo, hi FROM new UNION ALL "
        "SELECT s, k, NULL, m, -c, -su, lo, hi FROM old) AS both_ GROUP BY s, k, m), "
        "up AS (INSERT INTO pipeline_rollup_metrics (setting_key, window_start, dimensions_key, "
        "window_size, dimensions, metric, count, sum, min, max) "
        "SELECT :setting, s, k, :window, COALESCE(d, ''), m, c, su, lo, hi FROM {source} ORDER BY s, k, m "
        "ON CONFLICT (setting_key, window_start, dimensions_key, metric) DO UPDATE "
        "SET count = pipeline_rollup_metrics.count + excluded.count, "
        "sum = pipeline_rollup_metrics.sum + excluded.sum, "
        "min = LEAST(pipeline_rollup_metrics.min, excluded.min), "
        "max = GREATEST(pipeline_rollup_metrics.max, excluded.max)) "
        # The metrics whose extreme a removed row held (the rollup as it was before this statement):
        # only theirs can change otherwise than by LEAST and GREATEST.
        "SELECT DISTINCT o.s, o.k, o.m FROM old AS o JOIN pipeline_rollup_metrics AS r "
        "ON r.setting_key = :setting AND r.window_start = o.s AND r.dimensions_key = o.k AND r.metric = o.m "
        "WHERE o.lo = r.min OR o.hi = r.max"
    )

    def _write_in_sql(
        self, new_id: int, removed: list[int], document: _Document
    ) -> tuple[list[tuple[Any, str]], list[tuple[Any, str, str]]]:
        """The document in as contribution ``new_id``, the ``removed`` ones out, the rollups adjusted;
        returns the groups the removed contributions had, and the metrics whose extremes they held."""
        source = "delta" if removed else "new"  # without a removal the difference is the document
        parameters = {
            "id": new_id,
            "removed": removed,
            "setting": self.setting.key,
            "window": self.setting.window,
        }
        touched = self.conn.execute(
            text(self._GROUPS_SQL.format(source=source)), parameters | _group_arrays(document.groups)
        ).all()
        extremes = self.conn.execute(
            text(self._METRICS_SQL.format(source=source)), parameters | _metric_arrays(document.metrics)
        ).all()
        return [(start, key) for start, key in touched], [
            (start, key, metric) for start, key, metric in extremes
        ]

    def _take_out(
        self, removed: list[int]
    ) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, str, int, Number, Number, Number]]]:
        """Delete the removed contributions' rows, returning them (SQLite)."""
        g, m = contribution_groups.c, contribution_metrics.c
        old_groups = [
            (_start_text(row.window_start), row.dimensions_key, row.records)
            for row in self.conn.execute(
                delete(contribution_groups)
                .where(g.contribution_id.in_(removed))
                .returning(g.window_start, g.dimensions_key, g.records)
            )
        ]
        old_metrics = [
            (
                _start_text(row.window_start),
                row.dimensions_key,
                row.metric,
                row.count,
                row.sum,
                row.min,
                row.max,
            )
            for row in self.conn.execute(
                delete(contribution_metrics)
                .where(m.contribution_id.in_(removed))
                .returning(m.window_start, m.dimensions_key, m.metric, m.count, m.sum, m.min, m.max)
            )
        ]
        return old_groups, old_metrics

    def _put_in(self, new_id: int, document: _Document) -> None:
        """The document's rows as contribution ``new_id`` (SQLite)."""
        if document.groups:
            self.conn.execute(
                contribution_groups.insert(),
                [
                    {
                        "contribution_id": new_id,
                        "window_start": _start_time(start),
                        "dimensions_key": key,
                        "setting_key": self.setting.key,
                        "records": records,
                    }
                    for start, key, _dimensions, records in document.groups
                ],
            )
        if document.metrics:
            self.conn.execute(
                contribution_metrics.insert(),
                [
                    {
                        "contribution_id": new_id,
                        "window_start": _start_time(start),
                        "dimensions_key": key,
                        "metric": metric,
                        "count": count,
                        "sum": total,
                        "min": low,
                        "max": high,
                    }
                    for start, key, _dimensions, metric, count, total, low, high in document.metrics
                ],
            )

    def _add_in_python(self, groups: Sequence[GroupRow], metrics: Sequence[MetricRow]) -> None:
        """SQLite: read the rollups the deltas touch, add in Python, write the results (the write lock
        is this transaction's since its BEGIN IMMEDIATE)."""
        current_groups = {
            (start, key): (dimensions, records)
            for start, key, dimensions, records in self._rollup_groups(
                {(start, key) for start, key, *_ in groups}
            )
        }
        rows = []
        for start, key, dimensions, records in groups:
            dimensions, before = current_groups.get((start, key), (dimensions, 0))
            rows.append(self._group_row(start, key, dimensions) | {"records": before + records})
        if rows:
            stmt = sqlite.insert(rollup_groups)
            self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.name for c in rollup_groups.primary_key],
                    set_={"records": stmt.excluded.records},
                ),
                rows,
            )
        current_metrics = {
            (start, key, metric): values
            for start, key, metric, *values in self._rollup_metrics(
                {(start, key) for start, key, *_ in metrics}
            )
        }
        rows = []
        with exact_context():
            for start, key, dimensions, metric, count, total, low, high in metrics:
                before = current_metrics.get((start, key, metric))
                if before is not None:
                    count, total = before[0] + count, before[1] + total
                    low, high = min(before[2], low), max(before[3], high)
                row = self._group_row(start, key, dimensions)
                rows.append(row | {"metric": metric, "count": count, "sum": total, "min": low, "max": high})
        if rows:
            stmt = sqlite.insert(rollup_metrics)
            self.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.name for c in rollup_metrics.primary_key],
                    set_={name: stmt.excluded[name] for name in ("count", "sum", "min", "max")},
                ),
                rows,
            )

    def _group_row(self, start: str, key: str, dimensions: str) -> dict[str, Any]:
        return {
            "setting_key": self.setting.key,
            "window_start": _start_time(start),
            "dimensions_key": key,
            "window_size": self.setting.window,
            "dimensions": dimensions,
        }

    def _group_filter(self, table: Table, keys: Sequence[tuple[str, str]]) -> Any:
        return (table.c.setting_key == self.setting.key) & tuple_(
            table.c.window_start, table.c.dimensions_key
        ).in_([(_start_time(start), key) for start, key in keys])

    def _rollup_groups(self, keys: set[tuple[str, str]]) -> Iterator[tuple[str, str, str, int]]:
        g = rollup_groups.c
        for chunk in _chunks(sorted(keys)):
            for row in self.conn.execute(
                select(g.window_start, g.dimensions_key, g.dimensions, g.records).where(
                    self._group_filter(rollup_groups, chunk)
                )
            ):
                yield _start_text(row.window_start), row.dimensions_key, row.dimensions, row.records

    def _rollup_metrics(self, keys: set[tuple[str, str]]) -> Iterator[tuple[Any, ...]]:
        m = rollup_metrics.c
        for chunk in _chunks(sorted(keys)):
            for row in self.conn.execute(
                select(m.window_start, m.dimensions_key, m.metric, m.count, m.sum, m.min, m.max).where(
                    self._group_filter(rollup_metrics, chunk)
                )
            ):
                yield (_start_text(row.window_start), row.dimensions_key, row.metric, *row[3:])

    def _recompute_in_sql(self, groups: list[tuple[Any, str]], extremes: list[tuple[Any, str, str]]) -> None:
        """PostgreSQL: ``_recompute`` in set statements, on rollup rows this transaction holds already.

        A rollup row at zero records or zero values has no contribution left (each contribution row
        counts at least one) and goes; the metrics in ``extremes`` get their min and max from the
        contributions that remain (MIN and MAX of NUMERIC are exact).
        """
        keys = {
            "setting": self.setting.key,
            "starts": [start for start, _key in groups],
            "keys": [key for _start, key in groups],
        }
        for table, empty in (("pipeline_rollup_metrics", "count"), ("pipeline_rollup_groups", "records")):
            self.conn.execute(
                text(
                    f"DELETE FROM {table} AS r USING unnest(CAST(:starts AS timestamptz[]), "
                    "CAST(:keys AS varchar[])) AS t(s, k) WHERE r.setting_key = :setting "
                    f"AND r.window_start = t.s AND r.dimensions_key = t.k AND r.{empty} = 0"
                ),
                keys,
            )
        if not extremes:
            return
        self.conn.execute(
            text(
                "UPDATE pipeline_rollup_metrics AS r SET min = e.low, max = e.high FROM ("
                "SELECT t.s, t.k, t.m, MIN(m.min) AS low, MAX(m.max) AS high FROM unnest("
                "CAST(:starts AS timestamptz[]), CAST(:keys AS varchar[]), CAST(:metrics AS varchar[])) "
                "AS t(s, k, m) JOIN pipeline_contribution_groups AS g "
                "ON g.setting_key = :setting AND g.window_start = t.s AND g.dimensions_key = t.k "
                "JOIN pipeline_contribution_metrics AS m ON m.contribution_id = g.contribution_id "
                "AND m.window_start = t.s AND m.dimensions_key = t.k AND m.metric = t.m "
                "GROUP BY t.s, t.k, t.m) AS e "
                "WHERE r.setting_key = :setting AND r.window_start = e.s AND r.dimensions_key = e.k "
                "AND r.metric = e.m"
            ),
            {
                "setting": self.setting.key,
                "starts": [start for start, _key, _metric in extremes],
                "keys": [key for _start, key, _metric in extremes],
                "metrics": [metric for _start, _key, metric in extremes],
            },
        )

    def _recompute(self, group_keys: set[tuple[str, str]], metric_keys: set[tuple[str, str, str]]) -> None:
        """SQLite: min and max of the metrics a removed contribution had, from the contributions that
        remain (compared in Python: text does not compare as numbers); rollup rows no contribution
        remains in are deleted."""
        g, m = contribution_groups.c, contribution_metrics.c
        remaining: set[tuple[str, str]] = set()
        extremes: dict[tuple[str, str, str], list[Number]] = {}
        joined = contribution_groups.outerjoin(
            contribution_metrics,
            (m.contribution_id == g.contribution_id)
            & (m.window_start == g.window_start)
            & (m.dimensions_key == g.dimensions_key),
        )
        for chunk in _chunks(sorted(group_keys)):
            query = select(g.window_start, g.dimensions_key, m.metric, m.min, m.max).select_from(joined)
            for row in self.conn.execute(query.where(self._group_filter(contribution_groups, chunk))):
                group = (_start_text(row.window_start), row.dimensions_key)
                remaining.add(group)
                key = (*group, row.metric)
                if row.metric is None or key not in metric_keys:
                    continue
                if key in extremes:
                    low, high = extremes[key]
                    extremes[key] = [min(low, row.min), max(high, row.max)]
                else:
                    extremes[key] = [row.min, row.max]
        setting_key = self.setting.key
        gone = [{"s": _start_time(s), "k": k} for s, k in sorted(group_keys - remaining)]
        gone_metrics = [
            {"s": _start_time(s), "k": k, "m": x} for s, k, x in sorted(metric_keys - extremes.keys())
        ]
        for table, rows in ((rollup_metrics, gone_metrics), (rollup_groups, gone)):
            if rows:
                where = [table.c.setting_key == setting_key]
                where += [table.c.window_start == bindparam("s"), table.c.dimensions_key == bindparam("k")]
                if table is rollup_metrics:
                    where.append(table.c.metric == bindparam("m"))
                self.conn.execute(delete(table).where(*where), rows)
        if extremes:
            r = rollup_metrics.c
            self.conn.execute(
                update(rollup_metrics)
                .where(
                    r.setting_key == setting_key,
                    r.window_start == bindparam("s"),
                    r.dimensions_key == bindparam("k"),
                    r.metric == bindparam("m"),
                )
                .values(min=bindparam("lo", type_=Exact()), max=bindparam("hi", type_=Exact())),
                [
                    {"s": _start_time(s), "k": k, "m": x, "lo": low, "hi": high}
                    for (s, k, x), (low, high) in sorted(extremes.items())
                ],
            )


def _deltas(
    document: _Document,
    old_groups: Iterable[tuple[str, str, int]],
    old_metrics: Iterable[tuple[str, str, str, int, Number, Number, Number]],
) -> tuple[list[GroupRow], list[MetricRow]]:
    """The document's rows minus the removed contributions', per rollup row (SQLite).

    A row only the removed side has keeps the removed min and max as its own: they are within the
    rollup's, so taking the smaller and the larger leaves the rollup's extremes as they are until
    ``_recompute`` sets them.
    """
    groups: dict[tuple[str, str], list[Any]] = {(s, k): [d, r] for s, k, d, r in document.groups}
    dimensions = {(s, k): d for s, k, d, _r in document.groups}
    metrics: dict[tuple[str, str, str], list[Any]] = {
        (s, k, x): [d, c, su, lo, hi] for s, k, d, x, c, su, lo, hi in document.metrics
    }
    with exact_context():
        for start, key, records in old_groups:
            entry = groups.setdefault((start, key), ["", 0])
            entry[1] -= records
        for start, key, metric, count, total, low, high in old_metrics:
            entry = metrics.get((start, key, metric))
            if entry is None:
                metrics[(start, key, metric)] = [dimensions.get((start, key), ""), -count, -total, low, high]
            else:
                entry[1] -= count
                entry[2] -= total
    group_rows = sorted((s, k, d, r) for (s, k), (d, r) in groups.items())
    metric_rows = sorted(
        ((s, k, d, x, c, su, lo, hi) for (s, k, x), (d, c, su, lo, hi) in metrics.items()),
        key=lambda row: (row[0], row[1], row[3]),
    )
    return group_rows, metric_rows


def _group_arrays(rows: Sequence[GroupRow]) -> dict[str, list[Any]]:
    arrays: dict[str, list[Any]] = {
        "starts": [row[0] for row in rows],
        "keys": [row[1] for row in rows],
        "dimensions": [row[2] for row in rows],
        "records": [row[3] for row in rows],
    }
    return arrays


def _metric_arrays(rows: Sequence[MetricRow]) -> dict[str, list[Any]]:
    # Canonical text, which PostgreSQL reads into NUMERIC exactly (a Decimal's str may use an exponent).
    arrays: dict[str, list[Any]] = {
        "starts": [row[0] for row in rows],
        "keys": [row[1] for row in rows],
        "metrics": [row[3] for row in rows],
        "counts": [row[4] for row in rows],
        "sums": [canonical(row[5]) for row in rows],
        "mins": [canonical(row[6]) for row in rows],
        "maxs": [canonical(row[7]) for row in rows],
        "dimensions": [row[2] for row in rows],
    }
    return arrays
