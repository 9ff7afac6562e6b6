"""The analytics database: engines, the schema revision, migrations, and the API the analytics stage uses.

Only the analytics stage imports this module, so only it pays SQLAlchemy's import time. PostgreSQL and
SQLite (the local run) are the two supported databases; ``connect`` refuses any other, and refuses a
database at another revision than ``HEAD`` (Alembic revisions in ``handlers/migrations``; ``migrate``
runs them). The schema is ``handlers.schema``, the load ``handlers.loading``; their public names are
re-exported here, so the stage and the tools use one module: ``connect``, ``migrate``, ``load``,
``Setting``, ``Origin``, ``LoadResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from handlers.errors import ConfigError, DatabaseUnavailableError
from handlers.loading import load
from handlers.schema import (
    APPEND,
    DUPLICATE,
    LEGACY_REL,
    LOADED,
    MODES,
    REPLACE,
    SUPERSEDED,
    Exact,
    LoadResult,
    Origin,
    Setting,
    contribution_groups,
    contribution_metrics,
    contributions,
    dimensions_key,
    ledger,
    metadata,
    rel_key,
    rollup_groups,
    rollup_metrics,
    setting_key,
    settings,
)

CONNECT_TIMEOUT_SECONDS = 5
SQLITE_BUSY_TIMEOUT_SECONDS = 60  # a writer waits this long for another's BEGIN IMMEDIATE to end
SUPPORTED_BACKENDS = ("postgresql", "sqlite")
HEAD = "0004"  # the revision this code reads and writes; a test holds it to the scripts' head
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x6461746170697065  # pg_advisory_xact_lock(bigint): one migration at a time

__all__ = [
    "APPEND",
    "DUPLICATE",
    "HEAD",
    "HOW_TO_MIGRATE",
    "LEGACY_REL",
    "LOADED",
    "MIGRATIONS",
    "MODES",
    "REPLACE",
    "SUPERSEDED",
    "Exact",
    "LoadResult",
    "Origin",
    "Setting",
    "connect",
    "contribution_groups",
    "contribution_metrics",
    "contributions",
    "create",
    "dimensions_key",
    "ledger",
    "load",
    "metadata",
    "migrate",
    "rel_key",
    "revision",
    "rollup_groups",
    "rollup_metrics",
    "setting_key",
    "settings",
]


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


def connect(url: str, prepare: Callable[[Engine], None] | None = None) -> Engine:
    """An engine for ``url`` once its schema is at ``HEAD``; ConfigError (naming how to upgrade) if it
    is not, DatabaseUnavailableError if the database cannot be reached. Creates nothing. ``prepare`` gets
    the engine before its first connection (the revision check's), to register hooks that connection
    needs, such as how it signs in."""
    engine = create(url)
    if prepare is not None:
        prepare(engine)
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
