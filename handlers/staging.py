"""The PostgreSQL write of a load: the document's rows staged by ``COPY``, then set statements.

``write`` runs inside the load's transaction (``handlers.loading``), once the load has its contribution
id. Every row of the document crosses the wire once, in ``COPY`` text format, into two temporary tables
the session keeps (each commit empties them); then a handful of statements, each a single pass over a
whole table's rows:

1. the removed contributions' rows leave the contribution tables and join the staged rows, negated and
   marked ``gone`` (their counts and sums are subtracted by the same upsert that adds the document's);
2. per table, one statement inserts the document's contribution rows and upserts the difference into
   the rollup in primary-key order (``ORDER BY`` the key, ``ON CONFLICT … DO UPDATE`` adding in
   ``NUMERIC``, which is exact): every load takes its rollup row locks in one order, groups before
   metrics, so concurrent loads queue instead of deadlocking. After a removal, a rollup row the removed
   and the new rows leave as it was is not written (nor locked: nothing of it changes);
3. after a removal, rollup rows left at zero go (the upserts return them), and the min and max a
   removed row may have held are recomputed from the contributions that remain (an extreme cannot be
   subtracted). That runs on rows this transaction has locked already, so it sees every other load's
   rows in those groups as committed.

The temporary tables need the ``TEMPORARY`` privilege on the database, which PostgreSQL grants to
``PUBLIC`` by default.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from handlers.schema import Setting

if TYPE_CHECKING:
    from handlers.rollups import GroupRow, MetricRow

# A session keeps its staging tables (a commit empties them): creating and dropping tables at every
# load would cost a file and catalog rows per table and load. Keys compare in the "C" collation, as the
# tables' keys do (revision 0004): PostgreSQL cannot compare text of two different column collations.
_STAGE = (
    'CREATE TEMPORARY TABLE IF NOT EXISTS load_groups (s timestamptz NOT NULL, k text COLLATE "C" NOT NULL, '
    "d text, r bigint NOT NULL, gone boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS; "
    'CREATE TEMPORARY TABLE IF NOT EXISTS load_metrics (s timestamptz NOT NULL, k text COLLATE "C" NOT NULL, '
    'd text, m text COLLATE "C" NOT NULL, c bigint NOT NULL, su numeric NOT NULL, lo numeric NOT NULL, '
    "hi numeric NOT NULL, gone boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS"
)
_COPY_GROUPS = "COPY load_groups (s, k, d, r) FROM STDIN"
_COPY_METRICS = "COPY load_metrics (s, k, d, m, c, su, lo, hi) FROM STDIN"

_TAKE_OUT = (
    "WITH g AS (DELETE FROM pipeline_contribution_groups WHERE contribution_id = ANY(:removed) "
    "RETURNING window_start, dimensions_key, records), "
    "m AS (DELETE FROM pipeline_contribution_metrics WHERE contribution_id = ANY(:removed) "
    "RETURNING window_start, dimensions_key, metric, count, sum, min, max), "
    "moved AS (INSERT INTO load_groups (s, k, r, gone) SELECT window_start, dimensions_key, -records, true "
    "FROM g) "
    "INSERT INTO load_metrics (s, k, m, c, su, lo, hi, gone) "
    "SELECT window_start, dimensions_key, metric, -count, -sum, min, max, true FROM m"
)

# ``{rows}``: the staged rows as they are, or (after a removal) summed per rollup row. A removed row's
# min and max are within the rollup's, so LEAST and GREATEST keep the rollup's there; step 3 fixes them.
# A rollup row the removed and the new rows give the same records, or the same count, sum, min and max,
# does not change: it is left out of the upsert (a version loaded again changes few of its groups).
_NET_GROUPS = (
    "(SELECT s, k, MAX(d) AS d, CAST(SUM(r) AS bigint) AS r FROM load_groups GROUP BY s, k "
    "HAVING SUM(r) <> 0)"
)
_NET_METRICS = (
    "(SELECT s, k, MAX(d) AS d, m, CAST(SUM(c) AS bigint) AS c, SUM(su) AS su, MIN(lo) AS lo, MAX(hi) AS hi "
    "FROM load_metrics GROUP BY s, k, m HAVING SUM(c) <> 0 OR SUM(su) <> 0 "
    "OR MIN(lo) FILTER (WHERE gone) IS DISTINCT FROM MIN(lo) FILTER (WHERE NOT gone) "
    "OR MAX(hi) FILTER (WHERE gone) IS DISTINCT FROM MAX(hi) FILTER (WHERE NOT gone))"
)
_ADD_GROUPS = (
    "added AS (INSERT INTO pipeline_contribution_groups "
    "(contribution_id, window_start, dimensions_key, setting_key, records) "
    "SELECT :id, s, k, :setting, r FROM load_groups WHERE NOT gone ORDER BY s, k)"
)
_UPSERT_GROUPS = (
    "INSERT INTO pipeline_rollup_groups (setting_key, window_start, dimensions_key, window_size, dimensions, "
    # A group only the removed side has exists already: the dimensions placeholder is never stored.
    "records) SELECT :setting, t.s, t.k, :window, COALESCE(t.d, ''), t.r FROM {rows} AS t ORDER BY t.s, t.k "
    "ON CONFLICT (setting_key, window_start, dimensions_key) DO UPDATE "
    "SET records = pipeline_rollup_groups.records + excluded.records"
)
_ADD_METRICS = (
    "added AS (INSERT INTO pipeline_contribution_metrics "
    "(contribution_id, window_start, dimensions_key, metric, count, sum, min, max) "
    "SELECT :id, s, k, m, c, su, lo, hi FROM load_metrics WHERE NOT gone ORDER BY s, k, m)"
)
_UPSERT_METRICS = (
    "INSERT INTO pipeline_rollup_metrics (setting_key, window_start, dimensions_key, window_size, "
    "dimensions, metric, count, sum, min, max) "
    "SELECT :setting, t.s, t.k, :window, COALESCE(t.d, ''), t.m, t.c, t.su, t.lo, t.hi FROM {rows} AS t "
    "ORDER BY t.s, t.k, t.m "
    "ON CONFLICT (setting_key, window_start, dimensions_key, metric) DO UPDATE "
    "SET count = pipeline_rollup_metrics.count + excluded.count, "
    "sum = pipeline_rollup_metrics.sum + excluded.sum, "
    "min = LEAST(pipeline_rollup_metrics.min, excluded.min), "
    "max = GREATEST(pipeline_rollup_metrics.max, excluded.max)"
)
# Without a removal: the contribution rows in, the staged rows added to the rollups as they are.
_PUT_IN_GROUPS = f"WITH {_ADD_GROUPS} {_UPSERT_GROUPS.format(rows='load_groups')}"
_PUT_IN_METRICS = f"WITH {_ADD_METRICS} {_UPSERT_METRICS.format(rows='load_metrics')}"

# A rollup row at zero has no contribution left: each contribution row counts at least one. After a
# removal the upserts return the rows they left at zero, so no statement has to look for them (a lookup
# that joined the staged rows with the rollups read every rollup row of the setting: temporary tables
# have no statistics, and the planner chose the setting's rows first).
_REPLACE_GROUPS = (
    f"WITH {_ADD_GROUPS}, up AS ({_UPSERT_GROUPS.format(rows=_NET_GROUPS)} "
    "RETURNING window_start AS s, dimensions_key AS k, records AS n) SELECT s, k FROM up WHERE n = 0"
)
_REPLACE_METRICS = (
    f"WITH {_ADD_METRICS}, up AS ({_UPSERT_METRICS.format(rows=_NET_METRICS)} "
    "RETURNING window_start AS s, dimensions_key AS k, metric AS m, count AS n) "
    "SELECT s, k, m FROM up WHERE n = 0"
)
_EMPTIED_GROUPS = (
    "DELETE FROM pipeline_rollup_groups WHERE setting_key = :setting AND (window_start, dimensions_key) "
    "IN (SELECT * FROM unnest(CAST(:s AS timestamptz[]), CAST(:k AS text[])))"
)
_EMPTIED_METRICS = (
    "DELETE FROM pipeline_rollup_metrics WHERE setting_key = :setting "
    "AND (window_start, dimensions_key, metric) "
    "IN (SELECT * FROM unnest(CAST(:s AS timestamptz[]), CAST(:k AS text[]), CAST(:m AS text[])))"
)
# A removed row's extreme needs recomputing only where the rollup (as this load left it) still has
# that value and the document does not bring it: otherwise another remaining contribution holds the
# rollup's extreme. The first filter, on the staged rows alone, leaves out every metric whose new
# values reach as far as the removed ones (a version loaded again, say) before any rollup row is read.
_EXTREMES = (
    "WITH o AS MATERIALIZED (SELECT o.s, o.k, o.m, o.lo, o.hi, n.lo AS nlo, n.hi AS nhi "
    "FROM load_metrics AS o LEFT JOIN load_metrics AS n "
    "ON NOT n.gone AND n.s = o.s AND n.k = o.k AND n.m = o.m "
    "WHERE o.gone AND (n.lo IS NULL OR n.lo > o.lo OR n.hi < o.hi)), "
    "t AS (SELECT DISTINCT o.s, o.k, o.m FROM o JOIN pipeline_rollup_metrics AS x "
    "ON x.setting_key = :setting AND x.window_start = o.s AND x.dimensions_key = o.k AND x.metric = o.m "
    "WHERE (o.lo = x.min AND o.nlo IS DISTINCT FROM x.min) "
    "OR (o.hi = x.max AND o.nhi IS DISTINCT FROM x.max)) "
    "UPDATE pipeline_rollup_metrics AS r SET min = e.low, max = e.high FROM ("
    "SELECT t.s, t.k, t.m, MIN(c.min) AS low, MAX(c.max) AS high FROM t "
    "JOIN pipeline_contribution_groups AS g "
    "ON g.setting_key = :setting AND g.window_start = t.s AND g.dimensions_key = t.k "
    "JOIN pipeline_contribution_metrics AS c ON c.contribution_id = g.contribution_id "
    "AND c.window_start = t.s AND c.dimensions_key = t.k AND c.metric = t.m "
    "GROUP BY t.s, t.k, t.m) AS e "
    "WHERE r.setting_key = :setting AND r.window_start = e.s AND r.dimensions_key = e.k AND r.metric = e.m"
)

_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: str) -> str:
    """``value`` as a field of ``COPY``'s text format (backslash, tab, newline and return escaped)."""
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def copy_groups(rows: Sequence[GroupRow]) -> str:
    """The ``COPY`` text of a document's group rows: start, dimensions key, dimensions, records."""
    return "".join([f"{s}\t{k}\t{copy_field(d)}\t{r}\n" for s, k, d, r in rows])


def copy_metrics(rows: Sequence[MetricRow]) -> str:
    """The ``COPY`` text of a document's metric rows: start, dimensions key, dimensions, metric, count,
    sum, min, max.

    Numbers go as Python spells them (``1.50``, ``1E+3``): ``NUMERIC`` reads every finite ``Decimal``
    spelling exactly, and readers get canonical numbers back (``Exact``), so the canonical spelling
    would only cost time. A group's metric rows are consecutive, so its dimensions are escaped once.
    """
    lines = []
    last, escaped = None, ""
    names: dict[str, str] = {}
    for s, k, d, m, c, su, lo, hi in rows:
        if d is not last:
            last, escaped = d, copy_field(d)
        name = names.get(m)
        if name is None:
            name = names[m] = copy_field(m)
        lines.append(f"{s}\t{k}\t{escaped}\t{name}\t{c}\t{su}\t{lo}\t{hi}\n")
    return "".join(lines)


def write(
    conn: Connection,
    setting: Setting,
    new_id: int,
    removed: list[int],
    groups: Sequence[GroupRow],
    metrics: Sequence[MetricRow],
) -> None:
    """Put the document's rows in as contribution ``new_id`` and take the ``removed`` contributions out,
    adjusting the rollups (see the module docstring)."""
    conn.exec_driver_sql(_STAGE)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        for sql, body in ((_COPY_GROUPS, copy_groups(groups)), (_COPY_METRICS, copy_metrics(metrics))):
            if body:
                try:
                    cursor.copy_expert(sql, io.StringIO(body), size=1 << 20)
                except dbapi_error as exc:  # the driver's own: wrapped as SQLAlchemy wraps a statement's
                    raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
    finally:
        cursor.close()
    keys = {"setting": setting.key}
    if removed:
        conn.execute(text(_TAKE_OUT), {"removed": removed})
    put_in = keys | {"id": new_id, "window": setting.window}
    if not removed:
        conn.execute(text(_PUT_IN_GROUPS), put_in)
        conn.execute(text(_PUT_IN_METRICS), put_in)
        return
    zero_groups = conn.execute(text(_REPLACE_GROUPS), put_in).all()
    zero_metrics = conn.execute(text(_REPLACE_METRICS), put_in).all()
    # Metric rows before the group rows they belong to; the upserts above already locked every one of
    # them (groups first, then metrics), so these deletes take no new row lock.
    if zero_metrics:
        s, k, m = (list(column) for column in zip(*zero_metrics, strict=True))
        conn.execute(text(_EMPTIED_METRICS), keys | {"s": s, "k": k, "m": m})
    if zero_groups:
        s, k = (list(column) for column in zip(*zero_groups, strict=True))
        conn.execute(text(_EMPTIED_GROUPS), keys | {"s": s, "k": k})
    conn.execute(text(_EXTREMES), keys)
