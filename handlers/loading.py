"""Loading an aggregates document into the analytics database: contributions, rollups, ledger.

How a document's contribution is identified, and what a new one does (``load``):

* ``replace`` mode (the default): one source per (raw key, setting). A later sequencer replaces the
  source's earlier contribution: its counts and sums are subtracted, and the min and max of the groups
  it touched are recomputed from the contributions that remain (an extreme cannot be subtracted).
  An earlier sequencer arriving late changes nothing (``superseded``). The same sequencer with the
  same bytes changes nothing (``duplicate``); with other bytes (the same raw version processed again,
  say after a fix) the later load replaces the earlier: a raw version's latest processing is its truth.
* ``append`` mode: one source per raw version (raw key, sequencer, setting); every version adds.
* Parts: a large raw version comes as several documents, one per ``records/`` part (``handlers.parts``).
  Each part is a contribution of its own (the source key holds the part): the parts of one version add
  up, "the same sequencer" above means the same part of it, a newer version replaces every part of the
  older ones, and part 0, which names the number of parts, takes out (or, coming first, supersedes) any
  part past that number (``_decide``).

The ledger claim comes first, so a repeated delivery of the same object finds its row and reports the
state its first delivery recorded, changing nothing. Settings never share a rollup row: a replay
under another window or other dimension names builds its own rollups and contributions.

Concurrency: a load is one transaction. On PostgreSQL it takes, in this order, its ledger row, a
transaction-scoped advisory lock on its source (so two versions of one raw key decide one after the
other), then rollup rows in primary-key order (one ordered upsert per table, covering every group it
adds to or removes from), so concurrent loads wait for each other instead of deadlocking. On SQLite
``BEGIN IMMEDIATE`` serialises write transactions (SQLAlchemy's pysqlite recipe).

The writes below the decision: ``handlers.staging`` on PostgreSQL (COPY, then set statements),
``handlers.rollups`` on SQLite. The tables are ``handlers.schema``; engines and migrations
``handlers.database``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Engine,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError, OperationalError

from handlers import staging
from handlers.errors import DatabaseUnavailableError, LoadRejectedError
from handlers.events import SEQUENCER_WIDTH, order_key
from handlers.groups import GroupKey, GroupStats
from handlers.rollups import (
    Document,
    GroupRow,
    MetricRow,
    RollupStatements,
    deltas,
)
from handlers.schema import (
    APPEND,
    DUPLICATE,
    LOADED,
    MODES,
    REPLACE,
    SOURCE_LOCKS,
    SUPERSEDED,
    LoadResult,
    Origin,
    Setting,
    contributions,
    dimensions_key,
    ledger,
    rel_key,
    settings,
)


def _prepare(groups: Mapping[GroupKey, GroupStats]) -> Document:
    keyed = []
    digests: dict[str, str] = {}  # a document repeats its dimensions in every window
    for (start, dimensions), stats in groups.items():
        key = digests.get(dimensions)
        if key is None:
            key = digests[dimensions] = dimensions_key(dimensions)
        keyed.append((start, key, dimensions, stats))
    # In key order, which is the tables' (hex digests and ISO starts sort alike in any collation): the
    # database's sorts find their input sorted, and its index insertions land side by side.
    keyed.sort(key=itemgetter(0, 1))
    group_rows: list[GroupRow] = [(start, key, d, stats.records) for start, key, d, stats in keyed]
    metric_rows: list[MetricRow] = [
        (start, key, d, metric, s.count, s.sum, s.min, s.max)
        for start, key, d, stats in keyed
        for metric, s in (sorted(stats.metrics.items()) if len(stats.metrics) > 1 else stats.metrics.items())
    ]
    # Every contribution row counts at least one: a rollup row at zero then has none left.
    records, counts = itemgetter(3), itemgetter(4)
    if min(map(records, group_rows), default=1) < 1 or min(map(counts, metric_rows), default=1) < 1:
        empty = [row for row in group_rows if records(row) < 1] + [
            row for row in metric_rows if counts(row) < 1
        ]
        raise LoadRejectedError("empty_group", f"a group at {empty[0][0][:20]} counts no record or no value")
    return Document(group_rows, metric_rows, sum(map(records, group_rows)))


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


class _Load(RollupStatements):
    """One load's statements, inside its transaction."""

    def __init__(self, conn: Connection, setting: Setting, mode: str) -> None:
        self.conn = conn
        self.setting = setting
        self.mode = mode
        self.postgresql = conn.dialect.name == "postgresql"
        self.insert = postgresql.insert if self.postgresql else sqlite.insert

    def run(
        self, object_key: str, content_sha256: str, origin: Origin, sequencer: str, document: Document
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
                text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": SOURCE_LOCKS, "key": lock}
            )
        state, removed = self._decide(source, order_key(sequencer), content_sha256, origin)
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
                "part": origin.part,
                "parts": origin.parts,
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

    def _decide(
        self, source: str, sequence: str, content_sha256: str, origin: Origin
    ) -> tuple[str, list[int]]:
        """The state of this load, and the contributions it replaces.

        A contribution is one part of one raw version (``handlers.parts``). The same part of the same
        version with the same bytes is a duplicate; with other bytes it replaces that part. A part at
        or past the number of parts its version's part 0 names is ``superseded``: it was written by an
        ingestion of the version that part 0's ingestion replaced (one that stopped at an unreadable
        end, say), and part 0 takes such parts out when it comes later. In replace mode a newer
        version replaces every part of the older ones, and a part of an older version changes nothing.
        """
        c = contributions.c
        part, parts = origin.part, origin.parts
        existing = self.conn.execute(
            select(c.contribution_id, c.sequence_key, c.content_sha256, c.part, c.parts).where(
                c.setting_key == self.setting.key, c.rel_key == source
            )
        ).all()
        mine = [row for row in existing if row.sequence_key == sequence]
        same = [row.contribution_id for row in mine if row.part == part]
        if any(row.part == part and row.content_sha256 == content_sha256 for row in mine):
            return DUPLICATE, []
        if any(row.part == 0 and row.parts is not None and part >= row.parts for row in mine):
            return SUPERSEDED, []
        if part == 0 and parts is not None:
            same += [row.contribution_id for row in mine if row.part >= parts]
        if self.mode == APPEND:
            return LOADED, same
        if any(row.sequence_key > sequence for row in existing):
            return SUPERSEDED, []
        return LOADED, same + [row.contribution_id for row in existing if row.sequence_key < sequence]

    def _replace(self, removed: list[int], contribution: dict[str, Any], document: Document) -> None:
        """Take the ``removed`` contributions out of the rollups and put ``document`` in."""
        if removed:  # first: the document may be the same version again, under the same unique key
            self.conn.execute(delete(contributions).where(contributions.c.contribution_id.in_(removed)))
        new_id = self.conn.execute(
            contributions.insert().values(contribution).returning(contributions.c.contribution_id)
        ).scalar_one()
        if self.postgresql:
            staging.write(self.conn, self.setting, new_id, removed, document.groups, document.metrics)
            return
        old_groups, old_metrics = self._take_out(removed) if removed else ([], [])
        self._put_in(new_id, document)
        if not removed:
            groups, metrics = document.groups, document.metrics
        else:
            groups, metrics = deltas(document, old_groups, old_metrics)
        self._add_in_python(groups, metrics)
        if removed:
            self._recompute(
                {(start, key) for start, key, _records in old_groups},
                {(start, key, metric) for start, key, metric, *_ in old_metrics},
            )
